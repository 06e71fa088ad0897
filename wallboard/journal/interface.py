"""The event journal's interface: accepted events are stored here before they are acknowledged.

Only this module and its backends (`journal_sqlite.py`, `journal_redis.py` with
`redis_stream.py`) know how events are stored. The rest of the core sees the `Journal`
protocol: append a batch and await its durability, read back what arrived since a moment in
append order, scan by event time, prune, report status and stats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from wallboard.config.settings import JournalConfig
from wallboard.model.events import Event

if TYPE_CHECKING:  # a backend module imports this one: named for the type checker only
    from wallboard.journal.redis_backend import RedisJournal

# Batch commit durations (seconds) for the /metrics histogram.
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Event))
_values = attrgetter(*FIELDS)


class JournalError(Exception):
    """The journal cannot be opened or read; the message names the path and the cause."""


class JournalLocked(JournalError):
    """Another process (a running server) holds the journal's lock."""


class JournalDown(Exception):
    """Events could not be stored (disk full, read-only, locked); ingest answers 503."""

    def __init__(self, cause: str, retry_after_s: float) -> None:
        super().__init__(cause)
        self.retry_after_s = retry_after_s


class JournalFenced(JournalDown):
    """A source's events came from a node that no longer holds its lease: refused."""


@dataclass
class JournalStatus:
    """What the journal says about itself, kept in memory for /metrics and the board."""

    up: bool = True
    error: str | None = None
    retry_s: float = 5.0
    appended: int = 0  # events made durable
    failed: int = 0  # events that could not be stored
    batches: int = 0
    batch_seconds_sum: float = 0.0
    batch_buckets: list[int] = field(default_factory=lambda: [0] * len(BATCH_BUCKETS))
    bytes: int = 0  # size on disk (database and its write-ahead log)
    replayed: int = 0  # events folded back at start
    replay_seconds: float = 0.0
    skipped: int = 0  # quarantined events the start-up replay left out

    def observe_batch(self, events: int, seconds: float) -> None:
        """Count one committed batch and its duration."""
        self.appended += events
        self.batches += 1
        self.batch_seconds_sum += seconds
        for i, edge in enumerate(BATCH_BUCKETS):
            if seconds <= edge:
                self.batch_buckets[i] += 1
                break

    @property
    def state(self) -> str:
        """'up' or 'down', as the snapshot's meta shows it."""
        return "up" if self.up else "down"


@dataclass
class JournalStats:
    """What `wallboard journal stats` prints."""

    path: str
    events: int
    bytes: int
    oldest_ts: float | None
    newest_ts: float | None
    oldest_recv: float | None
    newest_recv: float | None
    sources: dict[str, int]
    quarantined: int = 0  # events kept but marked: their fold or restore failed
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # "stage: reason" -> n

    @property
    def bytes_per_event(self) -> float | None:
        """Bytes on disk per stored event."""
        return self.bytes / self.events if self.events else None


Stored = tuple[float, Event]  # (arrival time on the server's clock, the event)
Checkpoint = tuple[str, bytes]  # (the journal position its state covers, the blob)
# A closed interval of history: (start, level, name, channel, body), the body opaque here.
IntervalRow = tuple[int, str, str, str, bytes]
# A day's rollup of one entity: (local day start, level, name, channel, first interval start,
# body, slots), the body an interval's format; see wallboard/fold/rollup.py.
RollupRow = tuple[int, str, str, str, int, bytes, bytes]
CHECKPOINTS_KEPT = 3  # the newest few: one damaged still leaves an older one to load


class Appended(list[int]):
    """What an append resolves with: the duplicates' positions in the batch, as a list.

    `position` is the journal position of the batch's last stored event (None: the backend
    does not say, or nothing was ever stored): the pipeline's state covers it once folded.
    """

    __slots__ = ("position",)

    def __init__(self, duplicates: list[int], position: str | None = None) -> None:
        super().__init__(duplicates)
        self.position = position
# A stored event to quarantine: (its arrival time, the event, stage, reason).
Quarantine = tuple[float, Event, str, str]
QUARANTINE_REASONS_LISTED = 20  # `journal stats` lists the most frequent reasons


def quarantined_line(ref: str, recv: float, stage: str, reason: str, at: float,
                     event: Event) -> bytes:
    """One NDJSON line of `journal export --quarantined` (the event itself under "event")."""
    return orjson.dumps({"ref": ref, "recv": recv, "stage": stage, "reason": reason,
                         "at": at, "event": event.to_dict()}) + b"\n"


class Journal(Protocol):
    """The storage contract: a Redis Streams backend would implement exactly this."""

    status: JournalStatus
    location: str
    on_change: Callable[[], None]  # called on the event loop when the journal goes up or down
    # True: several nodes share the store and each folds what `deliver` hands it, in the
    # store's order, rather than what it appended itself.
    replicated: bool

    def shared(self) -> RedisJournal | None:
        """The store several nodes share, for the cluster's leases and delivery; None: one node."""

    def open(self, *, writable: bool = True) -> None:
        """Open (creating if needed) and prove the store writable; raises JournalError.

        writable=False opens an existing journal for reading alongside a running server.
        """

    def read(self, since: float) -> Iterator[list[Stored]]:
        """Events that arrived at or after `since`, in append order, in batches."""

    def scan(self, since_ts: float, until_ts: float) -> Iterator[list[Event]]:
        """Events whose event time lies in [since_ts, until_ts], in append order."""

    def read_after(self, position: str) -> Iterator[list[Stored]]:
        """Events stored after `position` (a checkpoint's), in append order, in batches."""

    @property
    def position(self) -> str | None:
        """The position of the last event `read`/`read_after` gave (or the tail delivered)."""

    def checkpoints(self) -> list[Checkpoint]:
        """The stored checkpoints, newest first (before start: reads the store)."""

    def save_checkpoint(self, position: str, blob: bytes) -> asyncio.Future[None]:
        """Store a checkpoint off the loop, keeping the newest CHECKPOINTS_KEPT; never raises.

        The future fails (JournalDown, or the store's error) when it could not be written.
        """

    def save_intervals(self, rows: list[IntervalRow], *, replace: bool,
                       prune_before: int | None = None,
                       zone: str | None = None) -> asyncio.Future[None]:
        """Store closed intervals off the loop (replace, or only where missing); never raises.

        Intervals starting before `prune_before` go (history.retention_days), with their
        days' rollups. With `zone` (site.timezone), the local days the rows touch are rolled
        up again from what is stored; any write unmarks its days' rollups first. The future
        fails (JournalDown, or the store's error) when they could not be written.
        """

    def rollups(self, zone: str, since: int, until: int, queues: frozenset[str] = frozenset(),
                *, bodies: bool = True) -> tuple[list[int], list[RollupRow]]:
        """The days starting in [since, until) whose rollups for `zone` equal their stored
        intervals, and those rollups in the intervals' order (blocking: off the loop).

        With `bodies` their bodies are given (the slots empty), else only their slots (the
        forecast's need).
        """

    def roll_up(self, zone: str, since: int) -> asyncio.Future[int]:
        """Roll up every day from `since` on whose rollups are missing or stale (a new
        version, a changed zone, a failed write); drop other zones'. Resolves to the days."""

    def intervals(self, since: int, until: int,
                  queues: frozenset[str] = frozenset()) -> list[IntervalRow]:
        """Stored intervals starting in [since, until), oldest first (blocking: off the loop).

        With `queues`, only the rows of those queues (level "queue"): what a report of some
        queues reads, left out in the store rather than decoded and dropped.
        """

    def start(self) -> None:
        """Begin accepting appends; call from the running event loop."""

    def append(self, events: list[Event], recv: float, *,
               fence: tuple[str, str] | None = None) -> asyncio.Future[Any]:
        """Queue events for the next commit; the future resolves once they are durable.

        It resolves with the positions in `events` of those whose (source, id) the store
        already held (duplicates: not stored again; ids are kept for the retention). Raises
        JournalDown at once while the journal is down; the future fails with JournalDown when
        the commit holding the events fails. A shared store refuses them when `fence` (lease
        key, holder) no longer holds.
        """

    async def prune(self, before: float) -> int:
        """Delete events that arrived before `before` without holding up appends."""

    def stats(self) -> JournalStats:
        """Counts and sizes (reads the store: for the CLI, never on the event loop)."""

    def quarantine(self, items: list[Quarantine]) -> None:
        """Mark stored events whose fold failed; `read` skips them from then on. Never raises."""

    def quarantined(self) -> Iterator[bytes]:
        """The quarantined events as NDJSON lines (see quarantined_line); CLI only."""

    async def close(self) -> None:
        """Commit what is queued, then release the store."""


def encode(event: Event) -> str:
    """An event as a JSON array of its fields in `FIELDS` order, trailing nulls dropped."""
    values = _values(event)
    end = len(values)
    while values[end - 1] is None:
        end -= 1
    return orjson.dumps(values[:end]).decode()


def values_decoder(stored_fields: list[str]) -> Callable[[list[Any]], Event]:
    """Events from value arrays written with `stored_fields`; JournalError if one is unknown."""
    unknown = [name for name in stored_fields if name not in FIELDS]
    if unknown:
        raise JournalError(f"written by another wallboard version: unknown fields {unknown}")
    if tuple(stored_fields) == FIELDS[:len(stored_fields)]:
        # Positional construction is three times faster than keywords: it is what replay pays.
        return lambda values: Event(*values)
    names = list(stored_fields)
    return lambda values: Event(**dict(zip(names, values, strict=False)))


def decoder(stored_fields: list[str]) -> Callable[[str | bytes], Event]:
    """A decoder for JSON arrays written with `stored_fields` (see values_decoder)."""
    values, loads = values_decoder(stored_fields), orjson.loads
    if tuple(stored_fields) == FIELDS[:len(stored_fields)]:
        return lambda body: Event(*loads(body))  # one call less per event on the replay path
    return lambda body: values(loads(body))


def to_line(event: Event) -> bytes:
    """One NDJSON line that `wallboard replay` accepts (times as epoch seconds, exact)."""
    return orjson.dumps(event.to_dict()) + b"\n"


def make_journal(config: JournalConfig) -> Journal:
    """The configured backend."""
    if config.backend == "sqlite":
        # Imported here: a backend depends on this module, not the other way round.
        from wallboard.journal.sqlite_backend import SqliteJournal

        return SqliteJournal(config)
    if config.backend == "redis":
        from wallboard.journal.redis_backend import RedisJournal

        return RedisJournal(config)
    raise JournalError(f"journal.backend: unknown backend {config.backend!r}")


def retry_after(status: JournalStatus) -> int:
    """Whole seconds for a Retry-After header."""
    return max(1, math.ceil(status.retry_s))
