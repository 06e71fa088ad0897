"""The Redis journal's interval history: a hash of bodies and a sorted set by start time.

Both keys share the journal's hash slot. A field is the JSON array [start, level, name,
channel], so any name (a '|' included) stays one unambiguous field.
"""

from __future__ import annotations

from typing import Any

import orjson

from wallboard.journal.interface import IntervalRow

try:  # an optional dependency: make_journal turns its absence into a clear error
    from redis.exceptions import WatchError as WatchError  # re-exported to redis_rollups
except ImportError:  # pragma: no cover - exercised by a subprocess test
    WatchError = LookupError  # type: ignore[assignment,misc]  # never raised without redis

PRUNE_CHUNK = 5000  # fields deleted per command while pruning


def keys(prefix: str) -> tuple[str, str]:
    """The bodies' hash and the index's sorted set."""
    return f"{prefix}:intervals", f"{prefix}:intervals:by_start"


async def save(client: Any, prefix: str, rows: list[IntervalRow], replace: bool,
               prune_before: int | None, zone: str | None = None) -> None:
    """Write rows (replace, or only where missing) in one transaction that also unmarks the
    rollups of the days they touch; drop expired ones; with `zone`, roll those days up."""
    from wallboard.journal import redis_rollups  # it reads this module's keys

    bodies, index = keys(prefix)
    marks = redis_rollups.keys(prefix)[2]
    fields = [orjson.dumps(list(row[:4])) for row in rows]
    starts = sorted({row[0] for row in rows})
    for attempt in range(redis_rollups.RETRIES):
        async with client.pipeline(transaction=True) as pipe:
            try:
                # A roll-up marking a day between our read of the marks and our write would
                # leave a stale mark: watching the marks makes this write start over then.
                await pipe.watch(marks)
                stale = redis_rollups.touching(await pipe.hgetall(marks), starts)
                pipe.multi()
                for field, row in zip(fields, rows, strict=True):
                    if replace:
                        pipe.hset(bodies, field, row[4])
                    else:
                        pipe.hsetnx(bodies, field, row[4])
                if fields:
                    pipe.zadd(index, {field: row[0]
                                      for field, row in zip(fields, rows, strict=True)})
                if stale:
                    pipe.hdel(marks, *stale)
                await pipe.execute()
                break
            except WatchError:
                if attempt == redis_rollups.RETRIES - 1:
                    raise
    if prune_before is not None:
        while stale := await client.zrangebyscore(index, "-inf", f"({prune_before}",
                                                  start=0, num=PRUNE_CHUNK):
            await client.hdel(bodies, *stale)
            await client.zrem(index, *stale)
        await redis_rollups.prune(client, prefix, prune_before)
    if zone is not None and starts:
        await redis_rollups.roll_touched(client, prefix, zone, starts, prune_before)


def load(client: Any, prefix: str, since: int, until: int,
         queues: frozenset[str] = frozenset()) -> list[IntervalRow]:
    """Rows whose interval starts in [since, until), oldest first (the sync client); with
    `queues`, only those queues' rows, chosen by field before any body is fetched."""
    bodies, index = keys(prefix)
    fields = client.zrangebyscore(index, since, f"({until}")
    out: list[IntervalRow] = []
    for i in range(0, len(fields), PRUNE_CHUNK):
        chunk = fields[i:i + PRUNE_CHUNK]
        parsed = [orjson.loads(field) for field in chunk]
        if queues:
            kept = [(f, p) for f, p in zip(chunk, parsed, strict=True)
                    if p[1] == "queue" and p[2] in queues]
            if not kept:
                continue
            chunk, parsed = [f for f, _ in kept], [p for _, p in kept]
        for (start, level, name, channel), body in zip(parsed, client.hmget(bodies, chunk),
                                                       strict=True):
            if body is None:
                continue  # pruned between the two reads
            out.append((int(start), str(level), str(name), str(channel), bytes(body)))
    return out
