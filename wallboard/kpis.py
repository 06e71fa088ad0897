"""KPI definitions: formulas over a window's counters and sketches, and the live KPI names."""

from __future__ import annotations

import math
from collections.abc import Sequence

from wallboard import counters as c
from wallboard.sketch import count as sketch_count
from wallboard.sketch import quantiles

MET, MISSED, EXCLUDED = 1, -1, 0
Z95 = 1.959964

LIVE_KPIS = frozenset({
    "waiting", "oldest_wait_s", "agents_available", "agents_busy", "agents_wrapup",
    "agents_away", "agents_offline", "agents_staffed", "callbacks_pending", "tickets_open",
    "tickets_pending",
    "tickets_at_risk", "tickets_overdue", "oldest_ticket_s", "agents_needed", "forecast_sl",
    "forecast_wait_s", "forecast_abandon",
})
WINDOW_KPIS = frozenset({
    "offered", "answered", "abandoned", "abandoned_short", "abandoned_long", "service_level",
    "sl_met", "sl_missed", "asa_s", "aht_s", "wait_p50_s", "wait_p90_s", "handle_p50_s",
    "handle_p90_s", "abandon_rate", "abandon_rate_all", "occupancy", "transfers",
    "transfer_rate", "callbacks_requested", "callbacks_completed", "callbacks_in_promise",
    "csat", "csat_n", "csat_low", "csat_high", "nps", "nps_n", "nps_margin", "ces", "ces_n",
    "ces_margin", "tickets_created", "tickets_resolved", "tickets_reopened", "first_responses",
    "frt_avg_s", "frt_p50_s", "frt_p90_s", "resolution_avg_s", "resolution_p50_s",
    "resolution_p90_s", "sla_breaches", "fcr", "fcr_n",
})
_DURATIONS = {"oldest_wait_s", "asa_s", "aht_s", "wait_p50_s", "wait_p90_s", "handle_p50_s",
              "handle_p90_s", "frt_avg_s", "frt_p50_s", "frt_p90_s", "resolution_avg_s",
              "resolution_p50_s", "resolution_p90_s", "oldest_ticket_s", "forecast_wait_s"}
_RATIOS = {"service_level", "abandon_rate", "abandon_rate_all", "occupancy", "transfer_rate",
           "csat", "csat_low", "csat_high", "fcr", "forecast_sl", "forecast_abandon"}
# How the board formats each KPI: count, duration (seconds), ratio (0–1 shown as %), score.
KPI_FORMATS: dict[str, str] = {
    name: ("duration" if name in _DURATIONS else "ratio" if name in _RATIOS else "count")
    for name in LIVE_KPIS | WINDOW_KPIS
}
KPI_FORMATS.update({"nps": "score", "ces": "score", "nps_margin": "score",
                    "ces_margin": "score"})


def sl_outcome(variant: str, left_as: str, wait_s: float, threshold_s: float,
               short_s: float) -> int:
    """MET, MISSED or EXCLUDED for a contact leaving the queue, under a variant (kpis.md §1.2)."""
    if left_as == "answered":
        return MET if wait_s <= threshold_s else MISSED
    if variant == "answered_only":
        return EXCLUDED  # abandons and flow-outs never count
    if wait_s > threshold_s:
        return MISSED
    if left_as == "transferred":
        return EXCLUDED  # a flow-out within T is neither met nor missed
    if variant == "removed_within_threshold":
        return MET  # Amazon Connect: any removal within T, short abandons included
    if left_as == "abandoned" and wait_s < short_s:
        return EXCLUDED
    if variant == "abandons_negative" and left_as == "abandoned":
        return MISSED
    if variant == "abandons_positive":
        return MET
    return EXCLUDED  # abandons_ignored, and callbacks within T outside Amazon's variant


def expiry_counts(variant: str) -> bool:
    """Whether a contact still waiting at T is a miss at that moment (all but answered-only)."""
    return variant != "answered_only"


def sl_variants(v: Sequence[float]) -> dict[str, float | None]:
    """The five variants from plain counts (kpis.md §1.3), attributed at answer or abandon."""
    answered, in_sl = v[c.ANSWERED], v[c.ANSWERED_IN_SL]
    short, within = v[c.ABANDONED_SHORT], v[c.ABANDONED_IN_SL]
    long_abandons = v[c.ABANDONED] - short
    return {
        "answered_only": _ratio(in_sl, answered),
        "abandons_negative": _ratio(in_sl, answered + long_abandons),
        "abandons_ignored": _ratio(in_sl, answered + long_abandons - within),
        "abandons_positive": _ratio(in_sl + within, answered + long_abandons),
        "removed_within_threshold": _ratio(in_sl + within + short, answered + v[c.ABANDONED]),
    }


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den > 0 else None


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _survey(v: Sequence[float], min_sample: int) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {}
    n = v[c.CSAT_N]
    shown = n >= min_sample
    interval = wilson(v[c.CSAT_GOOD], n) if shown else None
    out["csat"] = _ratio(v[c.CSAT_GOOD], n) if shown else None
    out["csat_n"] = int(n)
    out["csat_low"] = round(interval[0], 6) if interval else None
    out["csat_high"] = round(interval[1], 6) if interval else None
    n = v[c.NPS_N]
    if n >= min_sample:
        p, d = v[c.NPS_PROMOTERS] / n, v[c.NPS_DETRACTORS] / n
        out["nps"] = round(100.0 * (p - d), 2)
        out["nps_margin"] = round(100.0 * Z95 * math.sqrt(max(0.0, p + d - (p - d) ** 2) / n), 2)
    else:
        out["nps"] = out["nps_margin"] = None
    out["nps_n"] = int(n)
    n = v[c.CES_N]
    if n >= min_sample:
        mean = v[c.CES_SUM] / n
        var = max(0.0, (v[c.CES_SQ] - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        out["ces"] = round(mean, 4)
        out["ces_margin"] = round(Z95 * math.sqrt(var / n), 4)
    else:
        out["ces"] = out["ces_margin"] = None
    out["ces_n"] = int(n)
    return out


def _pcts(sketch: dict[int, int]) -> tuple[float | None, float | None]:
    p50, p90 = quantiles(sketch, (0.5, 0.9))
    return (None if p50 is None else round(p50, 3), None if p90 is None else round(p90, 3))


def window_kpis(v: Sequence[float], sketches: Sequence[dict[int, int]], min_sample: int = 1,
                legal_rules: Sequence[str] = ()) -> dict[str, object]:
    """Every windowed KPI from one counter vector and its sketches."""
    short = v[c.ABANDONED_SHORT]
    abandoned_long = v[c.ABANDONED] - short
    completed = v[c.ANSWERED] + abandoned_long
    wait_p50, wait_p90 = _pcts(sketches[c.SKETCH_WAIT])
    handle_p50, handle_p90 = _pcts(sketches[c.SKETCH_HANDLE])
    frt_p50, frt_p90 = _pcts(sketches[c.SKETCH_FRT])
    res_p50, res_p90 = _pcts(sketches[c.SKETCH_RESOLUTION])
    handling = v[c.BUSY_S] + v[c.WRAPUP_S]
    out: dict[str, object] = {
        "offered": int(v[c.OFFERED]),
        "answered": int(v[c.ANSWERED]),
        "abandoned": int(v[c.ABANDONED]),
        "abandoned_short": int(short),
        "abandoned_long": int(abandoned_long),
        "service_level": _ratio(v[c.SL_MET], v[c.SL_MET] + v[c.SL_MISSED]),
        "sl_met": int(v[c.SL_MET]),
        "sl_missed": int(v[c.SL_MISSED]),
        "asa_s": _ratio(v[c.WAIT_ANSWERED_SUM], v[c.ANSWERED]),
        "aht_s": _ratio(v[c.HANDLE_SUM], v[c.HANDLED]),
        "wait_p50_s": wait_p50, "wait_p90_s": wait_p90,
        "handle_p50_s": handle_p50, "handle_p90_s": handle_p90,
        "abandon_rate": _ratio(abandoned_long, completed),
        "abandon_rate_all": _ratio(v[c.ABANDONED], v[c.ANSWERED] + v[c.ABANDONED]),
        "occupancy": _ratio(handling, handling + v[c.AVAILABLE_S]),
        "transfers": int(v[c.TRANSFERS]),
        "transfer_rate": _ratio(v[c.TRANSFERS], v[c.HANDLED]),
        "callbacks_requested": int(v[c.CALLBACKS_REQUESTED]),
        "callbacks_completed": int(v[c.CALLBACKS_COMPLETED]),
        "callbacks_in_promise": int(v[c.CALLBACKS_IN_PROMISE]),
        "tickets_created": int(v[c.TICKETS_CREATED]),
        "tickets_resolved": int(v[c.TICKETS_RESOLVED]),
        "tickets_reopened": int(v[c.TICKETS_REOPENED]),
        "first_responses": int(v[c.FIRST_RESPONSES]),
        "frt_avg_s": _ratio(v[c.FRT_SUM], sketch_count(sketches[c.SKETCH_FRT])),
        "frt_p50_s": frt_p50, "frt_p90_s": frt_p90,
        "resolution_avg_s": _ratio(v[c.RESOLUTION_SUM],
                                   sketch_count(sketches[c.SKETCH_RESOLUTION])),
        "resolution_p50_s": res_p50, "resolution_p90_s": res_p90,
        "sla_breaches": int(v[c.SLA_BREACHES]),
        # Lagged: a resolution stops counting as first-contact once its ticket is reopened.
        "fcr": _ratio(v[c.FCR_RESOLVED] - v[c.FCR_REOPENED], v[c.FCR_RESOLVED]),
        "fcr_n": int(v[c.FCR_RESOLVED]),
    }
    out.update(_survey(v, min_sample))
    if legal_rules:
        out["legal"] = {
            name: {"breaches": int(v[c.LEGAL_BREACH + i]),
                   "compliance": _ratio(v[c.LEGAL_OK + i],
                                        v[c.LEGAL_OK + i] + v[c.LEGAL_BREACH + i])}
            for i, name in enumerate(legal_rules)
        }
    return out


def agent_window_kpis(v: Sequence[float], min_sample: int) -> dict[str, object]:
    """The KPIs shown per agent or team: handling, occupancy, and surveys as for a queue."""
    handling = v[c.BUSY_S] + v[c.WRAPUP_S]
    out: dict[str, object] = {
        "answered": int(v[c.ANSWERED]),
        "handled": int(v[c.HANDLED]),
        "aht_s": _ratio(v[c.HANDLE_SUM], v[c.HANDLED]),
        "transfers": int(v[c.TRANSFERS]),
        "occupancy": _ratio(handling, handling + v[c.AVAILABLE_S]),
    }
    # The same sample floor as queues: an agent judged on three answers is judged on noise.
    out.update(_survey(v, min_sample))
    return out
