"""KPI definitions: formulas over a window's counter vector, and the live KPIs."""

from __future__ import annotations

from wallboard import counters as c

# Service-level variant in use (kpis.md §1.2): abandons after the short-abandon threshold count
# as misses, short abandons are excluded from numerator and denominator; counted when the
# contact is answered or abandons.
SL_VARIANT = "abandons_negative_short_excluded"

LIVE_KPIS = frozenset({
    "waiting", "oldest_wait_s", "agents_available", "agents_busy", "agents_wrapup",
    "agents_away", "agents_offline", "agents_staffed", "tickets_open",
})
WINDOW_KPIS = frozenset({
    "offered", "answered", "abandoned", "abandoned_short", "service_level", "asa_s", "aht_s",
    "abandon_rate", "csat", "csat_n", "nps", "nps_n", "ces", "ces_n", "tickets_created",
    "tickets_resolved",
})
# How the board formats each KPI: count, duration (seconds), ratio (0–1 shown as %), score.
KPI_FORMATS: dict[str, str] = {
    **{name: "count" for name in LIVE_KPIS | WINDOW_KPIS},
    "oldest_wait_s": "duration", "asa_s": "duration", "aht_s": "duration",
    "service_level": "ratio", "abandon_rate": "ratio", "csat": "ratio",
    "nps": "score", "ces": "score",
}


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den > 0 else None


def window_kpis(v: list[float]) -> dict[str, float | int | None]:
    """Every windowed KPI from one counter vector; None where there is nothing to divide."""
    abandoned_long = v[c.ABANDONED] - v[c.ABANDONED_SHORT]
    completed = v[c.ANSWERED] + abandoned_long
    nps_n = v[c.NPS_N]
    return {
        "offered": int(v[c.OFFERED]),
        "answered": int(v[c.ANSWERED]),
        "abandoned": int(v[c.ABANDONED]),
        "abandoned_short": int(v[c.ABANDONED_SHORT]),
        "service_level": _ratio(v[c.ANSWERED_IN_SL], completed),
        "asa_s": _ratio(v[c.WAIT_ANSWERED_SUM], v[c.ANSWERED]),
        "aht_s": _ratio(v[c.HANDLE_SUM], v[c.HANDLED]),
        "abandon_rate": _ratio(abandoned_long, completed),
        "csat": _ratio(v[c.CSAT_GOOD], v[c.CSAT_N]),
        "csat_n": int(v[c.CSAT_N]),
        "nps": (round(100.0 * (v[c.NPS_PROMOTERS] - v[c.NPS_DETRACTORS]) / nps_n, 2)
                if nps_n else None),
        "nps_n": int(nps_n),
        "ces": _ratio(v[c.CES_SUM], v[c.CES_N]),
        "ces_n": int(v[c.CES_N]),
        "tickets_created": int(v[c.TICKETS_CREATED]),
        "tickets_resolved": int(v[c.TICKETS_RESOLVED]),
    }
