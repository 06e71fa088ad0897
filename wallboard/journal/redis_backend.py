"""The Redis Streams journal: one stream shared by every node, appended with a Lua script.

Each append is one stream entry holding a JSON array of events; its id (the Redis clock in
milliseconds) is their arrival time. The script (`redis_scripts.py`) refuses a fenced
source's stale holder and drops events whose id another node already stored, then XADDs the
rest. Every node, the one that accepted the events included, folds the stream in stream order
(`deliver`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from wallboard.config.settings import JournalConfig
from wallboard.journal import redis_intervals, redis_rollups
from wallboard.journal.interface import (
    CHECKPOINTS_KEPT,
    IntervalRow,
    JournalDown,
    JournalError,
    JournalFenced,
    JournalStatus,
    Quarantine,
    Stored,
    encode,
    retry_after,
)
from wallboard.journal.redis_scripts import APPEND_LUA
from wallboard.journal.redis_stream import (
    FAILURES,
    READ_COUNT,
    RedisStreamReader,
    entry_ms,
    id_key,
)
from wallboard.model.events import Event

try:  # an optional dependency: make_journal turns its absence into a clear error
    import redis.asyncio as aioredis
    from redis.exceptions import NoScriptError
except ImportError:  # pragma: no cover - exercised by a subprocess test
    aioredis = None  # type: ignore[assignment]  # None stands for absent: checked at use
    NoScriptError = OSError  # type: ignore[assignment,misc]  # a stand-in no call raises

log = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_MS = 1000  # an idle XREAD returns this often (lag refresh, shutdown)
DELAYS_KEPT = 10_000  # apply delays kept for the p50/p99 in /healthz
MAX_APPENDS_PER_ROUND = 2000
FOLD_CHUNK = 5000  # events folded between two yields to the event loop
SIZE_EVERY_S = 10.0  # how often the stream's memory is read for /metrics


class _Append:
    """One queued append: the script's arguments, and the future its sender awaits."""

    __slots__ = ("bodies", "future", "holder", "ids", "lease", "size")

    def __init__(self, lease: str, holder: str, ids: bytes, bodies: str, size: int,
                 future: asyncio.Future[list[int]]) -> None:
        self.lease, self.holder, self.ids, self.bodies = lease, holder, ids, bodies
        self.size, self.future = size, future


class RedisJournal(RedisStreamReader):
    """The journal as a Redis stream; every node reads all of it, in order."""

    replicated = True  # the pipeline folds what `deliver` hands over, not what it appended

    def __init__(self, config: JournalConfig) -> None:
        super().__init__(config)
        self.status = JournalStatus(retry_s=config.retry_s)
        self.on_change: Callable[[], None] = lambda: None
        # Set by the app: folds a batch of (arrival, event) in stream order.
        self.deliver: Callable[[list[Stored]], None] = lambda batch: None
        # An id is remembered as long as the events are kept, unless configured otherwise.
        ttl_s = config.dedupe_ttl_s or config.retention_days * 86400.0
        self.ttl_ms = int(ttl_s * 1000)
        self.id_prefix = f"{self.prefix}:id:"
        self._sha: str | None = None  # the append script's SHA1 once Redis has loaded it
        self.head_n = 0  # the counter value last read from Redis
        self.entries = 0  # stream entries folded since start (replay excluded)
        self.delays: deque[float] = deque(maxlen=DELAYS_KEPT)  # entry time to fold, seconds
        self.delay_sum = 0.0  # of every entry's delay since start (the summary's _sum)
        self.redis: Any = None  # the asyncio client (leases use it too)
        self._reader: Any = None
        self._queue: deque[_Append] = deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._marking: set[asyncio.Task[None]] = set()  # quarantine writes in flight
        self._down_by = "write"

    def shared(self) -> RedisJournal:
        """The stream several nodes share: itself."""
        return self

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer, the tail that folds the stream, and the health probe."""
        url, timeout = self.config.url, self.config.timeout_s
        assert url is not None  # JournalConfig requires one for backend: redis
        self.redis = aioredis.Redis.from_url(url, socket_timeout=timeout,
                                             socket_connect_timeout=timeout)
        # A blocking XREAD holds its connection for BLOCK_MS: a client of its own.
        self._reader = aioredis.Redis.from_url(url, socket_timeout=BLOCK_MS / 1000 + timeout,
                                               socket_connect_timeout=timeout)
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._tasks = [asyncio.create_task(self._write(), name="journal-redis-writer"),
                       asyncio.create_task(self._tail(), name="journal-redis-tail"),
                       asyncio.create_task(self._probe(), name="journal-redis-probe")]

    def append(self, events: list[Event], recv: float, *,
               fence: tuple[str, str] | None = None) -> asyncio.Future[list[int]]:
        """Queue events for the next round trip; the future gives the duplicates' positions.

        `fence` is (lease key, holder): the script refuses the events unless that lease is
        still the holder's (JournalFenced).
        """
        if not self.status.up or self._wake is None:
            raise JournalDown(self.status.error or "the journal is not open",
                              retry_after(self.status))
        prefix = self.id_prefix
        ids = [f"{prefix}{event.source}:{event.id}" if event.id is not None else ""
               for event in events]
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        lease, holder = fence if fence is not None else (self.counter, "")
        self._queue.append(_Append(lease, holder, orjson.dumps(ids),
                                   "\n".join(map(encode, events)), len(events), future))
        self._wake.set()
        return future

    def quarantine(self, items: list[Quarantine]) -> None:
        """Mark stored events whose fold failed; once started, without blocking the loop."""
        if self.redis is None:
            super().quarantine(items)
            return
        if not items:
            return
        task = asyncio.get_running_loop().create_task(self._quarantine(self._marks(items)))
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def _quarantine(self, marks: dict[str, bytes]) -> None:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await self.redis.hset(self.quarantine_key, mapping=marks)
        except FAILURES as exc:  # the next start meets the events again and quarantines them
            log.warning("journal: could not quarantine %s events: %s", len(marks), exc)

    async def _prune_quarantine(self, before: float) -> None:
        """Quarantine marks go with their entries."""
        cutoff = int(before * 1000)
        stale = [name async for name, _ in self.redis.hscan_iter(self.quarantine_key)
                 if int(name.split(b":", 1)[0]) < cutoff]
        if stale:
            await self.redis.hdel(self.quarantine_key, *stale)

    def _run(self, work: Callable[[], Awaitable[T]], timeout_s: float | None
             ) -> asyncio.Future[T]:
        """One store operation on the loop; any failure is JournalDown naming the store."""
        if self.redis is None:
            raise JournalDown("the journal is not open", retry_after(self.status))

        async def guarded() -> T:
            try:
                async with asyncio.timeout(timeout_s):
                    return await work()
            except FAILURES as exc:
                raise JournalDown(f"{self.location}: {type(exc).__name__}: {exc}",
                                  retry_after(self.status)) from None
        return asyncio.ensure_future(guarded())

    def save_checkpoint(self, position: str, blob: bytes) -> asyncio.Future[None]:
        """Store a checkpoint under its stream id, keeping the newest CHECKPOINTS_KEPT."""
        async def save() -> None:
            await self.redis.hset(self.checkpoint_key, position, blob)
            names = sorted(await self.redis.hkeys(self.checkpoint_key), key=id_key)
            if len(names) > CHECKPOINTS_KEPT:
                await self.redis.hdel(self.checkpoint_key, *names[:-CHECKPOINTS_KEPT])
        return self._run(save, self.config.timeout_s * 4)  # a few MB to send

    def save_intervals(self, rows: list[IntervalRow], *, replace: bool,
                       prune_before: int | None = None,
                       zone: str | None = None) -> asyncio.Future[None]:
        """Store closed intervals under the journal's prefix (rolled up after them)."""
        # The roll-up reads back each touched day: a day's bodies, a few MB at most.
        return self._run(lambda: redis_intervals.save(self.redis, self.prefix, rows, replace,
                                                      prune_before, zone),
                         self.config.timeout_s * (4 if zone is None else 20))

    def roll_up(self, zone: str, since: int) -> asyncio.Future[int]:
        """Catch the rollups up (a day at a time, each its own transaction; no deadline)."""
        return self._run(lambda: redis_rollups.catch_up(self.redis, self.prefix, zone, since),
                         None)

    async def _write(self) -> None:
        """One pipeline of scripts per round: appends queued meanwhile go in the next one."""
        assert self._wake is not None and self._idle is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                self._idle.clear()
                batch = [self._queue.popleft()
                         for _ in range(min(len(self._queue), MAX_APPENDS_PER_ROUND))]
                await self._round(batch)
            self._idle.set()

    async def _round(self, batch: list[_Append]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.timeout_s * (2 if self.config.wait_replicas
                                                                else 1)):
                results = await self._send(batch)
        except FAILURES as exc:
            self._set_down(f"{self.location}: {type(exc).__name__}: {exc}".rstrip(": "))
            error = JournalDown(self.status.error or "redis down", retry_after(self.status))
            self.status.failed += sum(item.size for item in batch)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        stored = 0
        for item, (kept, duplicates, _id) in zip(batch, results, strict=True):
            if item.future.done():
                continue
            if kept == -1:
                self.status.failed += item.size
                item.future.set_exception(JournalFenced(
                    "this node no longer holds the source's lease", retry_after(self.status)))
            else:
                stored += kept
                item.future.set_result([int(at) - 1 for at in duplicates])
        self.status.observe_batch(stored, time.perf_counter() - started)

    async def _send(self, batch: list[_Append]) -> list[Any]:
        """The batch as one pipeline of EVALSHA calls (the script's text is sent once)."""
        for attempt in (1, 2):
            if self._sha is None:
                self._sha = await self.redis.script_load(APPEND_LUA)
            pipe = self.redis.pipeline(transaction=False)
            for item in batch:
                pipe.evalsha(self._sha, 3, self.stream, self.counter, item.lease, self.ttl_ms,
                             item.holder, item.ids, item.bodies)
            try:
                results: list[Any] = await pipe.execute()
            except NoScriptError:  # a restarted Redis forgot the script: nothing was applied
                if attempt == 2:
                    raise
                self._sha = None
                continue
            if self.config.wait_replicas:
                await self._wait_replicas()
            return results
        raise AssertionError("unreachable")

    async def _wait_replicas(self) -> None:
        wanted = self.config.wait_replicas
        acked = await self.redis.execute_command("WAIT", wanted,
                                                 int(self.config.timeout_s * 1000))
        if int(acked) < wanted:
            raise TimeoutError(f"only {acked} of {wanted} replicas confirmed the write")

    async def _tail(self) -> None:
        """Fold every entry after the last one read, in stream order, as it arrives."""
        next_head = 0.0
        while True:
            try:
                answer = await self._reader.xread({self.stream: self.last_id},
                                                  count=READ_COUNT, block=BLOCK_MS)
                if not self.status.up and self._down_by == "tail":
                    self._set_up("the stream can be read again")
                if answer:
                    await self._fold(answer[0][1])
                if time.monotonic() >= next_head:
                    next_head = time.monotonic() + 0.5
                    self.head_n = int(await self._reader.get(self.counter) or 0)
            except asyncio.CancelledError:
                raise
            except FAILURES as exc:
                self._set_down(f"{self.location}: cannot read the stream: "
                               f"{type(exc).__name__}: {exc}", by="tail")
                await asyncio.sleep(self.config.retry_s)
                with contextlib.suppress(*FAILURES):
                    await self._reader.connection_pool.disconnect()

    async def _fold(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Deliver entries in order, yielding to the loop between chunks (catch-up is long)."""
        batch: list[Stored] = []
        now = time.time()
        for entry_id, fields in entries:
            recv = entry_ms(entry_id) / 1000
            try:
                events = self._decode(fields)
            except JournalError as exc:  # one bad entry must not stop the node
                log.error("journal: skipping entry %s: %s", entry_id, exc)
                events = []
            batch.extend((recv, event) for event in events)
            delay = max(now - recv, 0.0)
            self.delays.append(delay)
            self.delay_sum += delay
            self.folded_n = int(fields.get(b"n", self.folded_n))
            self.last_id = entry_id
            self.entries += 1
            if len(batch) >= FOLD_CHUNK:
                self._deliver(batch)
                batch = []
                await asyncio.sleep(0)  # boards and webhooks are served between chunks
        self.head_n = max(self.head_n, self.folded_n)
        self._deliver(batch)

    def _deliver(self, batch: list[Stored]) -> None:
        try:
            self.deliver(batch)
        except Exception:  # a bug in a fold must not stop this node from following the stream
            log.exception("journal: folding %s events from the stream failed", len(batch))

    async def _probe(self) -> None:
        """While down, PING every retry_s; a success brings the journal up again."""
        sized = 0.0
        while True:
            await asyncio.sleep(self.config.retry_s)
            if self.status.up:
                if time.monotonic() - sized >= SIZE_EVERY_S:
                    sized = time.monotonic()
                    with contextlib.suppress(*FAILURES):  # sampled: cheap on a long stream
                        self.status.bytes = int(await self.redis.memory_usage(self.stream) or 0)
                continue
            try:
                # Connections from before the outage are dead: start afresh, not one per error.
                await self.redis.connection_pool.disconnect()
                async with asyncio.timeout(self.config.timeout_s):
                    await self.redis.ping()
            except FAILURES as exc:
                self.status.error = f"{self.location}: {type(exc).__name__}: {exc}"
                continue
            self._set_up("Redis answers again")

    def _set_up(self, why: str) -> None:
        log.warning("journal recovered: %s: %s", self.location, why)
        self.status.up, self.status.error = True, None
        self.on_change()

    def _set_down(self, error: str, by: str = "write") -> None:
        self._down_by = by  # a failed read is cleared by the next good read, a write by a PING
        if self.status.up:
            log.error("journal down: %s; ingest answers 503 until Redis answers (tried again "
                      "every %gs)", error, self.config.retry_s)
            self.status.up = False
            self.on_change()
        self.status.error = error

    @property
    def lag(self) -> int:
        """Events in the stream this node has not folded yet."""
        return max(self.head_n - self.folded_n, 0)

    async def prune(self, before: float) -> int:
        """Trim entries that arrived before `before` (and beyond `maxlen`), approximately."""
        if self.redis is None:
            return 0
        async def trim() -> int:
            # Exact: it runs once per prune_every_s, and a trimmed entry must be a dead one.
            removed = int(await self.redis.xtrim(self.stream, minid=f"{int(before * 1000)}-0",
                                                 approximate=False))
            if self.config.maxlen is not None:
                removed += int(await self.redis.xtrim(self.stream, maxlen=self.config.maxlen,
                                                      approximate=True))
            await self._prune_quarantine(before)
            return removed
        return await self._run(trim, None)

    async def close(self) -> None:
        """Send what is queued (while Redis answers), then stop and disconnect."""
        if self._idle is not None and self.status.up:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.timeout_s):
                    await self._idle.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in (self.redis, self._reader):
            if client is not None:
                with contextlib.suppress(*FAILURES):
                    await client.aclose()
        if self._sync is not None:
            with contextlib.suppress(*FAILURES):
                self._sync.close()
