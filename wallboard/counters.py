"""The counter vector every window keeps: names, indices and wait-histogram edges."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

FIELDS = (
    "offered",
    "answered",
    "answered_in_sl",
    "abandoned",
    "abandoned_short",
    "abandoned_in_sl",
    "wait_answered_sum",
    "wait_abandoned_sum",
    "handled",
    "handle_sum",
    "csat_n",
    "csat_good",
    "nps_n",
    "nps_promoters",
    "nps_detractors",
    "ces_n",
    "ces_sum",
    "tickets_created",
    "tickets_resolved",
)
(
    OFFERED,
    ANSWERED,
    ANSWERED_IN_SL,
    ABANDONED,
    ABANDONED_SHORT,
    ABANDONED_IN_SL,
    WAIT_ANSWERED_SUM,
    WAIT_ABANDONED_SUM,
    HANDLED,
    HANDLE_SUM,
    CSAT_N,
    CSAT_GOOD,
    NPS_N,
    NPS_PROMOTERS,
    NPS_DETRACTORS,
    CES_N,
    CES_SUM,
    TICKETS_CREATED,
    TICKETS_RESOLVED,
) = range(len(FIELDS))

# Prometheus-style edges; the configured service-level thresholds are merged in so that
# "answered within T" read from the histogram is exact, not interpolated.
DEFAULT_WAIT_EDGES = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 360, 600, 900, 1800, 3600)

Deltas = list[tuple[int, float]]


class Layout:
    """Where each counter and histogram bin sits in a window's vector."""

    def __init__(self, extra_edges: Iterable[float] = ()) -> None:
        self.edges: tuple[float, ...] = tuple(sorted({*map(float, DEFAULT_WAIT_EDGES),
                                                      *map(float, extra_edges)}))
        bins = len(self.edges) + 1  # the last bin is +Inf
        self.answered_hist = len(FIELDS)
        self.abandoned_hist = self.answered_hist + bins
        self.size = self.abandoned_hist + bins

    def wait_bin(self, wait_s: float) -> int:
        """Index of the bin for a wait: the first edge >= wait (Prometheus 'le' semantics)."""
        return bisect.bisect_left(self.edges, wait_s)

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
    """Add `vector` into `total` element-wise."""
    for i, value in enumerate(vector):
        if value:
            total[i] += value
