"""The embedded journal: SQLite in WAL mode, one writer thread, group commits."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import resource
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from wallboard.config import JournalConfig
from wallboard.events import Event
from wallboard.journal import (
    FIELDS,
    JournalDown,
    JournalError,
    JournalStats,
    JournalStatus,
    Stored,
    decoder,
    encode,
    retry_after,
)

log = logging.getLogger(__name__)

DB_NAME = "journal.sqlite3"
LOCK_NAME = "journal.lock"
FORMAT = "1"
READ_BATCH = 20_000
PRUNE_CHUNK = 5_000  # rows per delete transaction: appends queued meanwhile go in between
PROBE_BYTES = 64 * 1024  # a write this big must succeed before the journal is called up
BUSY_TIMEOUT_MS = 2_000
SIZE_EVERY_S = 1.0
_INSERT = "INSERT INTO events (recv, ts, body) VALUES (?, ?, ?)"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,  -- append order
    recv REAL NOT NULL,       -- arrival on the server's clock: the replay clock, retention
    ts REAL NOT NULL,         -- event time: export --since/--until
    body TEXT NOT NULL        -- the canonical event: a JSON array in the order of meta.fields
);
CREATE INDEX IF NOT EXISTS events_recv ON events (recv);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS probe (data BLOB);
"""


def _room(directory: Path) -> str:
    """Free space and the file size limit, for a write error's message."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(f"{shutil.disk_usage(directory).free:,} bytes free on its file system")
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        parts.append(f"file size limit (ulimit -f) {soft:,} bytes")
    return f"; {', '.join(parts)}" if parts else ""


def cause(exc: sqlite3.Error, directory: Path) -> str:
    """What went wrong, in words an operator can act on."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        hint = "the file is corrupt or not a wallboard journal; move it aside to start afresh"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        hint = "another process holds a lock on the database"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        hint = "the data directory or the database file is not writable"
    elif name.startswith("SQLITE_FULL"):
        hint = "the disk is full" + _room(directory)
    elif name.startswith("SQLITE_IOERR"):
        hint = "a write failed: disk full, quota or I/O error" + _room(directory)
    else:
        hint = ""
    label = f"{name}: {hint}" if hint else name
    return f"{exc} ({label})" if label else str(exc)


class _Append:
    __slots__ = ("events", "future", "recv")

    def __init__(self, events: list[Event], recv: float, future: asyncio.Future[None]) -> None:
        self.events, self.recv, self.future = events, recv, future


class _Job:
    __slots__ = ("before", "future", "kind", "removed")

    def __init__(self, kind: str, future: asyncio.Future[Any] | None = None,
                 before: float = 0.0) -> None:
        self.kind, self.future, self.before, self.removed = kind, future, before, 0


class SqliteJournal:
    """The journal in one SQLite file; a dedicated thread does every write."""

    def __init__(self, config: JournalConfig) -> None:
        self.config = config
        self.dir = Path(config.data_dir)
        self.path = self.dir / DB_NAME
        self.location = str(self.path)
        self.status = JournalStatus(retry_s=config.retry_s)
        self._con: sqlite3.Connection | None = None
        self._stored_fields = list(FIELDS)
        self._decode = decoder(self._stored_fields)
        self._lock_fd: int | None = None
        self._queue: queue.SimpleQueue[_Append | _Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.on_change: Callable[[], None] = lambda: None  # up or down: runs on the loop
        self._next_probe = 0.0
        self._sized = 0.0

    # -- opening -------------------------------------------------------------------------

    def open(self, *, writable: bool = True) -> None:
        """Open (creating if needed) and prove the store writable; raises JournalError."""
        try:
            if writable:
                if self.dir.exists() and not self.dir.is_dir():
                    raise JournalError(f"{self.dir}: not a directory (see journal.data_dir)")
                self.dir.mkdir(parents=True, exist_ok=True)
                self._take_lock()
            elif not self.path.is_file():
                raise JournalError(f"{self.path}: no journal here (see journal.data_dir)")
            self._con = con = sqlite3.connect(
                f"file:{self.path}?mode={'rwc' if writable else 'rw'}", uri=True,
                isolation_level=None, check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if writable:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise JournalError(f"{self.path}: cannot use write-ahead logging ({mode})")
                con.execute(f"PRAGMA synchronous = {self.config.sync.upper()}")
                con.executescript(_SCHEMA)
            self._stored_fields = self._fields(con, writable)
            self._decode = decoder(self._stored_fields)
            if writable:
                self._probe(con)
                self._refresh_size(force=True)
        except JournalError:
            self._release()
            raise
        except sqlite3.Error as exc:
            self._release()
            raise JournalError(f"{self.path}: {cause(exc, self.dir)}") from None
        except OSError as exc:
            self._release()
            raise JournalError(f"{exc.filename or self.dir}: {exc.strerror or exc}") from None

    def _take_lock(self) -> None:
        """One server per journal: a second one would replay and write the same file."""
        fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalError(f"{self.dir}: in use by another wallboard process (pid {holder}); "
                               f"two servers cannot share one journal") from None
        self._lock_fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def _fields(self, con: sqlite3.Connection, writable: bool) -> list[str]:
        """The field order the stored arrays were written with (recorded at creation)."""
        row = con.execute("SELECT value FROM meta WHERE key = 'fields'").fetchone()
        if row is not None:
            return list(orjson.loads(row[0]))
        if not writable:
            raise JournalError(f"{self.path}: not a wallboard journal (no format record)")
        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("format", FORMAT), ("fields", orjson.dumps(FIELDS).decode())])
        return list(FIELDS)

    def _probe(self, con: sqlite3.Connection) -> None:
        """Write and commit PROBE_BYTES, then free them: the disk, quota and locks allow it."""
        for sql, args in (("INSERT INTO probe (data) VALUES (zeroblob(?))", (PROBE_BYTES,)),
                          ("DELETE FROM probe", ())):
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(sql, args)
                con.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _release(self) -> None:
        if self._con is not None:
            with contextlib.suppress(sqlite3.Error):
                self._con.close()
            self._con = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- reading (before start, or from the CLI) ------------------------------------------

    def read(self, since: float) -> Iterator[list[Stored]]:
        """Events that arrived at or after `since`, in append order, in batches."""
        assert self._con is not None
        con, decode = self._con, self._decode
        with self._reading():
            first = con.execute("SELECT min(seq) FROM events WHERE recv >= ?",
                                (since,)).fetchone()[0]
            if first is None:
                return
            cursor = con.execute("SELECT recv, body FROM events WHERE seq >= ? ORDER BY seq",
                                 (first,))
            while rows := cursor.fetchmany(READ_BATCH):
                yield [(recv, decode(body)) for recv, body in rows]

    def scan(self, since_ts: float, until_ts: float) -> Iterator[list[Event]]:
        """Events whose event time lies in [since_ts, until_ts], in append order."""
        assert self._con is not None
        decode = self._decode
        with self._reading():
            cursor = self._con.execute(
                "SELECT body FROM events WHERE ts >= ? AND ts <= ? ORDER BY seq",
                (since_ts, until_ts))
            while rows := cursor.fetchmany(READ_BATCH):
                yield [decode(body) for (body,) in rows]

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read: {cause(exc, self.dir)}") from None
        except (ValueError, TypeError) as exc:
            raise JournalError(f"{self.path}: a stored event does not decode ({exc}); the file "
                               f"is corrupt or from another wallboard version") from None

    def stats(self) -> JournalStats:
        """Counts and sizes; reads the whole table (CLI only)."""
        assert self._con is not None
        con = self._con
        source_at = self._stored_fields.index("source")
        with self._reading():
            events, oldest_recv, newest_recv = con.execute(
                "SELECT count(*), min(recv), max(recv) FROM events").fetchone()
            oldest_ts, newest_ts = con.execute("SELECT min(ts), max(ts) FROM events").fetchone()
            sources = dict(con.execute(
                f"SELECT coalesce(json_extract(body, '$[{source_at}]'), ''), count(*) "
                f"FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall())
        return JournalStats(self.location, events, self._disk_bytes(), oldest_ts, newest_ts,
                            oldest_recv, newest_recv, sources)

    def _disk_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    # -- writing ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; appends resolve on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write_loop, name="journal-writer",
                                        daemon=True)
        self._thread.start()

    def append(self, events: list[Event], recv: float) -> asyncio.Future[None]:
        """Queue events for the next commit; the future resolves once they are durable."""
        if not self.status.up or self._closing:
            raise JournalDown(self.status.error or "the journal is closed",
                              retry_after(self.status))
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_Append(events, recv, future))
        return future

    async def prune(self, before: float) -> int:
        """Delete events that arrived before `before`, a chunk at a time between commits."""
        assert self._loop is not None
        job = _Job("prune", self._loop.create_future(), before)
        self._queue.put(job)
        return await job.future  # type: ignore[misc]

    async def close(self) -> None:
        """Commit what is queued, stop the writer and release the file."""
        self._closing = True
        if self._thread is not None:
            self._queue.put(_Job("stop"))
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._release()

    def _write_loop(self) -> None:
        carry: _Append | _Job | None = None
        while True:
            if carry is not None:
                item, carry = carry, None
            else:
                try:
                    item = self._queue.get(timeout=None if self.status.up else
                                           max(0.0, self._next_probe - time.monotonic()))
                except queue.Empty:
                    self._recover()
                    continue
            if isinstance(item, _Job):
                if item.kind == "stop":
                    return
                self._prune_chunk(item)
                continue
            batch, count, carry = self._gather(item)
            try:
                self._commit(batch, count)
            except Exception as exc:  # a bug must not leave appends waiting forever
                log.exception("journal writer failed")
                self.status.up, self.status.error = False, f"writer failed: {exc!r}"
                self._next_probe = time.monotonic() + self.config.retry_s
                self._settle(batch, JournalDown(self.status.error, retry_after(self.status)))

    def _gather(self, first: _Append) -> tuple[list[_Append], int, _Job | None]:
        """A batch: wait up to batch_ms for more appends, stop at batch_events or at a job."""
        batch, count = [first], len(first.events)
        deadline = time.monotonic() + self.config.batch_ms / 1000
        while count < self.config.batch_events:
            left = deadline - time.monotonic()
            try:  # past the deadline, still take what is already queued
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                return batch, count, item
            batch.append(item)
            count += len(item.events)
        return batch, count, None

    def _commit(self, batch: list[_Append], count: int) -> None:
        assert self._con is not None
        if not self.status.up:  # queued before the failure was seen: do not wait on it again
            self.status.failed += count
            self._settle(batch, JournalDown(self.status.error or "", retry_after(self.status)))
            return
        rows = [(a.recv, e.ts, encode(e)) for a in batch for e in a.events]
        started = time.perf_counter()
        try:
            self._con.execute("BEGIN IMMEDIATE")
            self._con.executemany(_INSERT, rows)
            self._con.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._down(exc)
            self.status.failed += count
            self._settle(batch, JournalDown(self.status.error or "", retry_after(self.status)))
            return
        self.status.observe_batch(count, time.perf_counter() - started)
        self._refresh_size()
        self._settle(batch, None)

    def _settle(self, batch: list[_Append], error: JournalDown | None) -> None:
        """Resolve the batch's futures on the loop, in append order."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self._loop.call_soon_threadsafe(_resolve, batch, error)

    def _changed(self) -> None:
        """Tell the loop the status changed, before any future of the failed batch settles."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.on_change)

    def _prune_chunk(self, job: _Job) -> None:
        assert self._con is not None and self._loop is not None and job.future is not None
        try:
            self._con.execute("BEGIN IMMEDIATE")
            removed = self._con.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE recv < ? "
                "ORDER BY recv LIMIT ?)", (job.before, PRUNE_CHUNK)).rowcount
            self._con.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            log.warning("journal: pruning stopped: %s", cause(exc, self.dir))
            self._loop.call_soon_threadsafe(_finish, job.future, job.removed)
            return
        job.removed += removed
        if removed == PRUNE_CHUNK:
            self._queue.put(job)  # more to delete: appends queued meanwhile go first
        else:
            self._refresh_size(force=True)
            self._loop.call_soon_threadsafe(_finish, job.future, job.removed)

    def _down(self, exc: sqlite3.Error) -> None:
        error = f"{self.path}: {cause(exc, self.dir)}"
        if self.status.up:
            log.error("journal down: %s; ingest answers 503 until a write succeeds (tried "
                      "again every %gs)", error, self.config.retry_s)
        self.status.up, self.status.error = False, error
        self._changed()
        self._next_probe = time.monotonic() + self.config.retry_s

    def _recover(self) -> None:
        assert self._con is not None
        try:
            self._probe(self._con)
        except sqlite3.Error as exc:
            self.status.error = f"{self.path}: {cause(exc, self.dir)}"
            self._next_probe = time.monotonic() + self.config.retry_s
            return
        log.warning("journal recovered: %s is writable again", self.path)
        self.status.up, self.status.error = True, None
        self._changed()
        self._refresh_size(force=True)

    def _rollback(self) -> None:
        assert self._con is not None
        if self._con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._con.execute("ROLLBACK")

    def _refresh_size(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._sized >= SIZE_EVERY_S:
            self._sized = now
            self.status.bytes = self._disk_bytes()


def _resolve(batch: list[_Append], error: JournalDown | None) -> None:
    for item in batch:
        if not item.future.done():
            if error is None:
                item.future.set_result(None)
            else:
                item.future.set_exception(error)


def _finish(future: asyncio.Future[Any], value: int) -> None:
    if not future.done():
        future.set_result(value)
