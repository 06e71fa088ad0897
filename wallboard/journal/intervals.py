"""The SQLite journal's interval history: one row per closed 15-minute interval and entity.

Bodies are opaque here (`wallboard.fold.intervals` encodes them). The table lives beside the
events and the checkpoints in the same file, created on a writable open like them; it is kept
for `history.retention_days`, independently of the raw events' retention.
"""

from __future__ import annotations

import sqlite3

from wallboard.journal import rollups
from wallboard.journal.interface import IntervalRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS intervals (
    start INTEGER NOT NULL,  -- epoch seconds, a multiple of 900
    level TEXT NOT NULL,     -- queue or team
    name TEXT NOT NULL,
    channel TEXT NOT NULL,   -- a queue leaf's channel; '' for a team
    body BLOB NOT NULL,
    PRIMARY KEY (start, level, name, channel)
) WITHOUT ROWID
"""
_PUT = {True: "INSERT OR REPLACE INTO intervals VALUES (?, ?, ?, ?, ?)",
        False: "INSERT OR IGNORE INTO intervals VALUES (?, ?, ?, ?, ?)"}


def create(con: sqlite3.Connection) -> None:
    """Create the table, and the rollups' beside it, if they are missing."""
    con.execute(SCHEMA)
    rollups.create(con)


def store(con: sqlite3.Connection, rows: list[IntervalRow], replace: bool,
          prune_before: int | None, zone: str | None = None) -> None:
    """Write rows in one transaction (replace, or only where missing); drop expired ones;
    with `zone`, roll up the local days the rows touch in the same transaction."""
    con.execute("BEGIN IMMEDIATE")
    try:
        con.executemany(_PUT[replace], rows)
        if prune_before is not None:
            con.execute("DELETE FROM intervals WHERE start < ?", (prune_before,))
            rollups.prune(con, prune_before)
        if zone is not None:
            rollups.roll_touched(con, zone, [row[0] for row in rows], prune_before)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def load(con: sqlite3.Connection, since: int, until: int,
         queues: frozenset[str] = frozenset()) -> list[IntervalRow]:
    """Rows whose interval starts in [since, until), oldest first; none in an older file.

    With `queues`, only those queues' rows: SQLite skips the others' bodies, which a
    one-queue report would otherwise copy out by the million (a year of 50 queues).
    """
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'intervals'").fetchone() is None:
        return []
    names = sorted(queues)
    where = (f" AND level = 'queue' AND name IN ({', '.join('?' * len(names))})"
             if names else "")
    return [(start, level, name, channel, bytes(body)) for start, level, name, channel, body in
            con.execute("SELECT start, level, name, channel, body FROM intervals "
                        f"WHERE start >= ? AND start < ?{where} ORDER BY start",
                        (since, until, *names))]
