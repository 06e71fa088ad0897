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
from typing import NamedTuple
from zoneinfo import ZoneInfo

import orjson

from wallboard.fold.counters import FIELDS, HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import IntervalRecord, decode, encode
from wallboard.fold.sketch import Sketches, merge_sketches

MAX_DAY_S = 90_000  # the longest local day (25 hours): bounds a search for a day's start
Slot = tuple[int, float, float, float]  # (interval start, offered, handled, handle_sum)
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
    slots: list[Slot]

    def as_record(self) -> IntervalRecord:
        """The day as one record (at its first interval: a `1d` row buckets it there)."""
        return IntervalRecord(self.first, self.level, self.name, self.channel, self.counters,
                              self.sketches)

    def slot_records(self, whole_day: bool) -> list[IntervalRecord]:
        """The slot fields as records: one per interval, or (`whole_day`) one summed."""
        if not whole_day:
            return [IntervalRecord(start, self.level, self.name, self.channel,
                                   {OFFERED: o, HANDLED: h, HANDLE_SUM: s}, [])
                    for start, o, h, s in self.slots]
        _, o, h, s = self.slots[0]
        for _, more_o, more_h, more_s in self.slots[1:]:  # the order the report adds them
            o, h, s = o + more_o, h + more_h, s + more_s
        return [IntervalRecord(self.first, self.level, self.name, self.channel,
                               {OFFERED: o, HANDLED: h, HANDLE_SUM: s}, [])]


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

    A row that does not decode is left out, as a report leaves it out.
    """
    totals: dict[tuple[str, str, str], tuple[list[float], Sketches, list[Slot]]] = {}
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
            entry = totals[key] = ([0.0] * len(FIELDS), [{} for _ in sketches], [])
        vector = entry[0]
        for k, value in counters.items():
            vector[k] += value
        merge_sketches(entry[1], sketches)
        get = counters.get
        entry[2].append((int(start), get(OFFERED, 0.0), get(HANDLED, 0.0), get(HANDLE_SUM, 0.0)))
    return [(level, name, channel, slots[0][0],
             encode(dict(enumerate(vector)), sketches), orjson.dumps(slots))
            for (level, name, channel), (vector, sketches, slots) in totals.items()], broken


def decode_slots(body: bytes | str) -> list[Slot]:
    """A rollup's slots back; ValueError when they are not [[start, o, h, s], ...]."""
    data = orjson.loads(body)
    if not isinstance(data, list) or not data:
        raise ValueError("a rollup's slots are a non-empty JSON array")
    out: list[Slot] = []
    for item in data:
        start, o, h, s = item  # ValueError/TypeError when the shape is wrong
        out.append((int(start), float(o), float(h), float(s)))
    return out
