"""Quarantine marks find the row the writer stored, and a mark that finds none is logged."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.fold import aggregate
from wallboard.fold.aggregate import Aggregator, Leaf
from wallboard.ingest.pipeline import Pipeline
from wallboard.journal import quarantine as journal_quarantine
from wallboard.journal.sqlite_backend import SqliteJournal
from wallboard.model.events import Event

QUEUES = {"sales": {"channel": "voice"}}


async def test_a_fold_raising_after_the_agent_limit_dropped_the_agent_is_quarantined(
        tmp_path: Path, monkeypatch, caplog) -> None:
    settings = parse_settings({"queues": QUEUES, "server": {"max_agents": 1}})
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path), batch_ms=0))
    journal.open()
    journal.start()
    pipeline = Pipeline(Aggregator(settings, time.time), journal=journal)

    def boom(agg: Aggregator, event: Event, leaf: Leaf, now: float) -> None:
        raise RuntimeError("a bug met after the agent was dropped")

    monkeypatch.setitem(aggregate._HANDLERS, "contact.ended", boom)
    monkeypatch.setattr(journal_quarantine, "_missed_logged", False)  # once per process
    now = time.time()
    ann = Event("agent.state", now, id="s1", source="hook", agent="ann", state="available")
    # zed is one agent too many: the fold drops the agent, then raises.
    ended = Event("contact.ended", now, id="e1", source="hook", queue="sales",
                  contact_id="c1", agent="zed", talk_s=5.0)
    caplog.set_level(logging.ERROR, logger="wallboard.journal.quarantine")
    await pipeline.ingest_acknowledged([ann, ended])
    assert pipeline.aggregator.errors.counts["fold"] == 1
    assert not [r for r in caplog.records if "found no stored event" in r.getMessage()]
    # A mark for an event the journal never stored finds no row: said, once.
    stranger = Event("contact.queued", now, id="x", source="hook", queue="sales",
                     contact_id="x")
    journal.quarantine([(now, stranger, "fold", "test")])
    journal.quarantine([(now, stranger, "fold", "test")])
    await journal.close()
    missed = [r for r in caplog.records if "found no stored event" in r.getMessage()]
    assert len(missed) == 1
    journal.open(writable=False)
    try:
        assert journal.stats().quarantined == 1
    finally:
        await journal.close()
