"""The SQLite journal's quarantine: stored events whose fold failed, kept but marked.

A row per quarantined event (its `seq`), with the stage that failed (fold, restore), the
reason and when. The table is created with IF NOT EXISTS, so a journal written before it
existed opens as it is; a read-only open of such a journal sees an empty quarantine. The
event is found by its arrival time (indexed) and its stored body, which is what the pipeline
knows when a fold fails.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator

import orjson

from wallboard.journal.interface import QUARANTINE_REASONS_LISTED, Quarantine, quarantined_line
from wallboard.model.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,  -- the event's row in `events`
    stage TEXT NOT NULL,      -- fold, restore
    reason TEXT NOT NULL,
    at REAL NOT NULL          -- when it was quarantined
)
"""
_MARK = ("INSERT OR IGNORE INTO quarantine (seq, stage, reason, at) "
         "SELECT seq, ?, ?, ? FROM events WHERE recv = ? AND body = ?")
# Rows whose event was pruned go with it (run after a prune).
PRUNE = "DELETE FROM quarantine WHERE seq NOT IN (SELECT seq FROM events)"
Row = tuple[str, str, float, float, str]

log = logging.getLogger(__name__)
_missed_logged = False  # a miss is a bug: logged once per process, not per mark


def create(con: sqlite3.Connection) -> None:
    """Create the table if this journal predates it."""
    con.execute(SCHEMA)


def exists(con: sqlite3.Connection) -> bool:
    """Whether the journal has a quarantine table (a read-only open of an older one may not)."""
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                       "'quarantine'").fetchone() is not None


def rows(items: list[Quarantine], body: Callable[[Event], str]) -> list[Row]:
    """The statement's parameters for events to quarantine, in the journal's stored form."""
    now = time.time()
    return [(stage, reason, now, recv, body(event)) for recv, event, stage, reason in items]


def mark(con: sqlite3.Connection, marks: list[Row]) -> None:
    """Quarantine the events in one transaction (on the thread that owns the connection)."""
    global _missed_logged
    missed: list[Row] = []
    con.execute("BEGIN IMMEDIATE")
    try:
        for row in marks:  # one by one: a mark is rare, and each must be seen to match
            if con.execute(_MARK, row).rowcount == 0 and not _is_marked(con, row):
                missed.append(row)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    if missed and not _missed_logged:
        # A miss leaves the event unmarked: a restart would fold it (and fail) again.
        _missed_logged = True
        log.error("journal: %s quarantine marks found no stored event (first: %s at recv "
                  "%s); logged once", len(missed), missed[0][1], missed[0][3])


def _is_marked(con: sqlite3.Connection, row: Row) -> bool:
    """Whether the row's event is quarantined already (a mark made twice is no miss)."""
    return con.execute("SELECT 1 FROM quarantine JOIN events USING (seq) WHERE recv = ? AND "
                       "body = ?", row[3:]).fetchone() is not None


def count(con: sqlite3.Connection) -> int:
    """How many events are quarantined."""
    return con.execute("SELECT count(*) FROM quarantine").fetchone()[0] if exists(con) else 0


def reasons(con: sqlite3.Connection) -> dict[str, int]:
    """The most frequent "stage: reason" and their counts."""
    if not exists(con):
        return {}
    return {f"{stage}: {reason}": n for stage, reason, n in con.execute(
        "SELECT stage, reason, count(*) FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 "
        "LIMIT ?", (QUARANTINE_REASONS_LISTED,))}


def entries(con: sqlite3.Connection, decode: Callable[[str], Event]) -> Iterator[bytes]:
    """NDJSON lines of the quarantined events, in append order."""
    if not exists(con):
        return
    cursor = con.execute("SELECT q.seq, e.recv, q.stage, q.reason, q.at, e.body FROM "
                         "quarantine q JOIN events e ON e.seq = q.seq ORDER BY q.seq")
    for seq, recv, stage, reason, at, body in cursor:
        try:
            event = decode(body)
        except (ValueError, TypeError):  # quarantined because it does not decode: the raw text
            yield orjson.dumps({"ref": str(seq), "recv": recv, "stage": stage,
                                "reason": reason, "at": at, "event": None, "body": body}) + b"\n"
            continue
        yield quarantined_line(str(seq), recv, stage, reason, at, event)
