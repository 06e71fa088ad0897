"""KPI definitions: formulas over a window's counters and sketches, and the live KPI names."""

from __future__ import annotations

import math
from collections.abc import Sequence

from wallboard.fold import counters as c
from wallboard.fold.sketch import count as sketch_count
from wallboard.fold.sketch import quantiles

Z95 = 1.959964

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
    # Clamped: counts read back from a store may be inconsistent; a ratio never leaves [0, 1].
    p = min(1.0, max(0.0, successes / n))
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


def row_kpis(v: Sequence[float], wait: dict[int, int]) -> dict[str, object]:
    """A report row's KPIs: window_kpis' own definitions, from the wait sketch alone."""
    short = v[c.ABANDONED_SHORT]
    abandoned_long = v[c.ABANDONED] - short
    wait_p50, wait_p90 = _pcts(wait)
    handling = v[c.BUSY_S] + v[c.WRAPUP_S]
    return {
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
        "abandon_rate": _ratio(abandoned_long, v[c.ANSWERED] + abandoned_long),
        "occupancy": _ratio(handling, handling + v[c.AVAILABLE_S]),
        "transfers": int(v[c.TRANSFERS]),
    }


def window_kpis(v: Sequence[float], sketches: Sequence[dict[int, int]], min_sample: int = 1,
                legal_rules: Sequence[str] = ()) -> dict[str, object]:
    """Every windowed KPI from one counter vector and its sketches."""
    out = row_kpis(v, sketches[c.SKETCH_WAIT])  # extended in place: no copy per window
    handle_p50, handle_p90 = _pcts(sketches[c.SKETCH_HANDLE])
    frt_p50, frt_p90 = _pcts(sketches[c.SKETCH_FRT])
    res_p50, res_p90 = _pcts(sketches[c.SKETCH_RESOLUTION])
    out.update({
        "handle_p50_s": handle_p50, "handle_p90_s": handle_p90,
        "abandon_rate_all": _ratio(v[c.ABANDONED], v[c.ANSWERED] + v[c.ABANDONED]),
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
    })
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
