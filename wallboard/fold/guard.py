"""The fold's safety net: errors caught at a boundary, counted by stage, logged once per cause.

A boundary is one event (fold, restore), one entity of the snapshot (snapshot), one staffing
forecast (staffing) or one section of /metrics (exporter). What failed there is left out or
shown as null; everything else goes on. `wallboard_fold_errors_total{stage}` counts them.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from wallboard.model.events import QUEUE_SNAPSHOT, Event
from wallboard.model.schema import _TYPE_FIELDS

log = logging.getLogger(__name__)

STAGES = ("fold", "restore", "snapshot", "staffing", "exporter")
MAX_CAUSES_LOGGED = 256  # distinct causes remembered: a flood of new ones cannot grow memory
REASON_CHARS = 200  # a quarantine reason is cut here
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def reason(exc: BaseException) -> str:
    """An exception as a short, one-line reason."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _cause(stage: str, exc: BaseException) -> tuple[str, str, str, int]:
    """Where it was raised (innermost frame) and its type: the same bug is one cause."""
    # Walked by hand: extract_tb reads every frame's source line, on the hot error path.
    tb = exc.__traceback__
    if tb is None:
        return (stage, type(exc).__name__, "", 0)
    while tb.tb_next is not None:
        tb = tb.tb_next
    return (stage, type(exc).__name__, tb.tb_frame.f_code.co_filename, tb.tb_lineno or 0)


class FoldErrors:
    """Counts errors caught at the fold's boundaries by stage and logs each cause once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({stage: 0 for stage in STAGES})
        self._logged: set[tuple[str, str, str, int]] = set()

    def record(self, stage: str, exc: BaseException, event: Event | None = None,
               what: str = "") -> None:
        """Count one caught error; log it (with the event id) the first time its cause is seen."""
        self.counts[stage] += 1
        cause = _cause(stage, exc)
        if cause in self._logged or len(self._logged) >= MAX_CAUSES_LOGGED:
            return
        self._logged.add(cause)
        subject = what or (f"event {event.id or '(no id)'} ({event.type}, source "
                           f"{event.source or '?'})" if event is not None else "")
        log.error("%s error on %s: %s; caught, counted in wallboard_fold_errors_total"
                  '{stage="%s"} and logged once per cause', stage, subject or "?", reason(exc),
                  stage, exc_info=exc)


def json_safe(value: Any) -> Any:
    """A number JSON and the exposition can carry: NaN, ±inf and ints past 64 bits become None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else None
    return value


def sanitize(tree: dict[str, Any]) -> dict[str, Any]:
    """Replace in place every number JSON or the exposition cannot carry (see json_safe)."""
    for key, value in tree.items():
        kind = type(value)
        if kind is dict:
            sanitize(value)
        elif kind is float:
            if not math.isfinite(value):
                tree[key] = None
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                tree[key] = None
        elif kind is list:
            tree[key] = [sanitize(v) if type(v) is dict else json_safe(v) for v in value]
    return tree


# What the fold can take without losing precision in running totals or overflowing on the way
# to the snapshot: far wider than the door's bounds (events.md), so it only stops events that
# an older version stored before those bounds existed.
MAX_FOLD_SECONDS = 1e9  # about 31.7 years
MAX_FOLD_TS = 32_503_680_000.0  # 3000-01-01: calendar arithmetic stays inside datetime's range
MAX_FOLD_COUNT = 1e9  # waiting contacts, agents per state in a queue.snapshot
MAX_FOLD_SCORE = 1e9


class FoldRangeError(ValueError):
    """A stored event holds a number the fold cannot take; raised before anything changes."""


def _bounds(kind: str, name: str) -> tuple[float, float]:
    if kind == "ts":
        return 0.0, MAX_FOLD_TS
    if kind == "score":
        return -MAX_FOLD_SCORE, MAX_FOLD_SCORE
    if name == "waiting":
        return 0.0, MAX_FOLD_COUNT
    return 0.0, MAX_FOLD_SECONDS


def _checks() -> dict[str, tuple[tuple[str, float, float], ...]]:
    """Per event type: its numeric fields and their bounds."""
    return {etype: tuple((name, *_bounds(kind, name)) for name, kind, _ in spec
                         if kind in ("num", "ts", "score"))
            for etype, spec in _TYPE_FIELDS.items()}


# On the fold's per-event path: the fields of the event's type only, one comparison each.
CHECKS = _checks()
_NONE: tuple[tuple[str, float, float], ...] = ()


def _refuse(name: str, value: object, low: float, high: float) -> None:
    raise FoldRangeError(f"{name}: {value!r} outside [{low:g}, {high:g}]")


def check_foldable(event: Event) -> None:
    """Raise FoldRangeError when a number of the event is outside what the fold can take.

    Anything that is not a number there (a corrupt journal) raises TypeError instead: also
    before the fold changed anything.
    """
    ts = event.ts
    if not 0.0 <= ts <= MAX_FOLD_TS:  # also NaN
        _refuse("ts", ts, 0.0, MAX_FOLD_TS)
    for name, low, high in CHECKS.get(event.type, _NONE):
        value = getattr(event, name)
        if value is not None and not low <= value <= high:
            _refuse(name, value, low, high)
    if event.type == QUEUE_SNAPSHOT and event.agents:
        for state, count in event.agents.items():
            if not 0 <= count <= MAX_FOLD_COUNT:
                _refuse(f"agents.{state}", count, 0, MAX_FOLD_COUNT)
