"""Series in deltas: a changed list is sent as the points that changed, not the whole array.

A sparkline's 60 points change at their end each second (the newest point is the value now)
and shift by one once a step: `[drop, cut, tail]` says "drop `drop` points from the front,
`cut` from the end, append `tail`", so a delta's size tracks what changed. Applied by the
page (board.js) and by `apply_series` below, the reference the tests hold the page to.
"""

from __future__ import annotations

from typing import Any

SeriesOp = list[Any]  # [drop: int, cut: int, tail: list]
MAX_DROP = 2  # shifts tried at the front: one per step (two when a step was skipped)


def series_op(before: list[Any], after: list[Any]) -> SeriesOp | None:
    """The smallest `[drop, cut, tail]` turning `before` into `after`, or None when the
    whole list is no larger (a short list, or one that changed throughout)."""
    best: SeriesOp | None = None
    for drop in range(min(MAX_DROP, len(before)) + 1):
        keep = 0
        limit = min(len(before) - drop, len(after))
        while keep < limit and before[drop + keep] == after[keep]:
            keep += 1
        if keep and (best is None or len(after) - keep < len(best[2])):
            best = [drop, len(before) - drop - keep, after[keep:]]
    if best is None or len(best[2]) + 2 >= len(after):
        return None
    return best


def split_series(changes: dict[str, Any], before: dict[str, Any]) -> dict[str, SeriesOp]:
    """Move each changed list that was a list before out of `changes` (in place), as an op."""
    ops: dict[str, SeriesOp] = {}
    for key, value in changes.items():
        if type(value) is list:
            old = before.get(key)
            if type(old) is list:
                op = series_op(old, value)
                if op is not None:
                    ops[key] = op
    for key in ops:
        del changes[key]
    return ops


def apply_series(state: dict[str, Any], ops: dict[str, SeriesOp]) -> bool:
    """Apply ops to a client's flat state (new lists, never in place); False if one does not
    fit what the state holds (the client then asks for a snapshot)."""
    for key, (drop, cut, tail) in ops.items():
        old = state.get(key)
        if type(old) is not list or drop + cut > len(old):
            return False
        state[key] = old[drop:len(old) - cut] + list(tail)
    return True
