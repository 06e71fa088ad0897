"""Mergeable and subtractable quantile sketch for durations (DDSketch-style, kpis.md §6.5).

A sketch is a plain ``dict[int, int]`` from bin to count. Plain dicts and module-level
functions are the fastest option measured: a ``__slots__`` class adds an attribute lookup to
each insert and makes no other call cheaper.

Bins are log-spaced with ``γ = (1+α)/(1−α)`` and ``α = RELATIVE_ERROR = 0.01``:

* a value ``x > MIN_VALUE`` goes to bin ``i = ceil(log_γ x)``, which holds ``(γ^(i−1), γ^i]``;
* a value ``x <= MIN_VALUE`` (0.01 s, so 0 and negative glitches too) goes to ``ZERO_BIN``;
* a finite value ``x > MAX_VALUE`` (10¹⁵ s) goes to ``MAX_BIN``, the bin of MAX_VALUE: the
  sketch's range ends there, so a huge value (1.7976931348623157e308) never overflows an
  estimate; it is reported as about MAX_VALUE;
* bin ``i`` is reported as ``2γ^i/(γ+1)``. Every value in the bin is within relative error α
  of that estimate (the bin edges are exactly α away, and float rounding can add about 1e-15).
  The zero bin is reported as 0.0, so its absolute error is at most MIN_VALUE.

Bins are never collapsed. Counts are added and subtracted exactly, so a window kept as a
running total (add a bucket's sketch on insert and subtract it on eviction) equals the sketch
of the window's values bin for bin. Keys whose count reaches 0 are deleted, so memory follows
the number of non-empty bins. That number is bounded by the value range:
at most ``floor(ln(hi/lo)/ln γ) + 2`` value bins plus the zero bin. That makes 801 keys for
10 ms–1 day and 1,096 for 10 ms–1 year.

Counts are signed. A correction may subtract from a bin that holds nothing in the bucket where
it lands, and subtraction never raises. ``count`` and ``quantiles`` use only the bins with
positive counts and treat the rest as empty.

Ranks use the nearest-rank definition. Over ``n`` values, quantile ``q`` is the value of rank
``max(1, ceil(q·n))`` in ascending order. So ``q = 0`` is the minimum, ``q = 1`` the maximum
and ``q = 0.5`` over 4 values the 2nd. ``q·n`` is computed in floating point and reduced by
a relative tolerance of 1e-12 before ``ceil``. This stops representation error from raising the
rank: ``0.07 * 100 == 7.000000000000001`` gives rank 7, not 8. The sketch returns the estimate
of the bin holding the exact nearest-rank value, so the relative error guarantee carries over
to every quantile.

Values reach sketches as ``(kind, bin_of(x), count)`` deltas (``add_sketches``, the per-event
path; see windows.py); whole sketches are added or subtracted with ``merge_sketches``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate
from math import ceil, floor, log

__all__ = [
    "GAMMA",
    "MAX_BIN",
    "MAX_VALUE",
    "MIN_VALUE",
    "RELATIVE_ERROR",
    "ZERO_BIN",
    "SketchDeltas",
    "Sketches",
    "add_sketches",
    "bin_estimate",
    "bin_of",
    "count",
    "merge_sketches",
    "quantiles",
]

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
MIN_VALUE = 0.01  # seconds; values at or below go to the zero bin, reported as 0.0
MAX_VALUE = 1e15  # seconds; finite values above go to MAX_BIN (the estimate stays finite)

_LN_GAMMA = log(GAMMA)
_INV_LN_GAMMA = 1.0 / _LN_GAMMA
_EST_FACTOR = 2.0 / (GAMMA + 1.0)  # estimate of bin i = _EST_FACTOR * GAMMA**i
_RANK_TOLERANCE = 1.0 - 1e-12

# Strictly below every value bin: values just above MIN_VALUE land in ceil(log_γ MIN_VALUE).
ZERO_BIN = floor(log(MIN_VALUE) * _INV_LN_GAMMA) - 1
MAX_BIN = ceil(log(MAX_VALUE) * _INV_LN_GAMMA)


def bin_of(value: float) -> int:
    """Bin of a duration in seconds (clamped to MAX_BIN). ValueError for NaN or infinity."""
    if value <= MIN_VALUE:
        return ZERO_BIN
    try:
        b = ceil(log(value) * _INV_LN_GAMMA)
    except (ValueError, OverflowError):  # NaN, +inf (no cost in 3.11 unless raised)
        raise ValueError(f"not a finite duration: {value!r}") from None
    return b if b <= MAX_BIN else MAX_BIN


def count(sketch: dict[int, int]) -> int:
    """Number of values the quantiles rank over: the sum of the positive bin counts."""
    return sum(c for c in sketch.values() if c > 0)


def bin_estimate(bin: int) -> float:
    """The value reported for a bin: 2γ^i/(γ+1), or 0.0 for the zero bin."""
    if bin == ZERO_BIN:
        return 0.0
    return _EST_FACTOR * GAMMA ** min(bin, MAX_BIN)  # no overflow, whatever the bin


# Every bin's estimate, computed once: a report reads two per row, thousands of rows.
_ESTIMATES = tuple(bin_estimate(b) for b in range(ZERO_BIN, MAX_BIN + 1))


def _estimate(bin: int) -> float:
    """bin_estimate(bin), from the table for the bins a sketch holds."""
    return _ESTIMATES[bin - ZERO_BIN] if ZERO_BIN <= bin <= MAX_BIN else bin_estimate(bin)


def _rank(q: float, n: int) -> int:
    r = ceil(q * n * _RANK_TOLERANCE)
    return r if r > 1 else 1


def _check_q(q: float) -> None:
    if not 0.0 <= q <= 1.0:  # also rejects NaN
        raise ValueError(f"quantile must lie in [0, 1], not {q!r}")


def _cumulative(sketch: dict[int, int]) -> tuple[list[int], list[int]]:
    """Bins in ascending order and their running counts, positive bins only."""
    bins = sorted(sketch)
    counts = list(map(sketch.__getitem__, bins))
    if counts and min(counts) <= 0:  # only after corrections: keep the positive bins
        bins = [b for b, c in zip(bins, counts, strict=True) if c > 0]
        counts = [c for c in counts if c > 0]
    return bins, list(accumulate(counts))


def quantiles(sketch: dict[int, int], qs: Sequence[float]) -> list[float | None]:
    """Several quantiles from one sort of the bins, in the order of `qs`."""
    for q in qs:
        _check_q(q)
    bins, cum = _cumulative(sketch)
    if not cum:
        return [None] * len(qs)
    n = cum[-1]
    return [_estimate(bins[bisect_left(cum, _rank(q, n))]) for q in qs]


# A delta to a sparse sketch: (sketch kind, bin, count).
SketchDeltas = list[tuple[int, int, int]]
Sketches = list[dict[int, int]]


def add_sketches(total: Sketches, deltas: SketchDeltas) -> None:
    """Add (kind, bin, count) deltas to sketches, dropping bins that fall to zero."""
    for kind, bin_, count in deltas:
        sketch = total[kind]
        value = sketch.get(bin_, 0) + count
        if value:
            sketch[bin_] = value
        else:
            sketch.pop(bin_, None)  # no residue keys: memory follows non-empty bins


def merge_sketches(total: Sketches, other: Sketches, sign: int = 1) -> None:
    """Add (sign=1) or subtract (sign=-1) sketches into `total`, kind for kind, bin for bin.

    The one count merge: bins that fall to zero are dropped (memory follows non-empty bins).
    """
    if sign != 1 and sign != -1:
        raise ValueError(f"sign must be 1 or -1, not {sign!r}")
    for target, sketch in zip(total, other, strict=True):
        get = target.get
        # A sketch merged into itself is read from a copy: its bins change under the loop.
        for bin_, count in (list(sketch.items()) if sketch is target else sketch.items()):
            value = get(bin_, 0) + sign * count
            if value:
                target[bin_] = value
            else:
                target.pop(bin_, None)
