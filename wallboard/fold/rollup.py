"""Daily rollups: a local day's stored interval records per entity, summed (docs/reports.md).

A rollup holds what a `1d` report row and the forecast read from a day: the counters summed
and the sketches merged over the entity's intervals of that day, and each interval's
offered, handled and handle time (the forecast's inputs at any row width). It is computed
from the stored rows alone, in the store's order, so that a report summing rollups adds
exactly the numbers, in exactly the order, that a report summing the intervals adds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import add
from typing import NamedTuple
from zoneinfo import ZoneInfo

import msgspec
import orjson

from wallboard.fold.counters import FIELDS, HANDLE_SUM, HANDLED, OFFERED, SKETCH_KINDS
from wallboard.fold.intervals import (
    COUNTERS,
    LEVEL_QUEUE,
    SKETCH,
    IntervalRecord,
    checked_sketches,
    decode,
    decode_counters,
    decode_sketches,
    known_counters,
)
from wallboard.fold.sketch import Sketches, merge_sketches

CHANNEL = "channel"  # the levels of the wider rollups: every queue of a channel, the site
SITE = ("site", "", "")
AGGREGATES = (CHANNEL, "site")
MAX_DAY_S = 90_000  # the longest local day (25 hours): bounds a search for a day's start
# Each stored interval's (start, offered, handled, handle_sum), as four columns.
Slots = tuple[list[int], list[float], list[float], list[float]]
NO_SLOTS: Slots = ([], [], [], [])
SLOT_COLUMNS = {OFFERED: 1, HANDLED: 2, HANDLE_SUM: 3}  # a counter's column in the slots
# (level, name, channel, first interval start, body, slots): one entity's rollup of a day.
Rolled = tuple[str, str, str, int, bytes, bytes]


class DayRecord(NamedTuple):
    """One entity's rollup of one local day, decoded."""

    day: int  # the local day's start (epoch seconds)
    level: str
    name: str
    channel: str
    first: int  # the start of its first stored interval that day
    counters: dict[int, float]
    sketches: Sketches  # empty when only the slots were read
    slots: Slots  # empty when the counters and sketches were read

    def as_record(self) -> IntervalRecord:
        """The day as one record (at its first interval: a `1d` row buckets it there)."""
        return IntervalRecord(self.first, self.level, self.name, self.channel, self.counters,
                              self.sketches)


def local_day(ts: int, tz: ZoneInfo) -> tuple[int, int]:
    """(start, end) in epoch seconds of the local day holding `ts` (23 to 25 hours)."""
    start = datetime.fromtimestamp(ts, tz).replace(hour=0, minute=0, second=0, microsecond=0,
                                                   fold=0)
    end = datetime.combine(start.date() + timedelta(days=1), start.time(), tz)
    return int(start.timestamp()), int(end.timestamp())


def days_of(starts: Iterable[int], zone: str) -> dict[int, int]:
    """The local days (start -> end) holding these interval starts."""
    tz = ZoneInfo(zone)
    out: dict[int, int] = {}
    seen: set[int] = set()
    for start in starts:
        if start not in seen:
            seen.add(start)
            day, end = local_day(start, tz)
            out[day] = end
    return out


def roll(rows: Iterable[tuple[int, str, str, str, bytes]]) -> tuple[list[Rolled], int]:
    """A day's rollups from its stored rows, oldest first; and how many rows did not decode.

    One per queue leaf and team, then one per channel and one for the site (their sums, with
    no slots: a forecast sums the queues'). A row that does not decode is left out, as a
    report leaves it out.
    """
    totals: dict[tuple[str, str, str], tuple[list[float], Sketches, Slots]] = {}
    broken = 0
    for start, level, name, channel, body in rows:
        try:
            counters, sketches = decode(body)
        except (ValueError, TypeError, AttributeError):
            broken += 1
            continue
        key = (level, name, channel)
        entry = totals.get(key)
        if entry is None:
            entry = totals[key] = ([0.0] * len(FIELDS), [{} for _ in sketches], ([], [], [], []))
        vector = entry[0]
        for k, value in counters.items():
            vector[k] += value
        merge_sketches(entry[1], sketches)
        get, (starts, offered, handled, handle) = counters.get, entry[2]
        starts.append(int(start))
        offered.append(get(OFFERED, 0.0))
        handled.append(get(HANDLED, 0.0))
        handle.append(get(HANDLE_SUM, 0.0))
    out = [(level, name, channel, slots[0][0], encode_day(vector, sketches),
            orjson.dumps(dict(zip("tohs", slots, strict=True))))
           for (level, name, channel), (vector, sketches, slots) in totals.items()]
    # The channels' and the site's day, summed as a report of every queue sums them (in the
    # same order: the same floating-point sums), so that it merges nothing: a channel adds its
    # queues, the site the channels and the unassigned leaves (queue ""), in the order each
    # first came (report.sum_records).
    Summed = tuple[list[float], Sketches, int]
    wider: dict[tuple[str, str, str], Summed] = {}
    order: list[tuple[str, str, str] | Summed] = []  # a channel's key, or an unassigned leaf
    for (level, name, channel), (vector, sketches, slots) in totals.items():
        if level != LEVEL_QUEUE:
            continue
        if not name:
            order.append((vector, sketches, slots[0][0]))
            continue
        key = (CHANNEL, channel, channel)
        if key not in wider:
            order.append(key)
        _sum_into(wider, key, (vector, sketches, slots[0][0]))
    for item in order:
        _sum_into(wider, SITE, wider[item] if isinstance(item[0], str) else item)
    out += [(*key, start, encode_day(vector, sketches), b"{}")
            for key, (vector, sketches, start) in wider.items()]
    return out, broken


def _sum_into(wider: dict[tuple[str, str, str], tuple[list[float], Sketches, int]],
              key: tuple[str, str, str], part: tuple[list[float], Sketches, int]) -> None:
    """Add one entity's day into a wider one's (a copy at first)."""
    vector, sketches, first = part
    found = wider.get(key)
    if found is None:
        wider[key] = (list(vector), [dict(s) for s in sketches], first)
        return
    found[0][:] = map(add, found[0], vector)
    merge_sketches(found[1], sketches)
    wider[key] = (found[0], found[1], min(found[2], first))


def encode_day(vector: list[float], sketches: Sketches) -> bytes:
    """A rollup's body: a line of counters by name (as an interval's), then a line per sketch,
    so that a reader parses only what it needs (a day's sketches span hundreds of bins)."""
    return b"\n".join([orjson.dumps({FIELDS[k]: v for k, v in enumerate(vector) if v}),
                       *(orjson.dumps({str(b): n for b, n in s.items()}) for s in sketches)])


def decode_day(body: bytes, kinds: int = SKETCH_KINDS) -> tuple[dict[int, float], Sketches]:
    """A rollup's body back: its counters and first `kinds` sketches (the rest empty);
    ValueError or TypeError when it is not that."""
    lines = body.split(b"\n", kinds + 1)
    if len(lines) < kinds + 1:
        raise ValueError("a rollup's body is a line of counters and a line per sketch")
    try:  # typed first, as an interval's body (intervals.decode)
        counters = known_counters(COUNTERS.decode(lines[0]))
        if counters is not None:
            return counters, checked_sketches([SKETCH.decode(line)
                                               for line in lines[1:kinds + 1]])
    except msgspec.MsgspecError:
        pass
    return (decode_counters(orjson.loads(lines[0])),
            decode_sketches([orjson.loads(line) for line in lines[1:kinds + 1]]))


class _Slots(msgspec.Struct):
    """A rollup's slots as written."""

    t: list[int]
    o: list[float]
    h: list[float]
    s: list[float]


_SLOTS = msgspec.json.Decoder(_Slots)


def decode_slots(body: bytes | str) -> Slots:
    """A rollup's slots back ({"t": starts, "o", "h", "s": values}, as long as each other);
    ValueError or TypeError when they are not that."""
    try:  # typed first (every column checked in C), any other body by the rule below
        typed = _SLOTS.decode(body)
        slots: Slots = (typed.t, typed.o, typed.h, typed.s)
    except msgspec.MsgspecError:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("a rollup's slots are a JSON object") from None
        # map() over whole columns: a month's forecast decodes thousands of them.
        slots = (list(map(int, data["t"])), list(map(float, data["o"])),
                 list(map(float, data["h"])), list(map(float, data["s"])))
    if not slots[0] or any(len(column) != len(slots[0]) for column in slots):
        raise ValueError("a rollup's slots are four non-empty columns of one length")
    return slots
