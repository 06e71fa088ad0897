"""Boards: the default board, and tiles resolved into the flat keys and labels the page reads."""

from __future__ import annotations

from typing import Any, Literal

from wallboard.config.boards import AGENT_TILES, BoardConfig, ThresholdConfig, TileConfig
from wallboard.config.kpis import KPI_FORMATS
from wallboard.config.settings import Settings
from wallboard.kpi.waitratio import RATIO_CRIT, RATIO_WARN, WAIT_KPIS, RatioNeed
from wallboard.server.locales import language, messages
from wallboard.server.people import table_columns
from wallboard.server.scope import Scope
from wallboard.server.scope import scoped_tree as scoped_tree  # re-exported: boards prune trees

RTL_LOCALES = frozenset({"he", "ar", "fa", "ur"})
# A service level this far under its target is red (amber below the target); the page's queue
# table uses the same margin.
SL_CRIT_BELOW = 0.1


def service_level_note(settings: Settings, queue: str | None, msg: dict[str, str]) -> str:
    """How a service-level tile is computed: the variant and the X/Y target."""
    queues = [settings.queues[queue]] if queue else list(settings.queues.values())
    variants = {q.service_level.variant for q in queues}
    if len(variants) != 1:
        return msg["variant.mixed"]
    sl = queues[0].service_level
    target = f"{round(sl.target * 100):d}/{sl.threshold_s:g}s" if queue else ""
    return " · ".join(p for p in (msg[f"variant.{variants.pop()}"], target) if p)


def _tile(kpi: str, window: str | None = None, queue: str | None = None,
          direction: Literal["high_bad", "low_bad"] = "high_bad", warn: float | None = None,
          crit: float | None = None, **extra: Any) -> TileConfig:
    thresholds = (ThresholdConfig(direction=direction, warn=warn, crit=crit)
                  if warn is not None or crit is not None else None)
    return TileConfig(kpi=kpi, window=window, queue=queue, thresholds=thresholds, **extra)


def default_board(settings: Settings) -> BoardConfig:
    """A sensible board for a config that defines none: the site, then one row per queue."""
    windows = settings.windows

    def pick(*preferred: str) -> str:
        return next((w for w in preferred if w in windows), windows[0])

    tiles = [
        _tile("waiting", warn=5, crit=10),
        _tile("oldest_wait_s"),  # judged against each queue's own threshold
        _tile("service_level", pick("today"), direction="low_bad", warn=0.8, crit=0.7),
        _tile("abandon_rate", pick("today"), warn=0.05, crit=0.1),
        _tile("agents_available", direction="low_bad", warn=1, crit=0),
        _tile("asa_s", pick("1h", "15m")),
        _tile("answered", pick("today")),
        _tile("csat", pick("today"), direction="low_bad", warn=0.8, crit=0.7, type="survey"),
    ]
    for name in settings.queues:
        tiles += [
            _tile("waiting", queue=name, warn=3, crit=6),
            _tile("oldest_wait_s", queue=name),
            _tile("service_level", pick("15m", "1h"), name),  # against the queue's own target
            _tile("agents_available", queue=name, direction="low_bad", warn=1, crit=0),
        ]
    return BoardConfig(title="Overview", columns=4, tiles=tiles)


def _label(tile: TileConfig, scope: str | None, msg: dict[str, str]) -> str:
    if tile.label:
        return tile.label
    if tile.type == "survey":
        name = msg[f"type.survey_{tile.kpi}"]
    elif tile.type in ("number", "ring", "sparkline"):
        name = msg.get(f"kpi.{tile.kpi}", tile.kpi or "")
    else:
        name = msg[f"type.{tile.type}"]
    if tile.type in ("clock", "announcements", "queue_table", "team_table") or not scope:
        return name  # site-wide: the site's name is in the header, not on every tile
    return f"{name} · {scope}"


def resolve_tile(index: int, tile: TileConfig, settings: Settings,
                 msg: dict[str, str]) -> dict[str, Any]:
    """A tile as the page needs it: its keys, format, label, span and thresholds."""
    kpi = tile.kpi or ""
    if tile.queue:
        prefix, path = f"queues.{tile.queue}", ["queues", tile.queue]
        queue = settings.queues[tile.queue]
        scope = queue.label or tile.queue
        sources_key: str | None = f"{prefix}.sources"
    elif tile.channel:
        prefix, scope, sources_key = f"channels.{tile.channel}", tile.channel, None
        path = ["channels", tile.channel]
    else:
        prefix, scope, sources_key = "total", settings.site.name, None
        path = ["total"]
    if tile.type in AGENT_TILES and tile.team and not tile.queue:
        scope = tile.team
    key = f"{prefix}.{tile.window}.{kpi}"
    out: dict[str, Any] = {
        "id": f"t{index}", "type": tile.type,
        "label": _label(tile, scope if tile.queue or tile.channel or tile.team else None, msg),
        "kpi": kpi, "format": KPI_FORMATS.get(kpi, "count"), "window": tile.window,
        "key": key, "path": [*path, tile.window, kpi], "prefix": prefix, "scope": scope,
        "scope_path": path,
        "sources_key": sources_key,
        "cols": tile.cols, "rows": tile.rows,
        "thresholds": tile.thresholds.model_dump() if tile.thresholds else None,
        "note": (service_level_note(settings, tile.queue, msg)
                 if kpi == "service_level" and not tile.channel
                 and tile.type in ("number", "ring") else ""),
    }
    if kpi in WAIT_KPIS and tile.thresholds is None and tile.type in ("number", "sparkline"):
        # No thresholds set: judged against each queue's own service-level threshold, through
        # the worst wait/threshold ratio of the queues in scope (wallboard/kpi/waitratio.py).
        out["thresholds"] = {"direction": "high_bad", "warn": RATIO_WARN, "crit": RATIO_CRIT}
        out["level_key"] = f"{prefix}.{tile.window}.threshold_ratio.{kpi}"
    if kpi == "service_level" and tile.thresholds is None and tile.type in ("number", "ring"):
        # No thresholds set: the queue's own target (one shared by every queue in scope).
        scoped = ([settings.queues[tile.queue]] if tile.queue else
                  [q for q in settings.queues.values()
                   if tile.channel is None or q.channel == tile.channel])
        targets = {q.service_level.target for q in scoped}
        if len(targets) == 1:
            target = targets.pop()
            out["thresholds"] = {"direction": "low_bad", "warn": target,
                                 "crit": max(0.0, round(target - SL_CRIT_BELOW, 6))}
    if tile.type == "number" and tile.trend:
        out["trend_key"] = f"trend.{key}"
    if tile.type == "sparkline":
        out["series_key"] = f"series.{key}"
    if tile.type == "ring":
        targets = {q.service_level.target for q in settings.queues.values()}
        out["target"] = (settings.queues[tile.queue].service_level.target if tile.queue
                         else targets.pop() if len(targets) == 1 else None)
    if tile.type == "queue_table":
        sl_window = tile.window if tile.window != "live" else None
        out["rows_keys"] = [
            {"queue": q, "label": f"queues.{q}.label", "waiting": f"queues.{q}.live.waiting",
             "oldest": f"queues.{q}.live.oldest_wait_s",
             "oldest_ratio": f"queues.{q}.live.threshold_ratio.oldest_wait_s",
             "sl": f"queues.{q}.{sl_window}.service_level" if sl_window else None,
             "sources": f"queues.{q}.sources"}
            for q in (tile.queues or list(settings.queues))]
    if tile.type == "legal":
        out["legal_key"] = f"{prefix}.legal.{tile.rule}"
    if tile.type == "forecast":  # the snapshot's forecast_today block (server/forecasting.py)
        out["forecast_path"] = (["forecast_today", "queues", tile.queue] if tile.queue
                                else ["forecast_today", "total"])
        out["forecast_key"] = ".".join(out["forecast_path"])
    if tile.type == "survey":
        out["n_key"] = f"{prefix}.{tile.window}.{kpi}_n"
        out["min_sample"] = settings.site.min_survey_sample
    if tile.type in AGENT_TILES:  # rows come from people.<board>.<tile> (server/people.py)
        out["agent_queues"] = tile.queues or ([tile.queue] if tile.queue else [])
        out["team"] = tile.team
        out["states"] = ({state: levels.model_dump() for state, levels in tile.states.items()}
                         if tile.states else {})
        out["columns"] = (list(table_columns(tile.type, tile.columns))
                          if tile.type != "agent_grid" else [])
        out["sort"] = tile.sort
        out["column_thresholds"] = {name: t.model_dump() for name, t in
                                    (tile.column_thresholds or {}).items()}
    return out


def resolve_board(board_id: str, board: BoardConfig, settings: Settings) -> dict[str, Any]:
    """One board, ready to render in its own language."""
    locale = board.locale or settings.site.locale
    msg = messages(locale)
    tiles = [resolve_tile(i, t, settings, msg) for i, t in enumerate(board.tiles)]
    for tile in tiles:
        if tile["type"] in AGENT_TILES:
            tile["people_path"] = ["people", board_id, tile["id"]]
            tile["people_key"] = f"people.{board_id}.{tile['id']}"
    return {
        "id": board_id, "title": board.title or board_id, "columns": board.columns,
        "rows": board.rows, "locale": locale, "dir": text_direction(locale),
        "messages": msg, "stale_after_s": board.stale_after_s,
        "pixel_shift_px": board.pixel_shift_px, "alert": board.alert.model_dump(),
        "tiles": tiles, "agents": board.agents,
        # Source badges: a tile with no queue of its own counts every source.
        "sources": sorted(settings.sources),
    }


def resolve_boards(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every board by id, ready to render; the default board when the config has none."""
    boards = settings.boards or {"overview": default_board(settings)}
    return {board_id: resolve_board(board_id, board, settings)
            for board_id, board in boards.items()}


# What every board reads besides its tiles: the header.
_BOARD_COMMON: Scope = (("meta",),)
# What a board's source badges read of each source: not last_error nor counts (admin's view).
SOURCE_FIELDS = ("status", "last_event_ts", "lag_s")


def board_scope(board: dict[str, Any]) -> Scope:
    """The snapshot paths a board's page reads: with access on, its socket gets only these.

    Paths, not key prefixes: queue names may contain dots, and `queues.sales.` is also the
    start of every key of a queue named `sales.tenant-b`.
    """
    paths: set[tuple[str, ...]] = set(_BOARD_COMMON)
    paths.add(("announcements", board["id"]))  # its own ticker, not the other boards'
    paths.add(("layouts", board["id"]))  # its layout's revision: the board editor's saves
    paths.update(("sources", name, field) for name in board.get("sources", ())
                 for field in SOURCE_FIELDS)
    for tile in board["tiles"]:
        paths.add(tuple(tile["scope_path"]))
        paths.update(("queues", row["queue"]) for row in tile.get("rows_keys", ()))
        if tile.get("forecast_path"):  # only forecast tiles' boards get today's forecast
            paths.add(tuple(tile["forecast_path"]))
        if tile.get("people_path"):  # its own agent rows, never the snapshot's `agents`
            paths.add(tuple(tile["people_path"]))
        # History keeps a series and a trend per tile key: the key is one segment there.
        if tile.get("series_key"):
            paths.add(("series", tile["key"]))
        if tile.get("trend_key"):
            paths.add(("trend", tile["key"]))
    return tuple(sorted(paths))


def history_keys(boards: dict[str, dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    """The flat keys whose past values a board shows (sparklines, trends), with their paths."""
    return {tile["key"]: tuple(tile["path"]) for board in boards.values()
            for tile in board["tiles"] if "series_key" in tile or "trend_key" in tile}


def needs_forecast(boards: dict[str, dict[str, Any]]) -> bool:
    """Whether some board shows a forecast tile (the snapshot then carries forecast_today)."""
    return any(tile["type"] == "forecast" for board in boards.values()
               for tile in board["tiles"])


def ratio_needs(boards: dict[str, dict[str, Any]]) -> frozenset[RatioNeed]:
    """The wait/threshold ratios some board reads: (scope path, window, kpi) each."""
    needs: set[RatioNeed] = set()
    for board in boards.values():
        for tile in board["tiles"]:
            if "level_key" in tile:
                needs.add((tuple(tile["scope_path"]), tile["window"], tile["kpi"]))
            needs.update((("queues", row["queue"]), "live", "oldest_wait_s")
                         for row in tile.get("rows_keys", ()))  # the queue table's colour
    return frozenset(needs)


def text_direction(locale: str) -> str:
    """'rtl' for right-to-left languages, else 'ltr'."""
    return "rtl" if language(locale) in RTL_LOCALES else "ltr"
