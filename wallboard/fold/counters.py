"""The counter vector every window keeps: names, indices, sketches and wait-histogram edges."""

from __future__ import annotations

from collections.abc import Iterable

MAX_LEGAL_RULES = 4

FIELDS: tuple[str, ...] = (
    "offered", "answered", "answered_in_sl", "abandoned", "abandoned_short", "abandoned_in_sl",
    "wait_answered_sum", "wait_abandoned_sum", "handled", "handle_sum",
    # Service-level events under the queue's variant, attributed when they happen (§1.4).
    "sl_met", "sl_missed",
    "transfers", "callbacks_requested", "callbacks_completed", "callbacks_in_promise",
    "csat_n", "csat_good", "nps_n", "nps_promoters", "nps_detractors", "ces_n", "ces_sum",
    "ces_sq",
    "tickets_created", "tickets_resolved", "tickets_reopened", "first_responses", "frt_sum",
    "resolution_sum", "sla_breaches", "fcr_resolved", "fcr_reopened",
    *(f"legal_ok_{i}" for i in range(MAX_LEGAL_RULES)),
    *(f"legal_breach_{i}" for i in range(MAX_LEGAL_RULES)),
    # Agent time in state (agent windows only).
    "available_s", "busy_s", "wrapup_s", "away_s",
)
_INDEX = {name: i for i, name in enumerate(FIELDS)}
OFFERED = _INDEX["offered"]
ANSWERED = _INDEX["answered"]
ANSWERED_IN_SL = _INDEX["answered_in_sl"]
ABANDONED = _INDEX["abandoned"]
ABANDONED_SHORT = _INDEX["abandoned_short"]
ABANDONED_IN_SL = _INDEX["abandoned_in_sl"]
WAIT_ANSWERED_SUM = _INDEX["wait_answered_sum"]
WAIT_ABANDONED_SUM = _INDEX["wait_abandoned_sum"]
HANDLED = _INDEX["handled"]
HANDLE_SUM = _INDEX["handle_sum"]
SL_MET = _INDEX["sl_met"]
SL_MISSED = _INDEX["sl_missed"]
TRANSFERS = _INDEX["transfers"]
CALLBACKS_REQUESTED = _INDEX["callbacks_requested"]
CALLBACKS_COMPLETED = _INDEX["callbacks_completed"]
CALLBACKS_IN_PROMISE = _INDEX["callbacks_in_promise"]
CSAT_N = _INDEX["csat_n"]
CSAT_GOOD = _INDEX["csat_good"]
NPS_N = _INDEX["nps_n"]
NPS_PROMOTERS = _INDEX["nps_promoters"]
NPS_DETRACTORS = _INDEX["nps_detractors"]
CES_N = _INDEX["ces_n"]
CES_SUM = _INDEX["ces_sum"]
CES_SQ = _INDEX["ces_sq"]
TICKETS_CREATED = _INDEX["tickets_created"]
TICKETS_RESOLVED = _INDEX["tickets_resolved"]
TICKETS_REOPENED = _INDEX["tickets_reopened"]
FIRST_RESPONSES = _INDEX["first_responses"]
FRT_SUM = _INDEX["frt_sum"]
RESOLUTION_SUM = _INDEX["resolution_sum"]
SLA_BREACHES = _INDEX["sla_breaches"]
FCR_RESOLVED = _INDEX["fcr_resolved"]
FCR_REOPENED = _INDEX["fcr_reopened"]
LEGAL_OK = _INDEX["legal_ok_0"]
LEGAL_BREACH = _INDEX["legal_breach_0"]
AVAILABLE_S = _INDEX["available_s"]
BUSY_S = _INDEX["busy_s"]
WRAPUP_S = _INDEX["wrapup_s"]
AWAY_S = _INDEX["away_s"]
STATE_TIME = {"available": AVAILABLE_S, "busy": BUSY_S, "wrapup": WRAPUP_S, "away": AWAY_S}

# Sparse quantile sketches kept beside the counters.
SKETCH_WAIT, SKETCH_HANDLE, SKETCH_FRT, SKETCH_RESOLUTION = range(4)
SKETCH_KINDS = 4

# Prometheus-style edges; the configured service-level thresholds are merged in so that
# "answered within T" read from the histogram is exact, not interpolated.
DEFAULT_WAIT_EDGES = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 360, 600, 900, 1800, 3600)

Deltas = list[tuple[int, float]]


class Layout:
    """Where each counter and histogram bin sits in a queue window's vector."""

    def __init__(self, extra_edges: Iterable[float] = ()) -> None:
        self.edges: tuple[float, ...] = tuple(sorted({*map(float, DEFAULT_WAIT_EDGES),
                                                      *map(float, extra_edges)}))
        bins = len(self.edges) + 1  # the last bin is +Inf
        self.answered_hist = len(FIELDS)
        self.abandoned_hist = self.answered_hist + bins
        self.size = self.abandoned_hist + bins

    def zeros(self) -> list[float]:
        """A fresh all-zero counter vector."""
        return [0.0] * self.size

    def cumulative(self, vector: list[float], base: int) -> list[float]:
        """Cumulative histogram counts for 'le' buckets, +Inf last."""
        out, running = [], 0.0
        for i in range(len(self.edges) + 1):
            running += vector[base + i]
            out.append(running)
        return out


def add_into(total: list[float], vector: list[float]) -> None:
    """Add `vector` into `total` element-wise (total may be longer)."""
    for i, value in enumerate(vector):
        if value:
            total[i] += value
