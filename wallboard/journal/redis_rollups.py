"""The Redis journal's daily rollups, beside its intervals (docs/reports.md#sizing).

Three keys in the journal's hash slot: a hash of rollups (field: the JSON array [zone, day,
level, name, channel]; value: [first, body, slots]), a sorted set of its fields by day, and
a hash of marks ([zone, day] -> the day's end) naming the days whose rollups equal their
stored intervals. Every interval write removes the marks of the days it touches in its own
transaction; a day is marked again only by a roll-up that read its intervals under WATCH, so
a write by another node in between makes that roll-up start over.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from typing import Any

import orjson

from wallboard.fold.rollup import days_of, roll
from wallboard.journal.interface import RollupRow
from wallboard.journal.redis_intervals import WatchError
from wallboard.journal.redis_intervals import keys as interval_keys

log = logging.getLogger(__name__)
RETRIES = 10  # optimistic transactions tried before giving up (the day stays unmarked)
CHUNK = 5000  # fields per command


def keys(prefix: str) -> tuple[str, str, str]:
    """The rollups' hash, their index by day, and the marks."""
    return f"{prefix}:rollups", f"{prefix}:rollups:by_day", f"{prefix}:rollups:days"


def touching(marks: dict[bytes, bytes], starts: list[int]) -> list[bytes]:
    """The marks (any zone) of days holding one of these sorted interval starts."""
    out = []
    for field, until in marks.items():
        try:
            day = int(orjson.loads(field)[1])
            end = int(until)
        except (ValueError, TypeError, IndexError):
            out.append(field)  # a mark that does not parse marks nothing
            continue
        i = bisect_left(starts, day)
        if i < len(starts) and starts[i] < end:
            out.append(field)
    return out


async def prune(client: Any, prefix: str, before: int) -> None:
    """Drop the rollups and marks of days starting before `before`."""
    bodies, index, marks = keys(prefix)
    while stale := await client.zrangebyscore(index, "-inf", f"({before}", start=0, num=CHUNK):
        await client.hdel(bodies, *stale)
        await client.zrem(index, *stale)
    old = [f for f in await client.hkeys(marks) if _day(f) < before]
    if old:
        await client.hdel(marks, *old)


def _day(field: bytes) -> int:
    try:
        return int(orjson.loads(field)[1])
    except (ValueError, TypeError, IndexError):
        return -1  # unparseable: pruned


async def roll_day(client: Any, prefix: str, zone: str, day: int, until: int) -> int | None:
    """Roll up one local day from its stored intervals and mark it; the rows that did not
    decode (the day then stays unmarked, as on SQLite), or None when other writers kept
    changing the day (it stays unmarked)."""
    ibodies, iindex = interval_keys(prefix)
    bodies, index, marks = keys(prefix)
    for _ in range(RETRIES):
        async with client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(ibodies, marks)
                fields = await pipe.zrangebyscore(iindex, day, f"({until}")
                values = await pipe.hmget(ibodies, fields) if fields else []
                old = await pipe.zrangebyscore(index, day, day)
                rows = []
                for field, body in zip(fields, values, strict=True):
                    if body is not None:
                        start, level, name, channel = orjson.loads(field)
                        rows.append((int(start), str(level), str(name), str(channel),
                                     bytes(body)))
                rolled, broken = await asyncio.to_thread(roll, rows)
                mine = [f for f in old if _zone(f) == zone]
                new = {orjson.dumps([zone, day, level, name, channel]):
                       orjson.dumps([first, body.decode(), slots.decode()])
                       for level, name, channel, first, body, slots in rolled}
                pipe.multi()
                if mine:
                    pipe.hdel(bodies, *mine)
                    pipe.zrem(index, *mine)
                if broken:  # left unrolled, read from its intervals (rollups.roll_day)
                    pipe.hdel(marks, orjson.dumps([zone, day]))
                else:
                    if new:
                        pipe.hset(bodies, mapping=new)
                        pipe.zadd(index, dict.fromkeys(new, day))
                    pipe.hset(marks, orjson.dumps([zone, day]), until)
                await pipe.execute()
                return broken
            except WatchError:
                continue
    log.warning("history: the rollup of day %s kept changing under %s tries", day, RETRIES)
    return None


def _zone(field: bytes) -> str | None:
    try:
        return str(orjson.loads(field)[0])
    except (ValueError, TypeError, IndexError):
        return None


async def roll_touched(client: Any, prefix: str, zone: str, starts: list[int],
                       prune_before: int | None) -> None:
    """Roll up the days holding these interval starts."""
    for day, until in sorted(days_of(starts, zone).items()):
        if prune_before is None or day >= prune_before:
            await roll_day(client, prefix, zone, day, until)


async def catch_up(client: Any, prefix: str, zone: str, since: int) -> int:
    """Roll up every day from `since` on with intervals and no mark for `zone`; drop other
    zones' rollups and marks. The days rolled up."""
    bodies, index, marks = keys(prefix)
    other = [f for f in await client.hkeys(marks) if _zone(f) != zone]
    if other:
        await client.hdel(marks, *other)
    stale = [f async for f, _ in client.hscan_iter(bodies, count=CHUNK) if _zone(f) != zone]
    for i in range(0, len(stale), CHUNK):
        await client.hdel(bodies, *stale[i:i + CHUNK])
        await client.zrem(index, *stale[i:i + CHUNK])
    _, iindex = interval_keys(prefix)
    done, at = 0, since
    while nxt := await client.zrangebyscore(iindex, at, "+inf", start=0, num=1,
                                            withscores=True):
        (day, until), = days_of([int(nxt[0][1])], zone).items()
        if day >= since and not await client.hexists(marks, orjson.dumps([zone, day])) and \
                await roll_day(client, prefix, zone, day, until) is not None:
            done += 1
        at = until
    return done


def load(client: Any, prefix: str, zone: str, since: int, until: int,
         queues: frozenset[str] = frozenset(), bodies: bool = True
         ) -> tuple[list[int], list[RollupRow]]:
    """The marked days in [since, until) and their rollups in the intervals' order (the sync
    client); a day with a rollup that does not parse is left unmarked (read from intervals)."""
    hash_key, index, marks = keys(prefix)
    days = {d for f in client.hkeys(marks) if _zone(f) == zone and since <= (d := _day(f)) < until}
    if not days:
        return [], []
    chosen = []
    for field in client.zrangebyscore(index, since, f"({until}"):
        try:
            fzone, day, level, name, channel = orjson.loads(field)
        except (ValueError, TypeError):
            continue
        if fzone == zone and day in days and (
                (level == "queue" and name in queues) if queues else
                (bodies or level in ("queue", "team"))):  # no slots in channels' and site's
            chosen.append((field, (int(day), str(level), str(name), str(channel))))
    rows: list[tuple[bytes, RollupRow]] = []
    for i in range(0, len(chosen), CHUNK):
        part = chosen[i:i + CHUNK]
        for (_, (day, level, name, channel)), value in zip(
                part, client.hmget(hash_key, [f for f, _ in part]), strict=True):
            try:
                first, body, slots = orjson.loads(value)
                row = (day, level, name, channel, int(first),
                       body.encode() if bodies else b"", b"" if bodies else slots.encode())
            except (ValueError, TypeError, AttributeError):
                days.discard(day)
                continue
            order = orjson.dumps([row[4], level, name, channel])  # the intervals' member order
            rows.append((order, row))
    rows.sort(key=lambda item: (item[1][0], item[1][4], item[0]))
    return sorted(days), [row for _, row in rows if row[0] in days]
