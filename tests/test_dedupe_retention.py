"""An event id seen within journal.retention_days counts once: past the memory, across restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import base_config, now, require_program
from tests.serverproc import journal_config
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Ack, Pipeline
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.model.events import Event

CACHE = 10  # server.dedupe_cache_ids: the memory holds at most this many ids
OTHERS = 60  # ids sent in between: far more than the memory holds


def queued(n: int, **extra: Any) -> dict[str, Any]:
    """A contact.queued event with id q<n>."""
    return {"type": "contact.queued", "id": f"q{n}", "ts": now(), "queue": "sales",
            "contact_id": f"c{n}", **extra}


async def test_an_id_resent_after_the_memory_forgot_it_and_after_a_restart_counts_once(
        tmp_path: Path, server_process) -> None:
    config = journal_config(tmp_path / "data")
    config["server"]["dedupe_cache_ids"] = CACHE
    server = server_process(config)
    await server.start()
    async with aiohttp.ClientSession() as http:
        status, body, _ = await server.post(http, [queued(0)])
        assert (status, body["accepted"]) == (202, 1)
        for n in range(1, OTHERS + 1):  # one per request: the memory turns over many times
            assert (await server.post(http, [queued(n)]))[1]["accepted"] == 1
        status, body, _ = await server.post(http, [queued(0), queued(OTHERS + 1)])
        assert (status, body["accepted"], body["duplicates"]) == (202, 1, 1)
        snapshot = await server.snapshot(http)
        assert snapshot["queues"]["sales"]["today"]["offered"] == OTHERS + 2
        server.stop()
        await server.start()
        # The replay refilled the memory with the newest ids only; q0 and q1 are long gone.
        status, body, _ = await server.post(http, [queued(0), queued(1), queued(OTHERS + 2)])
        assert (status, body["accepted"], body["duplicates"]) == (202, 1, 2)
        snapshot = await server.snapshot(http)
        assert snapshot["queues"]["sales"]["today"]["offered"] == OTHERS + 3
        assert snapshot["meta"]["journal"] == "up"


async def test_events_without_an_id_are_never_duplicates(live_server) -> None:
    live = await live_server(base_config())
    event = queued(1)
    del event["id"]
    for _ in range(2):
        status, body = await live.post([event, event])
        assert (status, body["accepted"], body["duplicates"]) == (202, 2, 0)
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["today"]["offered"] == 4


def event(n: int, source: str = "hook") -> Event:
    """A stored event with id q<n>."""
    return Event(type="contact.queued", ts=time.time(), id=f"q{n}", source=source,
                 queue="sales", contact_id=f"c{n}")


async def test_a_journal_made_before_the_id_table_is_back_filled_on_open(tmp_path: Path) -> None:
    config = JournalConfig(data_dir=str(tmp_path), batch_ms=0)
    journal = SqliteJournal(config)
    journal.open()
    journal.start()
    assert await journal.append([event(1), event(2), event(2, source="other")],
                                time.time()) == []
    await journal.close()
    # As an older version left it: no id table, no record of one.
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("DROP TABLE ids")
        con.execute("DELETE FROM meta WHERE key = 'ids'")
    journal = SqliteJournal(config)
    journal.open()
    journal.start()
    # Known ids come back as positions of duplicates and are not stored again.
    assert await journal.append([event(3), event(2), event(1, source="other"), event(1)],
                                time.time()) == [1, 3]
    await journal.close()
    journal.open(writable=False)
    stored = [(e.source, e.id) for batch in journal.read(0) for _, e in batch]
    await journal.close()
    assert stored == [("hook", "q1"), ("hook", "q2"), ("other", "q2"), ("hook", "q3"),
                      ("other", "q1")]


async def test_the_back_fill_skips_a_damaged_row_which_the_restore_quarantines(
        tmp_path: Path) -> None:
    config = JournalConfig(data_dir=str(tmp_path), batch_ms=0)
    journal = SqliteJournal(config)
    journal.open()
    journal.start()
    assert await journal.append([event(1), event(2)], time.time()) == []
    await journal.close()
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("DROP TABLE ids")
        con.execute("DELETE FROM meta WHERE key = 'ids'")
        con.execute("INSERT INTO events (recv, ts, body) VALUES (?, ?, ?)",
                    (time.time(), time.time(), '["contact.queued", 17'))
    journal = SqliteJournal(config)
    journal.open()  # json_extract on the torn body failed the whole open
    stored = [e.id for batch in journal.read(0) for _, e in batch]
    assert stored == ["q1", "q2"] and journal.status.skipped == 1
    journal.start()
    assert await journal.append([event(2), event(3)], time.time()) == [0]
    await journal.close()
    journal.open(writable=False)
    assert journal.stats().quarantined == 1
    await journal.close()


async def test_ids_are_pruned_with_their_events(tmp_path: Path) -> None:
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path), batch_ms=0))
    journal.open()
    journal.start()
    t = time.time()
    await journal.append([event(1), event(2)], t - 100)
    await journal.append([event(3)], t)
    assert await journal.prune(t - 50) == 2
    # Past the retention an id may come again; one still kept may not.
    assert await journal.append([event(1), event(3)], t) == [1]
    await journal.close()


async def test_the_pipeline_counts_a_journal_duplicate_once_and_does_not_fold_it(
        tmp_path: Path) -> None:
    settings = parse_settings(base_config(), "<test>")
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path), batch_ms=0))
    journal.open()
    journal.start()
    pipeline = Pipeline(Aggregator(settings, time.time), dedupe_size=4, journal=journal)
    events = [pipeline.parse(queued(n), "hook") for n in range(20)]
    assert await pipeline.ingest_acknowledged(events) == Ack(20, 0, 0)
    again = [pipeline.parse(queued(n), "hook") for n in (0, 1, 20)]
    assert await pipeline.ingest_acknowledged(again) == Ack(1, 2, 0)
    # A push source's copy (not awaited) is recognised by the journal too.
    pipeline.ingest(pipeline.parse(queued(2), "hook"))
    await asyncio.sleep(0.2)
    assert pipeline.duplicates == 3
    assert pipeline.accepted == {"hook": 21}
    await journal.close()


async def test_on_redis_an_id_is_kept_for_the_retention_past_the_memory(tmp_path: Path) -> None:
    require_program("redis-server", "the Redis journal needs a server")
    from tests.redisproc import RedisServer
    from wallboard.journal.redis_backend import RedisJournal

    redis = RedisServer(tmp_path / "redis").start()
    try:
        settings = parse_settings(base_config(), "<test>")
        journal = RedisJournal(JournalConfig(backend="redis", url=redis.url, retention_days=3,
                                             retry_s=0.2, timeout_s=1.0))
        journal.open()
        journal.last_id = b"0-0"
        pipeline = Pipeline(Aggregator(settings, time.time), dedupe_size=4, journal=journal)
        journal.deliver = pipeline.apply
        journal.start()
        events = [pipeline.parse(queued(n), "hook") for n in range(20)]
        assert await asyncio.wait_for(pipeline.ingest_acknowledged(events), 10) == Ack(20, 0, 0)
        old = [pipeline.parse(queued(n, ts=now() - 3600), "hook") for n in (0, 21)]
        assert await asyncio.wait_for(pipeline.ingest_acknowledged(old), 10) == Ack(1, 1, 1)
        ttl_ms = await asyncio.wait_for(journal.redis.pttl(f"{journal.id_prefix}hook:q0"), 10)
        assert 3 * 86400_000 - 60_000 < ttl_ms <= 3 * 86400_000
        await asyncio.wait_for(journal.close(), 10)
    finally:
        redis.stop()


@pytest.mark.parametrize("ttl", [None, 7200.0])
def test_the_redis_id_ttl_defaults_to_the_retention(ttl: float | None) -> None:
    pytest.importorskip("redis")
    from wallboard.journal.redis_backend import RedisJournal

    journal = RedisJournal(JournalConfig(backend="redis", url="redis://127.0.0.1:1/0",
                                         retention_days=5, dedupe_ttl_s=ttl))
    assert journal.ttl_ms == (5 * 86400_000 if ttl is None else 7_200_000)
