"""The SQLite journal's checkpoints: the fold's state at an event rowid, the newest few kept.

The blob is opaque here (`wallboard.ingest.checkpoint` writes and checks it). A journal
written before the table existed gets it on its next writable open; a read-only open of such
a journal has no checkpoints.
"""

from __future__ import annotations

import sqlite3
import time

from wallboard.journal.interface import CHECKPOINTS_KEPT, Checkpoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,  -- the last event (its `events.seq`) the state includes
    at REAL NOT NULL,         -- when it was written
    data BLOB NOT NULL
)
"""


def create(con: sqlite3.Connection) -> None:
    """Create the table if it is missing."""
    con.execute(SCHEMA)


def load(con: sqlite3.Connection) -> list[Checkpoint]:
    """Stored checkpoints, newest first (an old or read-only journal may have none)."""
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'checkpoints'").fetchone() is None:
        return []
    return [(str(seq), bytes(data)) for seq, data in
            con.execute("SELECT seq, data FROM checkpoints ORDER BY seq DESC")]


def store(con: sqlite3.Connection, seq: int, blob: bytes) -> None:
    """Write one in its own transaction; only the newest CHECKPOINTS_KEPT stay."""
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute("INSERT OR REPLACE INTO checkpoints (seq, at, data) VALUES (?, ?, ?)",
                    (seq, time.time(), blob))
        con.execute("DELETE FROM checkpoints WHERE seq NOT IN "
                    "(SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT ?)",
                    (CHECKPOINTS_KEPT,))
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def truncate_wal(con: sqlite3.Connection, wait_ms: int = 200) -> bool:
    """Copy the WAL into the database and empty it, if readers let go within `wait_ms`.

    SQLite's automatic checkpoints are passive: under a steady stream of commits with readers
    coming and going, the WAL is seldom reset and its file only grows. Run with the fold's
    checkpoint (once a minute), this keeps the -wal file near one minute of writes; False
    when a reader held it (the next one tries again).
    """
    restore = int(con.execute("PRAGMA busy_timeout").fetchone()[0])
    con.execute(f"PRAGMA busy_timeout = {wait_ms}")
    try:
        busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    except sqlite3.Error:
        return False
    finally:
        con.execute(f"PRAGMA busy_timeout = {restore}")
    return not busy
