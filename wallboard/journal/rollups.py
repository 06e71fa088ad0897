"""The SQLite journal's daily rollups, beside the intervals (docs/reports.md#sizing).

`rollups` holds one row per (time zone, local day, entity); `rollup_days` marks the days whose
rollups equal the sum of their stored intervals. Triggers on `intervals` drop the mark of a
day whenever one of its intervals is written or deleted, by any writer (an older version, a
hand edit): a day whose mark is gone is read from its intervals until it is rolled up again.
A write through the journal rolls up the days it touched in the same transaction.
"""

from __future__ import annotations

import sqlite3

from wallboard.fold.rollup import MAX_DAY_S, days_of, roll
from wallboard.journal.interface import RollupRow


def _unmark(row: str) -> str:
    """SQL dropping the mark of the local day holding the interval `row` (NEW or OLD)."""
    return (f"DELETE FROM rollup_days WHERE day > {row}.start - {MAX_DAY_S} "
            f"AND day <= {row}.start AND until > {row}.start;")


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rollups (
    zone TEXT NOT NULL,      -- site.timezone when rolled up: a changed zone rolls up anew
    day INTEGER NOT NULL,    -- the local day's start, epoch seconds
    level TEXT NOT NULL,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    first INTEGER NOT NULL,  -- its first interval's start: rows are read in the intervals' order
    body BLOB NOT NULL,      -- counters and sketches, as an interval's body
    slots BLOB NOT NULL,     -- per interval: start (t), offered (o), handled (h), handle (s)
    PRIMARY KEY (zone, day, level, name, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_days (
    day INTEGER NOT NULL,
    zone TEXT NOT NULL,
    until INTEGER NOT NULL,  -- the local day's end
    PRIMARY KEY (day, zone)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS rollup_days_ins AFTER INSERT ON intervals BEGIN
    {_unmark("NEW")}
END;
CREATE TRIGGER IF NOT EXISTS rollup_days_upd AFTER UPDATE ON intervals BEGIN
    {_unmark("NEW")}
    {_unmark("OLD")}
END;
CREATE TRIGGER IF NOT EXISTS rollup_days_del AFTER DELETE ON intervals BEGIN
    {_unmark("OLD")}
END;
"""


def create(con: sqlite3.Connection) -> None:
    """Create the tables and triggers if they are missing (after the intervals' table)."""
    con.executescript(SCHEMA)


def prune(con: sqlite3.Connection, before: int) -> None:
    """Drop the rollups of days starting before `before` (whole or partly pruned)."""
    con.execute("DELETE FROM rollups WHERE day < ?", (before,))
    con.execute("DELETE FROM rollup_days WHERE day < ?", (before,))


def roll_day(con: sqlite3.Connection, zone: str, day: int, until: int) -> int:
    """Roll up one local day from its stored intervals (inside the caller's transaction);
    the number of rows that did not decode.

    A day holding such a row is left unrolled: it is read from its intervals, where every
    read counts the row (wallboard_history_unreadable_total) instead of hiding it for good.
    """
    rows = con.execute("SELECT start, level, name, channel, body FROM intervals "
                       "WHERE start >= ? AND start < ? ORDER BY start, level, name, channel",
                       (day, until))
    rolled, broken = roll((s, lv, n, ch, bytes(b)) for s, lv, n, ch, b in rows)
    con.execute("DELETE FROM rollups WHERE zone = ? AND day = ?", (zone, day))
    if broken:
        con.execute("DELETE FROM rollup_days WHERE day = ? AND zone = ?", (day, zone))
        return broken
    con.executemany("INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(zone, day, *r) for r in rolled])
    con.execute("INSERT OR REPLACE INTO rollup_days VALUES (?, ?, ?)", (day, zone, until))
    return broken


def roll_touched(con: sqlite3.Connection, zone: str, starts: list[int],
                 prune_before: int | None) -> None:
    """Roll up the days holding these interval starts (inside the caller's transaction)."""
    for day, until in sorted(days_of(starts, zone).items()):
        if prune_before is None or day >= prune_before:
            roll_day(con, zone, day, until)


def _transaction(con: sqlite3.Connection, *statements: tuple[str, tuple[object, ...]]) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        for sql, args in statements:
            con.execute(sql, args)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def drop_other_zones(con: sqlite3.Connection, zone: str) -> None:
    """Drop the rollups of any other time zone (site.timezone changed)."""
    _transaction(con, ("DELETE FROM rollups WHERE zone != ?", (zone,)),
                 ("DELETE FROM rollup_days WHERE zone != ?", (zone,)))


def catch_up_step(con: sqlite3.Connection, zone: str, since: int, at: int
                  ) -> tuple[int, int] | None:
    """Roll up the first day holding intervals from `at` on, unless it is marked for `zone`
    (or starts before `since`), in a transaction of its own; where to go on and whether it
    rolled it up (1 or 0), or None when no day is left.

    One day a step, so that a catch-up of a year (an upgrade, a changed zone) leaves the
    writer free for appends between days.
    """
    nxt = con.execute("SELECT start FROM intervals WHERE start >= ? ORDER BY start LIMIT 1",
                      (at,)).fetchone()
    if nxt is None:
        return None
    (day, until), = days_of([int(nxt[0])], zone).items()
    marked = con.execute("SELECT 1 FROM rollup_days WHERE day = ? AND zone = ?",
                         (day, zone)).fetchone()
    if marked is None and day >= since:
        con.execute("BEGIN IMMEDIATE")
        try:
            roll_day(con, zone, day, until)
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return until, 1
    return until, 0


def load(con: sqlite3.Connection, zone: str, since: int, until: int,
         queues: frozenset[str] = frozenset(), bodies: bool = True
         ) -> tuple[list[int], list[RollupRow]]:
    """The marked days starting in [since, until) and their rollups, in the intervals' order
    (day, first interval, entity); none in an older file. With `bodies` their bodies, else
    their slots (the other column empty)."""
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'rollup_days'").fetchone() is None:
        return [], []
    days = [d for (d,) in con.execute(
        "SELECT day FROM rollup_days WHERE zone = ? AND day >= ? AND day < ? ORDER BY day",
        (zone, since, until))]
    if not days:
        return [], []
    names = sorted(queues)
    where = (f" AND level = 'queue' AND name IN ({', '.join('?' * len(names))})"
             if names else "" if bodies else " AND level IN ('queue', 'team')")
    columns = "body, X''" if bodies else "X'', slots"  # what the caller decodes
    marked = set(days)
    rows: list[RollupRow] = []
    for day, level, name, channel, first, b, slots in con.execute(
            f"SELECT day, level, name, channel, first, {columns} FROM rollups "
            f"WHERE zone = ? AND day >= ? AND day < ?{where} "
            "ORDER BY day, first, level, name, channel", (zone, since, until, *names)):
        if type(first) is not int or type(level) is not str or type(name) is not str or \
                type(channel) is not str:
            marked.discard(day)  # a hand edit: the day is read from its intervals
            continue
        rows.append((day, level, name, channel, first, _blob(b), _blob(slots)))
    return [d for d in days if d in marked], [r for r in rows if r[0] in marked]


def _blob(value: object) -> bytes:
    """A column as bytes whatever its stored type (a hand edit may store text or a number):
    what does not decode is then the reader's to count."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()
