"""A setting lowered between two starts never quarantines what was accepted under the old one."""

from __future__ import annotations

import time
from pathlib import Path

from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.ingest.restore import Restored, restore
from wallboard.journal.sqlite_backend import SqliteJournal

AGENT = "a" * 100  # within max_name_length 128, past 64


def start(tmp_path: Path, max_name_length: int) -> tuple[Pipeline, SqliteJournal]:
    settings = parse_settings({
        "queues": {"sales": {"channel": "voice"}},
        "server": {"max_name_length": max_name_length},
        "journal": {"data_dir": str(tmp_path), "batch_ms": 0}})
    journal = SqliteJournal(settings.journal)
    journal.open()
    pipeline = Pipeline(Aggregator(settings, time.time), journal=journal)
    restore(journal, pipeline, time.time(), Restored())
    return pipeline, journal


async def test_lowering_max_name_length_keeps_the_stored_events_counted(tmp_path: Path) -> None:
    pipeline, journal = start(tmp_path, 128)
    journal.start()
    event = pipeline.parse({"type": "agent.state", "id": "s1", "ts": time.time(),
                            "agent": AGENT, "state": "available", "queues": ["sales"]}, "hook")
    ack = await pipeline.ingest_acknowledged([event])
    assert ack.accepted == 1 and AGENT in pipeline.aggregator.agent_windows
    await journal.close()
    for length in (64, 128):  # lowered, then restored: counted both times
        pipeline, journal = start(tmp_path, length)
        try:
            assert AGENT in pipeline.aggregator.agent_windows, length
            assert pipeline.aggregator.errors.counts["restore"] == 0
            assert journal.stats().quarantined == 0
        finally:
            await journal.close()
