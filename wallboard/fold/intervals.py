"""Interval history: the fold's counters per 15-minute interval, handed on once it is closed.

A queue leaf (and a team) keeps the intervals that may still take events: an interval closes
once the lateness allowed for live arrival has passed its end, so no live event can land in it
afterwards. Closed intervals wait in the aggregator until the ingest layer stores them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import msgspec
import orjson

from wallboard.fold.counters import FIELDS, SKETCH_KINDS, Deltas
from wallboard.fold.sketch import MAX_BIN, ZERO_BIN, SketchDeltas, Sketches, add_sketches

if TYPE_CHECKING:  # the leaf imports windows, which import this module
    from wallboard.fold.leaf import Leaf
    from wallboard.fold.state import AgentLive

INTERVAL_S = 900  # the finest report interval; every zone's offset is a whole quarter hour
MAX_CLOSED = 200_000  # closed records waiting for the store (a store down for days)
MAX_OPEN = 200  # open intervals per book: far more than lateness (<= 1 day) ever needs
LEVEL_QUEUE, LEVEL_TEAM = "queue", "team"
_INDEX = {name: i for i, name in enumerate(FIELDS)}
_NUMBERS = frozenset({int, float})  # a counter's JSON types (bool, a subclass of int, is not)


class IntervalRecord(NamedTuple):
    """One closed interval of one queue leaf or team: sparse counters and sketches."""

    start: int
    level: str  # "queue" (name: the queue, with its channel) or "team" (channel "")
    name: str
    channel: str
    counters: dict[int, float]
    sketches: Sketches


class IntervalBook:
    """The open intervals of one leaf or team; events older than the oldest open are counted."""

    __slots__ = ("floor", "late", "open")

    def __init__(self) -> None:
        self.open: dict[int, tuple[dict[int, float], Sketches]] = {}
        # Start of the oldest interval still open to facts, raised only by `close`, after
        # the deadlines due have fired: a fact older than that (a ticket from last week read
        # on a poll, a retraction) would open an interval long complete in the store and
        # replace it; it counts in `late` instead.
        self.floor = -math.inf
        self.late = 0  # deltas for an interval already closed (kept by the live windows only)

    def _slot(self, ts: float) -> tuple[dict[int, float], Sketches] | None:
        start = int(ts // INTERVAL_S) * INTERVAL_S
        if start < self.floor:
            self.late += 1
            return None
        slot = self.open.get(start)
        if slot is None:
            if len(self.open) >= MAX_OPEN:
                self.late += 1  # a clock far ahead: bounded like every collection
                return None
            slot = self.open[start] = ({}, [{} for _ in range(SKETCH_KINDS)])
        return slot

    def add(self, ts: float, deltas: Deltas, sketch_deltas: SketchDeltas | None = None) -> None:
        """Add deltas at time `ts` to its interval."""
        slot = self._slot(ts)
        if slot is None:
            return
        counters = slot[0]
        for k, d in deltas:
            if k < len(FIELDS):  # histogram bins depend on the settings: sketches serve instead
                counters[k] = counters.get(k, 0.0) + d
        if sketch_deltas:
            add_sketches(slot[1], sketch_deltas)

    def add_span(self, start: float, end: float, index: int) -> None:
        """Spread a duration over the intervals it overlaps."""
        first = int(start // INTERVAL_S) * INTERVAL_S
        for at in range(first, math.ceil(end / INTERVAL_S) * INTERVAL_S, INTERVAL_S):
            piece = min(end, at + INTERVAL_S) - max(start, at)
            if piece > 0:
                self.add(max(start, at), [(index, piece)])

    def copy(self) -> IntervalBook:
        """An independent copy (for reads that add what is not folded yet)."""
        other = IntervalBook()
        other.open = {start: (dict(counters), [dict(s) for s in sketches])
                      for start, (counters, sketches) in self.open.items()}
        other.floor, other.late = self.floor, self.late
        return other

    def close(self, before: float) -> list[tuple[int, dict[int, float], Sketches]]:
        """Take out the intervals that end at or before `before`, oldest first."""
        done = sorted(start for start in self.open if start + INTERVAL_S <= before)
        if before > self.floor:
            self.floor = int(before // INTERVAL_S) * INTERVAL_S
        return [(start, *self.open.pop(start)) for start in done]


class IntervalHistory:
    """The teams' books and the closed intervals of every book, until they are stored."""

    __slots__ = ("closed", "dropped", "floor", "teams")

    def __init__(self) -> None:
        self.floor = -math.inf  # where the last close left every book
        self.teams: dict[str, IntervalBook] = {}
        self.closed: list[IntervalRecord] = []
        self.dropped = 0  # closed records given up while the store could not take them

    def new_book(self) -> IntervalBook:
        """A book for a new leaf or team: it takes nothing older than the others do."""
        book = IntervalBook()
        book.floor = self.floor
        return book

    def team(self, live: AgentLive | None) -> IntervalBook | None:
        """The book of an agent's team now (teams are bounded by the live state)."""
        if live is None or not live.team:
            return None
        book = self.teams.get(live.team)
        if book is None:
            book = self.teams[live.team] = self.new_book()
        return book

    def team_add(self, live: AgentLive | None, at: float, deltas: Deltas) -> None:
        """Add an agent's deltas to its team's book (nothing without a team)."""
        book = self.team(live)
        if book is not None:
            book.add(at, deltas)

    def team_span(self, live: AgentLive | None, start: float, end: float, index: int) -> None:
        """Add an agent's time in a state to its team's book."""
        book = self.team(live)
        if book is not None:
            book.add_span(start, end, index)

    def _books(self, leaves: Iterable[Leaf]) -> Iterator[tuple[str, str, str, IntervalBook]]:
        """Every book with what it is about: (level, name, channel, book)."""
        for leaf in leaves:
            if leaf.windows.book is not None:
                yield LEVEL_QUEUE, leaf.queue, leaf.channel, leaf.windows.book
        for name, book in self.teams.items():
            yield LEVEL_TEAM, name, "", book

    def close(self, leaves: Iterable[Leaf], before: float) -> None:
        """Close every book's intervals that end at or before `before`."""
        closed = self.closed
        self.floor = max(self.floor, int(before // INTERVAL_S) * INTERVAL_S)
        for level, name, channel, book in self._books(leaves):
            if book.open:
                closed.extend(IntervalRecord(start, level, name, channel, counters, sketches)
                              for start, counters, sketches in book.close(before))
        if len(closed) > MAX_CLOSED:
            self.dropped += len(closed) - MAX_CLOSED
            del closed[:len(closed) - MAX_CLOSED]

    def take(self) -> list[IntervalRecord]:
        """The closed records, handed to the store (gone from here)."""
        taken, self.closed = self.closed, []
        return taken

    def put_back(self, records: list[IntervalRecord]) -> None:
        """Records the store could not take: kept for the next try, oldest first."""
        self.closed[:0] = records

    def open_records(self, leaves: Iterable[Leaf]) -> list[IntervalRecord]:
        """Copies of the intervals still open (a read: nothing here changes)."""
        leaves = list(leaves)
        batched = {(leaf.queue, leaf.channel): leaf.windows.batched() for leaf in leaves}
        out: list[IntervalRecord] = []
        for level, name, channel, book in self._books(leaves):
            at, deltas, sketch_deltas = batched.get((name, channel), (0.0, [], []))
            if level == LEVEL_QUEUE and (deltas or sketch_deltas):
                book = book.copy()  # the bucket not flushed yet is not in the book: a copy
                book.add(at, deltas, sketch_deltas)
            out.extend(IntervalRecord(start, level, name, channel, dict(counters),
                                      [dict(x) for x in sketches])
                       for start, (counters, sketches) in book.open.items())
        return out


def encode(counters: dict[int, float], sketches: Sketches) -> bytes:
    """A record's body: counters by field name (indices change between versions), sketches."""
    return orjson.dumps({"c": {FIELDS[k]: v for k, v in counters.items() if v},
                         "s": [{str(b): n for b, n in s.items()} for s in sketches]})


class _Body(msgspec.Struct):
    """A body as written: counters by name, then the sketches (each parsed on demand)."""

    c: dict[str, float] = {}
    s: list[msgspec.Raw] = []


# Typed decoders (msgspec): keys to ints and every type checked in C. A body they refuse
# (a hand edit, an older writer's) goes the per-field way below, which keeps what it can.
_BODY = msgspec.json.Decoder(_Body)
SKETCH = msgspec.json.Decoder(dict[int, int])
COUNTERS = msgspec.json.Decoder(dict[str, float])


def decode(body: bytes | str, kinds: int = SKETCH_KINDS) -> tuple[dict[int, float], Sketches]:
    """A record's body back; unknown field names (a newer version's) are left out.

    Only the first `kinds` sketches are read, the others come back empty: a report shows the
    wait's percentiles alone."""
    try:
        typed = _BODY.decode(body)
        counters = known_counters(typed.c)
        if counters is not None:
            return counters, checked_sketches([SKETCH.decode(raw) for raw in typed.s[:kinds]])
    except msgspec.MsgspecError:
        pass
    data = orjson.loads(body)
    if not isinstance(data, dict):
        raise ValueError("an interval body is a JSON object")
    return decode_counters(data.get("c") or {}), decode_sketches(list(data.get("s") or [])[:kinds])


def known_counters(typed: dict[str, float]) -> dict[int, float] | None:
    """Typed counters by index, the unknown names left out; None unless every one is finite."""
    if not all(map(math.isfinite, typed.values())):
        return None
    known: dict[int | None, float] = dict(zip(map(_INDEX.get, typed), typed.values(),
                                              strict=True))
    known.pop(None, None)  # a newer version's field
    return cast(dict[int, float], known)


def decode_counters(raw: Any) -> dict[int, float]:
    """Counters by field name back: the known names with a finite number."""
    if (type(raw) is dict and _NUMBERS.issuperset(map(type, raw.values()))
            and all(map(math.isfinite, raw.values()))):
        # Every value a finite number (as written): whole columns by map(), no Python loop.
        known: dict[int | None, float] = dict(zip(map(_INDEX.get, raw), map(float, raw.values()),
                                                  strict=True))
        known.pop(None, None)  # a newer version's field
        return cast(dict[int, float], known)
    counters: dict[int, float] = {}
    for name, value in dict(raw).items():
        k = _INDEX.get(name)
        if k is not None and isinstance(value, int | float) and math.isfinite(value):
            counters[k] = float(value)
    return counters


def decode_sketches(raws: list[Any]) -> Sketches:
    """Sketches ({"bin": count}) back, SKETCH_KINDS of them (empty after those given)."""
    # map(int, ...) over keys and values: any body the typed decoder refused comes here.
    return checked_sketches([dict(zip(map(int, m), map(int, m.values()), strict=True))
                             for m in map(_mapping, raws[:SKETCH_KINDS])])


def checked_sketches(sketches: Sketches) -> Sketches:
    """Sketches with every bin in range, SKETCH_KINDS of them (empty after those given)."""
    sketches = sketches[:SKETCH_KINDS]
    for i, sketch in enumerate(sketches):
        # A bin outside the sketch's range would overflow its estimate: it goes to the edge
        # bin, as a value beyond the range does when it is added (sketch.py).
        if sketch and (min(sketch) < ZERO_BIN or max(sketch) > MAX_BIN):
            clamped: dict[int, int] = {}
            for b, n in sketch.items():
                edge = min(MAX_BIN, max(ZERO_BIN, b))
                clamped[edge] = clamped.get(edge, 0) + n
            sketches[i] = clamped
    sketches += [{} for _ in range(SKETCH_KINDS - len(sketches))]
    return sketches


def decode_offered(body: bytes | str) -> float:
    """Only the offered counter of a body (the forecast's need), read as `decode` reads it:
    absent or not a finite number is 0. ValueError when the body is not an object."""
    data = orjson.loads(body)
    if not isinstance(data, dict):
        raise ValueError("an interval body is a JSON object")
    value = dict(data.get("c") or {}).get("offered", 0.0)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _mapping(value: Any) -> dict[Any, Any]:
    """A sketch as a dict: orjson gives one; anything else goes through dict() (may raise)."""
    return value if type(value) is dict else dict(value)
