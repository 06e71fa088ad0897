"""Boards: the default board, and tiles resolved into the flat keys the page reads."""

from __future__ import annotations

from typing import Any

from wallboard.config import BoardConfig, Settings, ThresholdConfig, TileConfig
from wallboard.kpis import KPI_FORMATS

KPI_LABELS: dict[str, str] = {
    "waiting": "Waiting", "oldest_wait_s": "Longest wait", "agents_available": "Agents available",
    "agents_busy": "Agents busy", "agents_wrapup": "Agents in wrap-up",
    "agents_away": "Agents away",
    "agents_offline": "Agents offline", "agents_staffed": "Agents staffed",
    "tickets_open": "Open tickets", "tickets_pending": "Pending tickets",
    "offered": "Offered", "answered": "Answered",
    "abandoned": "Abandoned", "abandoned_short": "Short abandons", "service_level": "Service level",
    "asa_s": "ASA", "aht_s": "AHT", "abandon_rate": "Abandon rate", "csat": "CSAT",
    "csat_n": "CSAT responses", "nps": "NPS", "nps_n": "NPS responses", "ces": "CES",
    "ces_n": "CES responses", "tickets_created": "Tickets created",
    "tickets_resolved": "Tickets resolved",
}
RTL_LOCALES = frozenset({"he", "ar", "fa", "ur"})
VARIANT_LABELS = {
    "answered_only": "answered only",
    "abandons_negative": "abandons count as missed",
    "abandons_ignored": "abandons within T ignored",
    "abandons_positive": "abandons within T count as met",
    "removed_within_threshold": "removed within T / all queued",
}


def service_level_note(settings: Settings, queue: str | None) -> str:
    """How a service-level tile is computed: the variant and the X/Y target."""
    queues = [settings.queues[queue]] if queue else list(settings.queues.values())
    variants = {q.service_level.variant for q in queues}
    if len(variants) != 1:
        return "per-queue formulas"
    sl = queues[0].service_level
    target = f"{round(sl.target * 100):d}/{sl.threshold_s:g}s" if queue else ""
    return " · ".join(p for p in (VARIANT_LABELS[variants.pop()], target) if p)


def _tile(kpi: str, window: str | None = None, queue: str | None = None,
          direction: str = "high_bad", warn: float | None = None,
          crit: float | None = None) -> TileConfig:
    thresholds = (ThresholdConfig(direction=direction, warn=warn, crit=crit)  # type: ignore[arg-type]
                  if warn is not None or crit is not None else None)
    return TileConfig(kpi=kpi, window=window, queue=queue, thresholds=thresholds)


def default_board(settings: Settings) -> BoardConfig:
    """A sensible board for a config that defines none: the site, then one row per queue."""
    windows = settings.windows

    def pick(*preferred: str) -> str:
        return next((w for w in preferred if w in windows), windows[0])

    tiles = [
        _tile("waiting", warn=5, crit=10),
        _tile("oldest_wait_s", warn=60, crit=120),
        _tile("service_level", pick("today"), direction="low_bad", warn=0.8, crit=0.7),
        _tile("abandon_rate", pick("today"), warn=0.05, crit=0.1),
        _tile("agents_available", direction="low_bad", warn=1, crit=0),
        _tile("asa_s", pick("1h", "15m"), warn=20, crit=40),
        _tile("answered", pick("today")),
        _tile("csat", pick("today"), direction="low_bad", warn=0.8, crit=0.7),
    ]
    for name, queue in settings.queues.items():
        target = queue.service_level.target
        threshold = queue.service_level.threshold_s
        tiles += [
            _tile("waiting", queue=name, warn=3, crit=6),
            _tile("oldest_wait_s", queue=name, warn=threshold, crit=threshold * 3),
            _tile("service_level", pick("15m", "1h"), name, "low_bad", target,
                  max(0.0, target - 0.1)),
            _tile("agents_available", queue=name, direction="low_bad", warn=1, crit=0),
        ]
    return BoardConfig(title="Overview", columns=4, tiles=tiles)


def resolve_tile(index: int, tile: TileConfig, settings: Settings) -> dict[str, Any]:
    """A tile as the page needs it: its value's flat key, format, scope and thresholds."""
    if tile.queue:
        prefix = f"queues.{tile.queue}"
        queue = settings.queues.get(tile.queue)
        scope = (queue.label if queue and queue.label else tile.queue)
        sources_key: str | None = f"{prefix}.sources"
    elif tile.channel:
        prefix, scope, sources_key = f"channels.{tile.channel}", tile.channel, None
    else:
        prefix, scope, sources_key = "total", settings.site.name, None
    label = tile.label or f"{KPI_LABELS.get(tile.kpi, tile.kpi)} · {scope}"
    return {
        "id": f"t{index}",
        "label": label,
        "kpi": tile.kpi,
        "format": KPI_FORMATS[tile.kpi],
        "window": tile.window,
        "key": f"{prefix}.{tile.window}.{tile.kpi}",
        "scope": scope,
        "sources_key": sources_key,
        "thresholds": tile.thresholds.model_dump() if tile.thresholds else None,
        "note": (service_level_note(settings, tile.queue)
                 if tile.kpi == "service_level" and not tile.channel else ""),
    }


def resolve_boards(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every board by id, ready to render; the default board when the config has none."""
    boards = settings.boards or {"overview": default_board(settings)}
    return {
        board_id: {
            "id": board_id,
            "title": board.title or board_id,
            "columns": board.columns,
            "tiles": [resolve_tile(i, t, settings) for i, t in enumerate(board.tiles)],
        }
        for board_id, board in boards.items()
    }


def text_direction(locale: str) -> str:
    """'rtl' for right-to-left languages, else 'ltr'."""
    return "rtl" if locale.split("-")[0].lower() in RTL_LOCALES else "ltr"
