"""The embedded journal: SQLite in WAL mode; opening, reading and stats (writes: journal_writer)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from wallboard.config.settings import JournalConfig
from wallboard.fold.guard import reason
from wallboard.journal import checkpoints, ids, intervals, quarantine, rollups
from wallboard.journal.interface import (
    FIELDS,
    Checkpoint,
    IntervalRow,
    JournalDown,
    JournalError,
    JournalLocked,
    JournalStats,
    JournalStatus,
    Quarantine,
    RollupRow,
    Stored,
    decoder,
    encode,
    retry_after,
)
from wallboard.journal.sqlite_errors import cause
from wallboard.journal.sqlite_writer import Writer, probe
from wallboard.model.events import Event

log = logging.getLogger(__name__)

DB_NAME = "journal.sqlite3"
LOCK_NAME = "journal.lock"
FORMAT = "1"
READ_BATCH = 20_000
BUSY_TIMEOUT_MS = 2_000
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
class SqliteJournal:
    """The journal in one SQLite file; a dedicated thread does every write."""

    replicated = False

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
        self._writer: Writer | None = None
        self._position: int | None = None  # see `position`
        self.on_change: Callable[[], None] = lambda: None  # up or down: runs on the loop

    def shared(self) -> None:
        """One node's own file: nothing shared."""
        return None

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
                f"{self.path.absolute().as_uri()}?mode={'rwc' if writable else 'rw'}",
                uri=True, isolation_level=None, check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if writable:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise JournalError(f"{self.path}: cannot use write-ahead logging ({mode})")
                con.execute(f"PRAGMA synchronous = {self.config.sync.upper()}")
                con.executescript(_SCHEMA)
                quarantine.create(con)
                checkpoints.create(con)
                intervals.create(con)
            self._stored_fields = self._fields(con, writable)
            self._decode = decoder(self._stored_fields)
            if writable:
                ids.backfill(con, self._stored_fields)
                probe(con)
                self.status.bytes = self._disk_bytes()
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
            raise JournalLocked(f"{self.dir}: in use by another wallboard process (pid {holder}); "
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
        with self._reading():
            first = self._con.execute("SELECT min(seq) FROM events WHERE recv >= ?",
                                      (since,)).fetchone()[0]
        yield from self._read_from(first)

    def read_after(self, position: str) -> Iterator[list[Stored]]:
        """Events stored after `position` (a checkpoint's event rowid), in append order."""
        yield from self._read_from(int(position) + 1)

    @property
    def position(self) -> str | None:
        """The rowid of the last event read back (the newest stored, before start)."""
        return None if self._position is None else str(self._position)

    def _read_from(self, first: int | None) -> Iterator[list[Stored]]:
        assert self._con is not None
        con, decode = self._con, self._decode
        with self._reading():
            # Before start nothing else writes: what follows `first` is read up to this end.
            self._position = con.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
            if first is None:
                return
            # Quarantined events are left out: their fold failed once, and would again.
            skipped = con.execute("SELECT count(*) FROM quarantine WHERE seq >= ?", (first,)
                                  ).fetchone()[0] if quarantine.exists(con) else 0
            self.status.skipped = skipped
            cursor = con.execute(
                "SELECT recv, body FROM events WHERE seq >= ? "
                + ("AND seq NOT IN (SELECT seq FROM quarantine) " if skipped else "")
                + "ORDER BY seq", (first,))
            broken: list[quarantine.Row] = []
            while rows := cursor.fetchmany(READ_BATCH):
                try:
                    batch = [(recv, decode(body)) for recv, body in rows]
                except (ValueError, TypeError):  # rare: sort the rows that do not decode out
                    batch = self._decodable(rows, broken)
                yield batch
            if broken:
                self._quarantine_broken(broken)

    def checkpoints(self) -> list[Checkpoint]:
        """The stored checkpoints, newest first; none when the file predates them."""
        assert self._con is not None
        with self._reading():
            return checkpoints.load(self._con)

    def save_checkpoint(self, position: str, blob: bytes) -> asyncio.Future[None]:
        """Write a checkpoint on the writer thread, between commits."""
        if self._writer is None:
            raise JournalDown("the journal is not open", retry_after(self.status))
        return self._writer.checkpoint(int(position), blob)

    def save_intervals(self, rows: list[IntervalRow], *, replace: bool,
                       prune_before: int | None = None,
                       zone: str | None = None) -> asyncio.Future[None]:
        """Write closed intervals on the writer thread, between commits (rolled up with them)."""
        if self._writer is None:
            raise JournalDown("the journal is not open", retry_after(self.status))
        return self._writer.intervals(rows, replace, prune_before, zone)

    def rollups(self, zone: str, since: int, until: int, queues: frozenset[str] = frozenset(),
                *, bodies: bool = True) -> tuple[list[int], list[RollupRow]]:
        """Marked days and their rollups, on a connection of its own (any thread)."""
        with self._reading(), contextlib.closing(sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro", uri=True)) as con:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("BEGIN")  # the marks and the rows from one snapshot
            return rollups.load(con, zone, since, until, queues, bodies)

    def roll_up(self, zone: str, since: int) -> asyncio.Future[int]:
        """Catch the rollups up on the writer thread, a day at a time."""
        if self._writer is None:
            raise JournalDown("the journal is not open", retry_after(self.status))
        return self._writer.roll_up(zone, since)

    def intervals(self, since: int, until: int,
                  queues: frozenset[str] = frozenset()) -> list[IntervalRow]:
        """Stored intervals in [since, until), on a connection of its own (any thread)."""
        with self._reading(), contextlib.closing(sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro", uri=True)) as con:
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            return intervals.load(con, since, until, queues)

    def _decodable(self, rows: list[tuple[float, str]], broken: list[quarantine.Row]
                   ) -> list[Stored]:
        """The rows that decode; the others are added to `broken` (to quarantine)."""
        batch: list[Stored] = []
        for recv, body in rows:
            try:
                batch.append((recv, self._decode(body)))
            except (ValueError, TypeError) as exc:
                broken.append(("restore", reason(exc), time.time(), recv, body))
        return batch

    def _quarantine_broken(self, broken: list[quarantine.Row]) -> None:
        """Rows a start could not decode: logged, marked, skipped from now on."""
        assert self._con is not None
        log.error("journal: %s: %s stored events do not decode (first: %s); quarantined "
                  "and skipped", self.path, len(broken), broken[0][1])
        self.status.skipped += len(broken)
        try:
            quarantine.mark(self._con, broken)
        except sqlite3.Error as exc:
            log.warning("journal: could not quarantine them: %s", self._describe(exc))

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
                # json_valid first: one torn body must not make the whole count fail
                f"SELECT coalesce(CASE WHEN json_valid(body) THEN "
                f"json_extract(body, '$[{source_at}]') END, ''), count(*) "
                f"FROM events GROUP BY 1 ORDER BY 2 DESC").fetchall())
            held, reasons = quarantine.count(con), quarantine.reasons(con)
        return JournalStats(self.location, events, self._disk_bytes(), oldest_ts, newest_ts,
                            oldest_recv, newest_recv, sources, held, reasons)

    # -- quarantine -------------------------------------------------------------------------

    def quarantine(self, items: list[Quarantine]) -> None:
        """Mark stored events whose fold failed; the writer does it once started. Never raises."""
        if not items or self._con is None:
            return
        # encode: the writer's own form, so the body matches the row it wrote.
        marks = quarantine.rows(items, encode)
        if self._writer is not None:
            self._writer.quarantine(marks)
            return
        try:  # before start (the start-up replay): this thread owns the connection
            quarantine.mark(self._con, marks)
        except sqlite3.Error as exc:
            log.warning("journal: could not quarantine %s events: %s", len(items),
                        self._describe(exc))

    def quarantined(self) -> Iterator[bytes]:
        """The quarantined events as NDJSON lines, in append order."""
        assert self._con is not None
        with self._reading():
            yield from quarantine.entries(self._con, self._decode)

    def _disk_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    # -- writing ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; appends resolve on the running loop."""
        assert self._con is not None
        self._writer = Writer(self._con, self.config, self.status, self._describe,
                              self._disk_bytes, lambda: self.on_change())
        self._writer.position = self._position or 0

    def append(self, events: list[Event], recv: float, *,
               fence: tuple[str, str] | None = None) -> asyncio.Future[list[int]]:
        """Queue events for the next commit; the future resolves once they are durable.

        It gives the positions in `events` of those whose (source, id) the journal already
        held within the retention (not stored again).

        `fence` is ignored: one process owns the file (journal.lock) and all its sources.
        """
        if not self.status.up or self._writer is None:
            raise JournalDown(self.status.error or "the journal is not open",
                              retry_after(self.status))
        return self._writer.append(events, recv)

    async def prune(self, before: float) -> int:
        """Delete events that arrived before `before`, a chunk at a time between commits."""
        assert self._writer is not None
        return await self._writer.prune(before)

    async def close(self) -> None:
        """Commit what is queued, stop the writer and release the file."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        self._release()

    def _describe(self, exc: sqlite3.Error) -> str:
        return f"{self.path}: {cause(exc, self.dir)}"
