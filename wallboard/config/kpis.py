"""The KPI names a tile may show, live or over a window, and how the board formats each."""

from __future__ import annotations

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
