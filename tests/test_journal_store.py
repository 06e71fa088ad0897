"""The SQLite journal on its own: round trips, order, batching, pruning, faults (real files)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from wallboard.config.settings import JournalConfig
from wallboard.journal import sqlite_backend as journal_sqlite
from wallboard.journal import sqlite_writer as journal_writer
from wallboard.journal.interface import FIELDS, JournalDown, JournalError, encode
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.model.events import Event, parse_event

T0 = 1_795_000_000.0
RAW_EVENTS = [
    {"type": "contact.queued", "id": "q1", "ts": T0, "queue": "sales", "channel": "voice",
     "contact_id": "c1", "entered_ts": T0 - 30, "priority": 2},
    {"type": "contact.answered", "id": "a1", "ts": T0 + 12.5, "queue": "sales",
     "contact_id": "c1", "agent": "alice", "wait_s": 12.5},
    {"type": "contact.ended", "ts": T0 + 200, "queue": "sales", "contact_id": "c1",
     "agent": "alice", "talk_s": 150.25, "hold_s": 10, "wrap_s": 27.125},
    {"type": "agent.state", "id": "s1", "ts": T0 + 1, "agent": "bob", "team": "blue",
     "state": "away", "reason": "lunch", "queues": ["sales", "support"]},
    {"type": "survey.response", "id": "v1", "ts": T0 + 300, "queue": "sales", "kind": "nps",
     "score": 9},
    {"type": "queue.snapshot", "id": "p1", "ts": T0 + 5, "queue": "support", "waiting": 3,
     "oldest_wait_s": 42.5, "agents": {"available": 2, "busy": 5}},
    {"type": "ticket.created", "id": "t1", "ts": T0 + 7, "queue": "billing", "channel": "email",
     "contact_id": "T-1", "due_ts": T0 + 86400},
]


def events(source: str = "hook") -> list[Event]:
    """One event of most types, validated as the webhook would."""
    return [parse_event(raw, source) for raw in RAW_EVENTS]


def config(path: Path, **extra: object) -> JournalConfig:
    return JournalConfig(data_dir=str(path), **extra)  # type: ignore[arg-type]


@pytest.fixture
def fast_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lock waits of 0.2 s instead of 2 s, so lock tests stay short."""
    monkeypatch.setattr(journal_sqlite, "BUSY_TIMEOUT_MS", 200)


async def test_events_come_back_identical_in_append_order_with_arrival_times(tmp_path) -> None:
    journal = SqliteJournal(config(tmp_path))
    journal.open()
    journal.start()
    first, second = events()[:4], events()[4:]
    await journal.append(first, T0 + 1000)
    await journal.append(second, T0 + 2000)
    await journal.close()

    reader = SqliteJournal(config(tmp_path))
    reader.open(writable=False)
    stored = [item for batch in reader.read(0.0) for item in batch]
    assert [e for _, e in stored] == first + second
    assert [r for r, _ in stored] == [T0 + 1000] * 4 + [T0 + 2000] * 3
    # Only what arrived at or after the moment, still in append order.
    assert [e for batch in reader.read(T0 + 1500) for _, e in batch] == second
    # Event time, not arrival time, selects here: q1 (T0), s1 (T0 + 1) and v1 fall outside.
    assert [e.id for batch in reader.scan(T0 + 5, T0 + 200) for e in batch] == \
        ["a1", None, "p1", "t1"]
    await reader.close()


def test_stored_form_is_a_field_array_without_trailing_nulls() -> None:
    event = events()[1]
    array = orjson.loads(encode(event))
    assert array[:4] == ["contact.answered", T0 + 12.5, "a1", "hook"]
    assert array[-1] is not None and len(array) == FIELDS.index("wait_s") + 1
    assert Event(*array) == event


async def test_a_journal_written_with_another_field_order_is_read_by_name(tmp_path) -> None:
    db = tmp_path / DB_NAME
    journal = SqliteJournal(config(tmp_path))
    journal.open()
    await journal.close()
    # An older layout: the same fields, shuffled, with one the reader lacks only at the end.
    layout = ["ts", "type", "queue", "contact_id", "wait_s", "id", "source"]
    body = orjson.dumps([T0, "contact.abandoned", "sales", "c9", 33.0, "x9", "pbx"]).decode()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'fields'", (orjson.dumps(layout),))
        con.execute("INSERT INTO events (recv, ts, body) VALUES (?, ?, ?)", (T0, T0, body))
    reader = SqliteJournal(config(tmp_path))
    reader.open(writable=False)
    [[(_, event)]] = list(reader.read(0.0))
    assert event == Event(type="contact.abandoned", ts=T0, id="x9", source="pbx",
                          queue="sales", contact_id="c9", wait_s=33.0)
    await reader.close()

    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'fields'",
                    (orjson.dumps([*layout, "mood"]),))
    with pytest.raises(JournalError, match=r"unknown fields \['mood'\]"):
        SqliteJournal(config(tmp_path)).open()


async def test_appends_queued_together_are_committed_in_batches_of_batch_events(
        tmp_path) -> None:
    journal = SqliteJournal(config(tmp_path, batch_ms=100, batch_events=20))
    journal.open()
    journal.start()
    one = events()[0]
    # Distinct ids: the journal stores an id once (a repeated one is a duplicate).
    futures = [journal.append([replace(one, id=f"e{i}")], T0 + i) for i in range(50)]
    await asyncio.gather(*futures)
    assert (journal.status.batches, journal.status.appended) == (3, 50)  # 20 + 20 + 10
    await journal.close()


async def test_prune_deletes_only_older_arrivals_while_appends_go_on(tmp_path) -> None:
    journal = SqliteJournal(config(tmp_path, batch_ms=0))
    journal.open()
    journal.start()
    old = journal_writer.PRUNE_CHUNK * 2 + 123  # more than one delete transaction
    one = events()[3]
    await journal.append([replace(one, id=f"old{i}") for i in range(old)], T0)
    await journal.append([replace(one, id=f"new{i}") for i in range(10)], T0 + 86_400)
    pruning = asyncio.ensure_future(journal.prune(T0 + 1))
    during = [journal.append([replace(one, id=f"during{i}")], T0 + 86_401 + i)
              for i in range(20)]
    await asyncio.gather(*during)
    assert await pruning == old
    await journal.close()
    reader = SqliteJournal(config(tmp_path))
    reader.open(writable=False)
    assert reader.stats().events == 30
    assert min(r for batch in reader.read(0.0) for r, _ in batch) == T0 + 86_400
    await reader.close()


async def test_a_locked_database_takes_the_journal_down_and_a_later_write_brings_it_back(
        tmp_path, fast_busy) -> None:
    journal = SqliteJournal(config(tmp_path, retry_s=0.2, batch_ms=0))
    journal.open()
    journal.start()
    await journal.append(events()[:1], T0)
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writing: our writer gets SQLITE_BUSY
    with pytest.raises(JournalDown, match="SQLITE_BUSY") as failed:
        await journal.append(events()[1:2], T0 + 1)
    assert failed.value.retry_after_s == 1
    assert not journal.status.up and "journal.sqlite3" in (journal.status.error or "")
    with pytest.raises(JournalDown):  # refused at once while down: no second lock wait
        journal.append(events()[2:3], T0 + 2)
    other.execute("ROLLBACK")
    other.close()
    for _ in range(100):
        if journal.status.up:
            break
        await asyncio.sleep(0.05)
    assert journal.status.up and journal.status.error is None
    await journal.append(events()[2:3], T0 + 2)
    assert (journal.status.appended, journal.status.failed) == (2, 1)
    await journal.close()


def test_open_names_the_path_and_cause_of_a_corrupt_file(tmp_path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(JournalError) as failed:
        SqliteJournal(config(tmp_path)).open()
    message = str(failed.value)
    assert str(tmp_path / DB_NAME) in message
    assert "SQLITE_NOTADB" in message and "corrupt or not a wallboard journal" in message


def test_open_names_the_path_when_the_data_dir_is_a_file(tmp_path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(JournalError) as failed:
        SqliteJournal(config(blocker)).open()
    assert str(failed.value) == f"{blocker}: not a directory (see journal.data_dir)"


async def test_a_second_journal_on_the_same_directory_is_refused(tmp_path) -> None:
    first = SqliteJournal(config(tmp_path))
    first.open()
    with pytest.raises(JournalError, match="in use by another wallboard process") as failed:
        SqliteJournal(config(tmp_path)).open()
    assert str(tmp_path) in str(failed.value)
    await first.close()
    second = SqliteJournal(config(tmp_path))
    second.open()  # the lock goes with the first one
    await second.close()


def test_open_waits_out_then_reports_a_database_another_process_holds(tmp_path,
                                                                      fast_busy) -> None:
    journal = SqliteJournal(config(tmp_path))
    journal.open()
    asyncio.run(journal.close())
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalError, match="another process holds a lock") as failed:
            SqliteJournal(config(tmp_path)).open()
        assert str(tmp_path / DB_NAME) in str(failed.value)
    finally:
        other.close()


async def test_a_row_that_does_not_decode_is_reported_with_the_path(tmp_path, caplog) -> None:
    journal = SqliteJournal(config(tmp_path))
    journal.open()
    await journal.close()
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("INSERT INTO events (recv, ts, body) VALUES (1, 1, '[\"contact.queued\"')")
    reader = SqliteJournal(config(tmp_path))
    reader.open(writable=False)
    # Skipped (and quarantined when the journal is writable), not fatal: a start goes on.
    assert list(reader.read(0.0)) == [[]]
    assert reader.status.skipped == 1
    assert f"{tmp_path / DB_NAME}: 1 stored events do not decode" in caplog.text
    await reader.close()
