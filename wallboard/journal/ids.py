"""The SQLite journal's id table: every (source, id) stored within the retention."""

from __future__ import annotations

import sqlite3

from wallboard.journal.sqlite_writer import rollback

# Every (source, id) stored within the retention: exact de-duplication, across restarts too.
# Its own statements (other tables are added beside it); a journal written before it existed
# gets it on its next writable open, filled from the events it holds (see `backfill`).
SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (
    source TEXT NOT NULL,  -- '' for events without a source
    id TEXT NOT NULL,
    recv REAL NOT NULL,    -- first arrival: pruned with the events' retention
    PRIMARY KEY (source, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ids_recv ON ids (recv);
"""


def backfill(con: sqlite3.Connection, stored_fields: list[str]) -> None:
    """Create the id table; fill it once from the stored events (journals made before it)."""
    con.executescript(SCHEMA)
    if con.execute("SELECT 1 FROM meta WHERE key = 'ids'").fetchone() is not None:
        return
    source_at = stored_fields.index("source")
    id_at = stored_fields.index("id")
    con.execute("BEGIN IMMEDIATE")
    try:
        # min(recv): a duplicate an older version stored twice keeps its first arrival.
        # Every json_extract behind json_valid (a CASE, evaluated in order wherever the
        # planner puts it): it raises on a damaged body, and one torn row must not stop
        # the start; the restore quarantines it.
        def field(at: int) -> str:
            return f"CASE WHEN json_valid(body) THEN json_extract(body, '$[{at}]') END"

        con.execute(
            f"INSERT OR IGNORE INTO ids (source, id, recv) "
            f"SELECT coalesce({field(source_at)}, ''), {field(id_at)}, min(recv) "
            f"FROM events WHERE {field(id_at)} IS NOT NULL GROUP BY 1, 2")
        con.execute("INSERT INTO meta (key, value) VALUES ('ids', '1')")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
