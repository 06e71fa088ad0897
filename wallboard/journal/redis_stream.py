"""Reading the Redis Streams journal back: the start-up rebuild, `journal export` and `stats`.

The stream's keys, its format record and the decoding of entries; the live side (appending,
following the stream, health) is `journal_redis.py`.

Quarantine: a hash `{key}:quarantine` whose fields are `<entry ms>:<digest of the stored
event>` and whose values are JSON `{stage, reason, at}`. The start-up read leaves those events
out; retention deletes a field with its entry's time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from wallboard.config.settings import JournalConfig, safe_url
from wallboard.journal import redis_intervals, redis_rollups
from wallboard.journal.interface import (
    FIELDS,
    QUARANTINE_REASONS_LISTED,
    Checkpoint,
    IntervalRow,
    JournalError,
    JournalStats,
    JournalStatus,
    Quarantine,
    RollupRow,
    Stored,
    encode,
    quarantined_line,
    values_decoder,
)
from wallboard.model.events import Event

try:  # an optional dependency: make_journal turns its absence into a clear error
    import redis
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - exercised by a subprocess test
    redis = None  # type: ignore[assignment]  # None stands for absent: checked at use
    RedisError = OSError  # type: ignore[assignment,misc]  # OSError is caught already

log = logging.getLogger(__name__)

READ_COUNT = 500  # stream entries per XRANGE/XREAD call
FAILURES = (RedisError, OSError, TimeoutError)


def id_key(entry_id: bytes) -> tuple[int, int]:
    """A stream id's order: (milliseconds, sequence)."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def entry_ms(entry_id: bytes | str) -> int:
    """The milliseconds part of a stream entry id."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisStreamReader:
    """The stream of one journal key: its format, and its entries read back in order."""

    def __init__(self, config: JournalConfig) -> None:
        if redis is None:
            raise JournalError("journal.backend: redis needs the Python package 'redis' "
                               "(pip install 'wallboard[redis]')")
        assert config.url is not None
        self.config = config
        prefix = "{" + config.key + "}"  # one hash slot for every key the script touches
        self.prefix = prefix
        self.stream, self.counter = f"{prefix}:events", f"{prefix}:count"
        self.meta = f"{prefix}:meta"
        self.quarantine_key = f"{prefix}:quarantine"
        self.checkpoint_key = f"{prefix}:checkpoints"  # stream id -> blob
        self._end: bytes | None = None  # the newest entry when the start-up read began
        self.status = JournalStatus(retry_s=config.retry_s)
        self._fields: list[str] = list(FIELDS)
        self.location = f"{safe_url(config.url)} stream {self.stream}"
        self.last_id: bytes = b"$"
        self.folded_n = 0  # the counter value at the last entry folded
        self._sync: Any = None
        self._values: Callable[[list[Any]], Event] = lambda values: Event(*values)

    def open(self, *, writable: bool = True) -> None:
        """Connect and check the stream's format record; raises JournalError."""
        assert self.config.url is not None
        try:
            self._sync = redis.Redis.from_url(self.config.url, socket_timeout=30,
                                              socket_connect_timeout=self.config.timeout_s)
            self._sync.ping()
            if writable:
                self._sync.hsetnx(self.meta, "fields", orjson.dumps(FIELDS))
            stored = self._sync.hget(self.meta, "fields")
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot connect: {exc}") from None
        fields = list(orjson.loads(stored)) if stored else list(FIELDS)
        self._fields = fields
        try:
            self._values = values_decoder(fields)
        except JournalError as exc:
            raise JournalError(f"{self.location}: {exc}") from None

    def _entries(self, start: str) -> Iterator[list[tuple[bytes, dict[bytes, bytes]]]]:
        client = self._sync
        try:
            while chunk := client.xrange(self.stream, min=start, count=READ_COUNT):
                yield chunk
                start = "(" + chunk[-1][0].decode()
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read: {exc}") from None

    def _decode(self, fields: dict[bytes, bytes]) -> list[Event]:
        try:
            return [self._values(values) for values in orjson.loads(fields[b"e"])]
        except (KeyError, ValueError, TypeError) as exc:
            raise JournalError(f"{self.location}: a stream entry does not decode ({exc})"
                               ) from None

    def read(self, since: float) -> Iterator[list[Stored]]:
        """Events that arrived at or after `since`, in stream order; the tail goes on from there.

        Quarantined events are left out (counted in status.skipped).
        """
        self.last_id = f"{max(int(since * 1000), 0)}-0".encode()
        self._end = self._newest()
        yield from self._read_from(self.last_id.decode())

    def read_after(self, position: str) -> Iterator[list[Stored]]:
        """Events in entries after stream id `position` (a checkpoint's), in stream order."""
        self.last_id = position.encode()
        self._end = self._newest()
        yield from self._read_from("(" + position)

    @property
    def position(self) -> str | None:
        """The id of the last entry read or delivered: the tail goes on after it."""
        if self.last_id == b"$":
            return None
        # An empty read leaves `last_id` at its start: the newest entry then is the position.
        return max(self.last_id, self._end or b"0-0", key=id_key).decode()

    def _newest(self) -> bytes | None:
        try:
            newest = self._sync.xrevrange(self.stream, count=1)
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read: {exc}") from None
        return newest[0][0] if newest else None

    def _read_from(self, start: str) -> Iterator[list[Stored]]:
        held = self._held()
        skipped = 0
        for chunk in self._entries(start):
            batch: list[Stored] = []
            for entry_id, fields in chunk:
                ms = entry_ms(entry_id)
                recv = ms / 1000
                try:
                    events = self._decode(fields)
                except JournalError as exc:  # as the tail does: one bad entry is skipped
                    log.error("journal: skipping entry %s: %s", entry_id, exc)
                    events = []
                marks = held.get(ms) if held else None
                if marks:
                    kept = [e for e in events if self._digest(e) not in marks]
                    skipped += len(events) - len(kept)
                    events = kept
                batch.extend((recv, event) for event in events)
                self.folded_n = int(fields.get(b"n", 0))
                self.last_id = entry_id
            yield batch
        self.status.skipped = skipped

    def checkpoints(self) -> list[Checkpoint]:
        """The stored checkpoints by stream id, newest first."""
        try:
            stored = self._sync.hgetall(self.checkpoint_key)
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read checkpoints: {exc}") from None
        return [(k.decode(), v) for k, v in sorted(stored.items(), key=lambda kv: id_key(kv[0]),
                                                    reverse=True)]

    def intervals(self, since: int, until: int,
                  queues: frozenset[str] = frozenset()) -> list[IntervalRow]:
        """Stored intervals in [since, until), oldest first (of `queues` alone when given)."""
        try:
            return redis_intervals.load(self._sync, self.prefix, since, until, queues)
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read intervals: {exc}") from None

    def rollups(self, zone: str, since: int, until: int, queues: frozenset[str] = frozenset(),
                *, bodies: bool = True) -> tuple[list[int], list[RollupRow]]:
        """Marked days in [since, until) and their rollups (of `queues` alone when given)."""
        try:
            return redis_rollups.load(self._sync, self.prefix, zone, since, until, queues,
                                      bodies)
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read rollups: {exc}") from None

    # -- quarantine -------------------------------------------------------------------------

    def _digest(self, event: Event) -> str:
        return hashlib.blake2b(encode(event).encode(), digest_size=10).hexdigest()

    def _mark(self, recv: float, event: Event) -> str:
        """The quarantine field of a stored event: its entry's milliseconds and digest."""
        return f"{round(recv * 1000)}:{self._digest(event)}"

    def _marks(self, items: list[Quarantine]) -> dict[str, bytes]:
        now = time.time()
        return {self._mark(recv, event): orjson.dumps({"stage": stage, "reason": why, "at": now})
                for recv, event, stage, why in items}

    def _held(self) -> dict[int, set[str]]:
        """The quarantined events' digests by entry milliseconds."""
        try:
            fields = self._sync.hkeys(self.quarantine_key)
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read the quarantine: {exc}") from None
        held: dict[int, set[str]] = {}
        for field in fields:
            ms, _, digest = field.decode().partition(":")
            held.setdefault(int(ms), set()).add(digest)
        return held

    def quarantine(self, items: list[Quarantine]) -> None:
        """Mark stored events whose fold failed (before start: the sync client). Never raises."""
        if not items or self._sync is None:
            return
        try:
            self._sync.hset(self.quarantine_key, mapping=self._marks(items))
        except FAILURES as exc:
            log.warning("journal: could not quarantine %s events: %s", len(items), exc)

    def quarantined(self) -> Iterator[bytes]:
        """The quarantined events as NDJSON lines, by arrival."""
        try:
            marks = self._sync.hgetall(self.quarantine_key)
        except FAILURES as exc:
            raise JournalError(f"{self.location}: cannot read the quarantine: {exc}") from None
        by_ms: dict[int, dict[str, dict[str, Any]]] = {}
        for field, value in marks.items():
            ms, _, digest = field.decode().partition(":")
            by_ms.setdefault(int(ms), {})[digest] = orjson.loads(value)
        for ms in sorted(by_ms):
            wanted = by_ms[ms]
            for _entry_id, fields in self._same_ms(ms):
                for event in self._decode(fields):
                    digest = self._digest(event)
                    mark = wanted.get(digest)
                    if mark is not None:
                        yield quarantined_line(f"{ms}:{digest}", ms / 1000, mark["stage"],
                                               mark["reason"], mark["at"], event)

    def _same_ms(self, ms: int) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
        """The entries appended in one millisecond."""
        for chunk in self._entries(f"{ms}-0"):
            for entry in chunk:
                if entry_ms(entry[0]) != ms:
                    return
                yield entry

    def _quarantine_stats(self) -> tuple[int, dict[str, int]]:
        try:
            values = self._sync.hvals(self.quarantine_key)
        except FAILURES:
            return 0, {}
        reasons: Counter[str] = Counter()
        for value in values:
            mark = orjson.loads(value)
            reasons[f"{mark['stage']}: {mark['reason']}"] += 1
        return len(values), dict(reasons.most_common(QUARANTINE_REASONS_LISTED))

    def scan(self, since_ts: float, until_ts: float) -> Iterator[list[Event]]:
        """Events whose event time lies in [since_ts, until_ts], in stream order."""
        for chunk in self._entries("-"):
            events = [e for _, fields in chunk for e in self._decode(fields)]
            yield [e for e in events if since_ts <= e.ts <= until_ts]

    def stats(self) -> JournalStats:
        """Counts per source and the stream's memory (reads the whole stream: CLI only)."""
        events, sources = 0, dict[str, int]()
        first = last = None
        oldest_ts = newest_ts = None
        for chunk in self._entries("-"):
            for entry_id, fields in chunk:
                recv = entry_ms(entry_id) / 1000
                first = recv if first is None else first
                last = recv
                for event in self._decode(fields):
                    events += 1
                    key = event.source or ""
                    sources[key] = sources.get(key, 0) + 1
                    oldest_ts = event.ts if oldest_ts is None else min(oldest_ts, event.ts)
                    newest_ts = event.ts if newest_ts is None else max(newest_ts, event.ts)
        try:
            size = int(self._sync.memory_usage(self.stream, samples=0) or 0)
        except FAILURES:
            size = 0
        ordered = dict(sorted(sources.items(), key=lambda kv: -kv[1]))
        held, reasons = self._quarantine_stats()
        return JournalStats(self.location, events, size, oldest_ts, newest_ts, first, last,
                            ordered, held, reasons)
