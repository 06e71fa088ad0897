"""Reading the Redis Streams journal back: the start-up rebuild, `journal export` and `stats`.

The stream's keys, its format record and the decoding of entries; the live side (appending,
following the stream, health) is `journal_redis.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from wallboard.config import JournalConfig
from wallboard.events import Event
from wallboard.journal import FIELDS, JournalError, JournalStats, Stored, values_decoder

try:  # an optional dependency: make_journal turns its absence into a clear error
    import redis
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - exercised by a subprocess test
    redis = None  # type: ignore[assignment]
    RedisError = OSError  # type: ignore[assignment,misc]

READ_COUNT = 500  # stream entries per XRANGE/XREAD call
FAILURES = (RedisError, OSError, TimeoutError)


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
        self.location = f"{_safe_url(config.url)} stream {self.stream}"
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
        """Events that arrived at or after `since`, in stream order; the tail goes on from there."""
        self.last_id = f"{max(int(since * 1000), 0)}-0".encode()
        for chunk in self._entries(self.last_id.decode()):
            batch: list[Stored] = []
            for entry_id, fields in chunk:
                recv = entry_ms(entry_id) / 1000
                batch.extend((recv, event) for event in self._decode(fields))
                self.folded_n = int(fields.get(b"n", 0))
                self.last_id = entry_id
            yield batch

    def scan(self, since_ts: float, until_ts: float) -> Iterator[list[Event]]:
        """Events whose event time lies in [since_ts, until_ts], in stream order."""
        for chunk in self._entries("-"):
            events = [e for _, fields in chunk for e in self._decode(fields)]
            yield [e for e in events if since_ts <= e.ts <= until_ts]

    def stats(self) -> JournalStats:
        """Counts per source and the stream's memory (reads the whole stream: CLI only)."""
        events, sources = 0, {}
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
        return JournalStats(self.location, events, size, oldest_ts, newest_ts, first, last,
                            ordered)


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
