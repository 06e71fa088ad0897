"""The SQLite journal's writer thread: group commits, pruning between them, probes while down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from wallboard.config.settings import JournalConfig
from wallboard.journal import checkpoints, rollups
from wallboard.journal import intervals as journal_intervals
from wallboard.journal import quarantine as journal_quarantine
from wallboard.journal.interface import (
    Appended,
    IntervalRow,
    JournalDown,
    JournalStatus,
    encode,
    retry_after,
)
from wallboard.model.events import Event

log = logging.getLogger(__name__)

PRUNE_CHUNK = 5_000  # rows per delete transaction: appends queued meanwhile go in between
PROBE_BYTES = 64 * 1024  # a write this big must succeed before the journal is called up
SIZE_EVERY_S = 1.0
_INSERT = "INSERT INTO events (recv, ts, body) VALUES (?, ?, ?)"
# Exact de-duplication over the retention: one row per (source, id) ever stored (journal_ids).
_INSERT_ID = "INSERT OR IGNORE INTO ids (source, id, recv) VALUES (?, ?, ?)"
# Never the newest row: without it SQLite would hand its rowid out again, and a checkpoint's
# position (a rowid) must keep meaning "every event up to here".
_PRUNE = ("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE recv < ? AND "
          "seq < (SELECT max(seq) FROM events) ORDER BY recv LIMIT ?)")
_PRUNE_IDS = ("DELETE FROM ids WHERE (source, id) IN "
              "(SELECT source, id FROM ids WHERE recv < ? ORDER BY recv LIMIT ?)")


def rollback(con: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any, ignoring a second failure."""
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def probe(con: sqlite3.Connection) -> None:
    """Write and commit PROBE_BYTES, then free them: the disk, quota and locks allow it."""
    for sql, args in (("INSERT INTO probe (data) VALUES (zeroblob(?))", (PROBE_BYTES,)),
                      ("DELETE FROM probe", ())):
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(sql, args)
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise


class _Append:
    __slots__ = ("duplicates", "events", "future", "position", "recv")

    def __init__(self, events: list[Event], recv: float,
                 future: asyncio.Future[list[int]]) -> None:
        self.events, self.recv, self.future = events, recv, future
        self.duplicates: list[int] = []  # positions of events whose id the journal held
        self.position = 0  # the rowid of its last stored event (or of the one before)


class _Job:
    __slots__ = ("before", "blob", "future", "kind", "removed", "rows", "zone")

    def __init__(self, kind: str, future: asyncio.Future[Any] | None = None,
                 before: float = 0.0, rows: list[Any] | None = None,
                 blob: bytes = b"", zone: str | None = None) -> None:
        self.kind, self.future, self.before, self.removed = kind, future, before, 0
        self.rows, self.blob, self.zone = rows, blob, zone


class Writer:
    """Every write to the database happens on this thread; futures settle on the loop."""

    def __init__(self, con: sqlite3.Connection, config: JournalConfig, status: JournalStatus,
                 describe: Callable[[sqlite3.Error], str], disk_bytes: Callable[[], int],
                 on_change: Callable[[], None]) -> None:
        self.con, self.config, self.status = con, config, status
        self.describe, self.disk_bytes, self.on_change = describe, disk_bytes, on_change
        self.loop = asyncio.get_running_loop()
        self.queue: queue.SimpleQueue[_Append | _Job] = queue.SimpleQueue()
        self.next_probe = 0.0
        self.sized = 0.0
        self.position = 0  # the newest event rowid: appends are numbered from here
        self.last_commit = 0.0  # monotonic end of the last commit: see _gather
        self.thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self.thread.start()

    def append(self, events: list[Event], recv: float) -> asyncio.Future[list[int]]:
        """Queue events for the next commit; the future gives the positions of duplicates."""
        future: asyncio.Future[list[int]] = self.loop.create_future()
        self.queue.put(_Append(events, recv, future))
        return future

    def prune(self, before: float) -> asyncio.Future[int]:
        """Queue a prune; the future gives the number of events deleted."""
        future: asyncio.Future[int] = self.loop.create_future()
        self.queue.put(_Job("prune", future, before))
        return future

    def quarantine(self, rows: list[journal_quarantine.Row]) -> None:
        """Queue marks for events whose fold failed (they were committed before: FIFO)."""
        self.queue.put(_Job("quarantine", rows=rows))

    def checkpoint(self, seq: int, blob: bytes) -> asyncio.Future[None]:
        """Queue a checkpoint covering events up to rowid `seq`; the future says it is written."""
        future: asyncio.Future[None] = self.loop.create_future()
        self.queue.put(_Job("checkpoint", future, before=seq, blob=blob))
        return future

    async def stop(self) -> None:
        """Commit what is queued, then end the thread."""
        self.queue.put(_Job("stop"))
        await asyncio.to_thread(self.thread.join)

    def _run(self) -> None:
        carry: _Append | _Job | None = None
        while True:
            if carry is not None:
                item, carry = carry, None
            else:
                try:
                    item = self.queue.get(timeout=None if self.status.up else
                                          max(0.0, self.next_probe - time.monotonic()))
                except queue.Empty:
                    self._recover()
                    continue
            if isinstance(item, _Job):
                if item.kind == "stop":
                    return
                if item.kind == "quarantine":
                    self._quarantine(item)
                    continue
                if item.kind == "checkpoint":
                    self._checkpoint(item)
                    continue
                if item.kind in ("intervals", "intervals_missing"):
                    self._intervals(item)
                    continue
                if item.kind == "roll_up":
                    self._roll_up(item)
                    continue
                self._prune_chunk(item)
                continue
            batch, count, carry = self._gather(item)
            try:
                self._commit(batch, count)
                self.last_commit = time.monotonic()
            except Exception as exc:  # a bug must not leave appends waiting forever
                log.exception("journal writer failed")
                self._set_down(f"writer failed: {exc!r}")
                self._settle(batch, JournalDown(self.status.error or "",
                                                retry_after(self.status)))

    def _gather(self, first: _Append) -> tuple[list[_Append], int, _Job | None]:
        """A batch: wait up to batch_ms for more appends, stop at batch_events or at a job."""
        batch, count = [first], len(first.events)
        now, wait = time.monotonic(), self.config.batch_ms / 1000
        # Leading edge: after a quiet spell an append is committed at once (an isolated
        # event reaches the board a batch_ms sooner); appends coming faster are gathered.
        deadline = now + wait if now - self.last_commit < wait else now
        while count < self.config.batch_events:
            left = deadline - time.monotonic()
            try:  # past the deadline, still take what is already queued
                item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                return batch, count, item
            batch.append(item)
            count += len(item.events)
        return batch, count, None

    def _commit(self, batch: list[_Append], count: int) -> None:
        if self.status.up:
            started = time.perf_counter()
            try:
                self.con.execute("BEGIN IMMEDIATE")
                # The ids first, in the same transaction: an id the journal holds is not stored.
                rows: list[tuple[float, float, str]]
                if self._insert_ids(batch):
                    rows = []
                    for a in batch:
                        known = set(a.duplicates)
                        rows.extend((a.recv, e.ts, encode(e)) for i, e in enumerate(a.events)
                                    if i not in known)
                else:
                    rows = [(a.recv, e.ts, encode(e)) for a in batch for e in a.events]
                self.con.executemany(_INSERT, rows)
                # One writer, one transaction: the rows took consecutive rowids.
                base = (self.con.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows)
                        if rows else self.position)
                self.con.execute("COMMIT")
            except sqlite3.Error as exc:
                rollback(self.con)
                self._set_down(self.describe(exc))
            else:
                self.status.observe_batch(len(rows), time.perf_counter() - started)
                self._number(batch, base)
                self._refresh_size()
                self._settle(batch, None)
                return
        # Down, or queued before the failure was seen: refused without waiting on it again.
        self.status.failed += count
        self._settle(batch, JournalDown(self.status.error or "", retry_after(self.status)))

    def _number(self, batch: list[_Append], before: int) -> None:
        """Each append's position: the rowid of its last stored event."""
        for item in batch:
            before += len(item.events) - len(item.duplicates)
            item.position = before
        self.position = before

    def intervals(self, rows: list[IntervalRow], replace: bool,
                  prune_before: int | None, zone: str | None = None) -> asyncio.Future[None]:
        """Queue interval history rows; the future says they are written."""
        future: asyncio.Future[None] = self.loop.create_future()
        self.queue.put(_Job("intervals" if replace else "intervals_missing", future,
                            before=-1 if prune_before is None else prune_before, rows=rows,
                            zone=zone))
        return future

    def roll_up(self, zone: str, since: int) -> asyncio.Future[int]:
        """Queue a catch-up of the rollups (one day a turn); resolves to the days rolled up."""
        future: asyncio.Future[int] = self.loop.create_future()
        self.queue.put(_Job("roll_up", future, before=-1, rows=[since, since], zone=zone))
        return future

    def _roll_up(self, job: _Job) -> None:
        assert job.future is not None and job.rows is not None and job.zone is not None
        since, at = job.rows
        try:
            if job.before < 0:  # the first turn
                rollups.drop_other_zones(self.con, job.zone)
                job.before = 0
            marked = rollups.catch_up_step(self.con, job.zone, since, at)
        except sqlite3.Error as exc:
            error = JournalDown(self.describe(exc), retry_after(self.status))
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_finish, job.future, None, error)
            return
        if marked is None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_finish, job.future, int(job.removed), None)
            return
        job.removed += marked[1]
        job.rows = [since, marked[0]]
        self.queue.put(job)  # behind the appends queued meanwhile

    def _intervals(self, job: _Job) -> None:
        assert job.future is not None and job.rows is not None
        error: BaseException | None = None
        try:
            journal_intervals.store(self.con, job.rows, job.kind == "intervals",
                                    None if job.before < 0 else int(job.before), job.zone)
        except sqlite3.Error as exc:  # kept by the caller for the next try
            error = JournalDown(self.describe(exc), retry_after(self.status))
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_finish, job.future, None, error)

    def _checkpoint(self, job: _Job) -> None:
        assert job.future is not None
        error: BaseException | None = None
        try:
            checkpoints.store(self.con, int(job.before), job.blob)
            checkpoints.truncate_wal(self.con)  # the -wal file stays small
        except sqlite3.Error as exc:  # not fatal: the next one may succeed, a start folds more
            error = JournalDown(self.describe(exc), retry_after(self.status))
        self._refresh_size()
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_finish, job.future, None, error)

    def _insert_ids(self, batch: list[_Append]) -> bool:
        """Record the batch's event ids; True (and `duplicates` set) when some were known."""
        rows = [(e.source or "", e.id, a.recv) for a in batch for e in a.events
                if e.id is not None]
        if not rows:
            return False
        con = self.con
        con.execute("SAVEPOINT ids")
        # One executemany when every id is new (the usual case); its summed rowcount says so.
        if con.executemany(_INSERT_ID, rows).rowcount == len(rows):
            con.execute("RELEASE ids")
            return False
        # Some were known: do it again a row at a time to learn which (rare, so not tuned).
        con.execute("ROLLBACK TO ids")
        for item in batch:
            item.duplicates = []
            for i, e in enumerate(item.events):
                if e.id is not None and not con.execute(
                        _INSERT_ID, (e.source or "", e.id, item.recv)).rowcount:
                    item.duplicates.append(i)
        con.execute("RELEASE ids")
        return True

    def _settle(self, batch: list[_Append], error: JournalDown | None) -> None:
        """Resolve the batch's futures on the loop, in append order."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self.loop.call_soon_threadsafe(_resolve, batch, error)

    def _quarantine(self, job: _Job) -> None:
        assert job.rows is not None
        try:
            journal_quarantine.mark(self.con, job.rows)
        except sqlite3.Error as exc:  # not fatal: the next start meets it and quarantines it
            log.warning("journal: could not quarantine %s events: %s", len(job.rows),
                        self.describe(exc))

    def _prune_chunk(self, job: _Job) -> None:
        assert job.future is not None
        try:
            self.con.execute("BEGIN IMMEDIATE")
            removed = self.con.execute(_PRUNE, (job.before, PRUNE_CHUNK)).rowcount
            # Ids go with their events' retention (they count towards the same chunk).
            removed_ids = self.con.execute(_PRUNE_IDS, (job.before, PRUNE_CHUNK)).rowcount
            self.con.execute("COMMIT")
        except sqlite3.Error as exc:
            rollback(self.con)
            log.warning("journal: pruning stopped: %s", self.describe(exc))
            removed = removed_ids = 0
        job.removed += removed
        if PRUNE_CHUNK in (removed, removed_ids):
            self.queue.put(job)  # more to delete: appends queued meanwhile go first
            return
        if job.removed:
            self._prune_quarantine()
        self._refresh_size(force=True)
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_finish, job.future, job.removed)

    def _prune_quarantine(self) -> None:
        """Quarantine marks go with their pruned events."""
        try:
            self.con.execute(journal_quarantine.PRUNE)
        except sqlite3.Error as exc:
            log.warning("journal: quarantine not pruned: %s", self.describe(exc))

    def _set_down(self, error: str) -> None:
        if self.status.up:
            log.error("journal down: %s; ingest answers 503 until a write succeeds (tried "
                      "again every %gs)", error, self.config.retry_s)
        self.status.up, self.status.error = False, error
        self.next_probe = time.monotonic() + self.config.retry_s
        self._changed()

    def _recover(self) -> None:
        try:
            probe(self.con)
        except sqlite3.Error as exc:
            self.status.error = self.describe(exc)
            self.next_probe = time.monotonic() + self.config.retry_s
            return
        log.warning("journal recovered: writable again")
        self.status.up, self.status.error = True, None
        self._refresh_size(force=True)
        self._changed()

    def _changed(self) -> None:
        """Tell the loop, before any future of a failed batch settles (the same FIFO)."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.on_change)

    def _refresh_size(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.sized >= SIZE_EVERY_S:
            self.sized = now
            self.status.bytes = self.disk_bytes()


def _resolve(batch: list[_Append], error: JournalDown | None) -> None:
    for item in batch:
        if not item.future.done():
            if error is None:
                item.future.set_result(Appended(item.duplicates, str(item.position)))
            else:
                item.future.set_exception(error)


def _finish(future: asyncio.Future[Any], value: int | None,
            error: BaseException | None = None) -> None:
    if not future.done():
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
