"""A journal holding poisoned events (stored before the door's bounds existed) cannot take the board
down: a real server starts on it, serves, quarantines them and skips them on the next start."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.serverproc import ServerProcess, journal_config
from tests.wsclient import BoardClient
from wallboard.config.settings import JournalConfig
from wallboard.journal.sqlite_backend import SqliteJournal
from wallboard.model.events import Event

HUGE = 1.7976931348623157e308


def _event(etype: str, event_id: str, ts: float, **fields: Any) -> Event:
    # Built directly, not through parse_event: these are what an older version stored.
    return Event(etype, ts, id=event_id, source="hook", **fields)


def poisoned_and_valid(now: float) -> tuple[list[Event], set[str]]:
    """Valid contacts on two queues with the issue's four poisoned events between them."""
    events = [
        _event("contact.queued", "v1", now - 60, queue="sales", contact_id="c1"),
        _event("contact.answered", "v2", now - 55, queue="sales", contact_id="c1", wait_s=5.0),
        _event("contact.ended", "p1", now - 50, queue="sales", contact_id="x1", talk_s=1.7e308,
               hold_s=1.7e308, wrap_s=1.7e308),
        _event("contact.ended", "v3", now - 45, queue="sales", contact_id="c1", talk_s=100.0,
               hold_s=10.0, wrap_s=20.0),
        _event("contact.ended", "p2", now - 44, queue="chat", contact_id="x2", talk_s=HUGE),
        _event("contact.queued", "v4", now - 40, queue="chat", contact_id="c2"),
        _event("queue.snapshot", "p3", now - 35, queue="sales", waiting=1.0,
               agents={"available": 10**12}),
        _event("contact.abandoned", "v5", now - 30, queue="chat", contact_id="c2", wait_s=10.0),
        _event("queue.snapshot", "p4", now - 25, queue="chat", waiting=1e300),
        _event("contact.queued", "v6", now - 20, queue="sales", contact_id="c3"),
        _event("contact.answered", "v7", now - 15, queue="sales", contact_id="c3", wait_s=5.0),
        _event("contact.ended", "v8", now - 10, queue="sales", contact_id="c3", talk_s=200.0),
    ]
    return events, {"p1", "p2", "p3", "p4"}


async def write_journal(data_dir: Path, events: list[Event]) -> None:
    """Store events with the journal API, one append each, as an older server would have."""
    journal = SqliteJournal(JournalConfig(data_dir=str(data_dir)))
    journal.open()
    journal.start()
    for event in events:
        await journal.append([event], event.ts + 0.5)
    await journal.close()


def counted(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The numbers the valid events make, as the board shows them today."""
    sales, chat = snapshot["queues"]["sales"]["today"], snapshot["queues"]["chat"]["today"]
    return {"sales_offered": sales["offered"], "sales_answered": sales["answered"],
            "sales_aht": sales["aht_s"], "chat_offered": chat["offered"],
            "chat_abandoned": chat["abandoned"]}


# (100 + 10 + 20 + 200) / 2: the two valid contact.ended on sales.
EXPECTED = {"sales_offered": 2, "sales_answered": 2, "sales_aht": 165.0, "chat_offered": 1,
            "chat_abandoned": 1}


def fold_errors(metrics_text: str) -> dict[str, float]:
    """wallboard_fold_errors_total by stage (the text parsed by prometheus_client)."""
    return {s.labels["stage"]: s.value for f in text_string_to_metric_families(metrics_text)
            for s in f.samples if s.name == "wallboard_fold_errors_total"}


async def serves(server: ServerProcess) -> tuple[dict[str, Any], dict[str, float]]:
    """/api/snapshot and /metrics answer 200 and parse; a board keeps getting deltas."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/snapshot") as resp:
            assert resp.status == 200
            snapshot = orjson.loads(await resp.read())
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert list(text_string_to_metric_families(text))
    async with BoardClient(f"ws://127.0.0.1:{server.port}/ws?board=overview") as board:
        first = await board.receive()
        assert first["type"] == "snapshot"
        deltas = 0
        deadline = time.monotonic() + 5
        while deltas < 2 and time.monotonic() < deadline:  # meta.ts moves every second
            if (await board.receive(timeout=3))["type"] == "delta":
                deltas += 1
        assert deltas == 2 and board.gaps == 0
    return snapshot, fold_errors(text)


def journal_stats(server: ServerProcess) -> dict[str, Any]:
    result = server.cli("journal", "stats", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_a_poisoned_journal_starts_serves_quarantines_and_is_skipped_next_time(
        tmp_path: Path, server_process) -> None:
    now = time.time()
    events, poisoned = poisoned_and_valid(now)
    await write_journal(tmp_path / "data", events)
    server = server_process(journal_config(tmp_path / "data"))

    started = time.monotonic()
    await server.start(timeout=15)
    assert time.monotonic() - started < 10, "the port took too long to open"
    snapshot, errors = await serves(server)
    assert counted(snapshot) == EXPECTED
    assert errors["restore"] == len(poisoned)  # each met once, each quarantined
    assert errors["fold"] == errors["snapshot"] == errors["staffing"] == 0
    assert "restore error on event p1" in server.log.read_text()
    # SIGKILL: no checkpoint at exit, so the next start folds the journal again (the path
    # that must skip the marked events).
    server.kill()
    server.wait()

    stats = journal_stats(server)
    assert stats["events"] == len(events)  # kept, only marked
    assert stats["quarantined"] == len(poisoned)
    assert sum(stats["quarantine_reasons"].values()) == len(poisoned)
    # The door's bounds, applied again at the replay against each event's arrival, refuse
    # them before the fold's own range check would (tests/test_fold_guard.py covers that one).
    assert all(why.startswith("restore: EventError") for why in stats["quarantine_reasons"])
    exported = server.cli("journal", "export", "--quarantined")
    assert exported.returncode == 0, exported.stderr
    lines = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert {line["event"]["id"] for line in lines} == poisoned
    assert {line["stage"] for line in lines} == {"restore"}

    await server.start(timeout=15)  # the second start skips them: nothing fails this time
    snapshot, errors = await serves(server)
    assert counted(snapshot) == EXPECTED
    assert errors == dict.fromkeys(("fold", "restore", "snapshot", "staffing", "exporter"), 0)
    assert f"skipped {len(poisoned)} quarantined events" in server.log.read_text()
    server.stop()
    assert journal_stats(server)["quarantined"] == len(poisoned)
