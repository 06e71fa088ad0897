"""Issue 17's hostile-but-plausible events, through the real webhook: refused, counted, harmless.

Each test here failed on the code before the bounds: the events were answered 202, stored in
the journal and counted, and broke the board (and every restart) in the ways the issue lists.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson

from tests.conftest import base_config
from tests.metrics_text import rejected_by_reason
from tests.serverproc import ServerProcess, journal_config, midday_zone
from tests.test_journal_restore import Clock, running
from wallboard import hookimpl
from wallboard.kit.source import PushSource, Source, SourceConfig
from wallboard.model.events import Event

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=20)  # a server pinned by an event fails, not hangs
DAY = 86_400.0


def fields(body: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, field) of each rejected event of a webhook answer."""
    return [(item["index"], item["field"]) for item in body["rejected"]]


async def reasons(url: str, http: aiohttp.ClientSession) -> dict[str, float]:
    """wallboard_events_rejected_total by reason, read from /metrics."""
    async with http.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        return rejected_by_reason(await resp.text())


async def healthy(server: ServerProcess, http: aiohttp.ClientSession) -> dict[str, Any]:
    """/healthz within a second, /metrics and /api/snapshot parse; returns the snapshot."""
    started = time.monotonic()
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
    assert time.monotonic() - started < 1.0
    await reasons(server.url, http)
    return await server.snapshot(http)


def contact(n: int, ts: float, queue: str = "sales", **extra: Any) -> list[dict[str, Any]]:
    """A contact queued, answered by ann after 10 s and ended 40 s later (ids from n)."""
    base = {"queue": queue, "contact_id": f"c{n}"}
    return [{"type": "contact.queued", "id": f"q{n}", "ts": ts - 50, **base},
            {"type": "contact.answered", "id": f"a{n}", "ts": ts - 40, "agent": "ann",
             "wait_s": 10, **base},
            {"type": "contact.ended", "id": f"e{n}", "ts": ts, "agent": "ann", "talk_s": 40,
             **base, **extra}]


async def test_huge_durations_are_refused_and_a_restart_comes_back(server_process,
                                                                    tmp_path: Path) -> None:
    server = server_process(journal_config(tmp_path / "data"))
    await server.start()
    t = time.time()
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        assert (await server.post(http, contact(1, t)))[0] == 202
        ended = contact(2, t)[2]
        hostile = [ended, {**ended, "id": "x1", "talk_s": 1.7e308},
                   {**ended, "id": "x2", "hold_s": 1.7e308},
                   {**ended, "id": "x3", "wrap_s": 1.7e308},
                   {**ended, "id": "x4", "queue": "chat", "talk_s": 1.7976931348623157e308}]
        status, body, _ = await server.post(http, hostile)
        assert status < 500 and body["accepted"] == 1
        assert fields(body) == [(1, "talk_s"), (2, "hold_s"), (3, "wrap_s"), (4, "talk_s")]
        assert all("604800" in item["error"] for item in body["rejected"])
        before = await healthy(server, http)
        assert before["queues"]["sales"]["today"]["aht_s"] == 40.0
        assert (await reasons(server.url, http))["out_of_range"] == 4
        server.stop()
        await server.start()  # the journal holds none of them: the restart comes up
        after = await healthy(server, http)
    for queue in ("sales", "chat"):
        assert after["queues"][queue]["today"] == before["queues"][queue]["today"], queue


async def test_queue_snapshot_counts_past_their_limits_are_refused(server_process,
                                                                  tmp_path: Path) -> None:
    server = server_process(journal_config(tmp_path / "data"))
    await server.start()
    t = time.time()
    snapshot = {"type": "queue.snapshot", "ts": t, "queue": "sales", "waiting": 3,
                "agents": {"available": 2, "busy": 1}}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        assert (await server.post(http, contact(1, t)))[0] == 202
        status, body, _ = await server.post(http, [
            {**snapshot, "id": "s1", "agents": {"available": 1e12}},
            {**snapshot, "id": "s2", "waiting": 1e300},
            {**snapshot, "id": "s3", "agents": {"available": 100_001}},
            {**snapshot, "id": "s4", "agents": {"idle": 1}}])
        assert status in (400, 422) and body["accepted"] == 0
        assert fields(body) == [(0, "agents.available"), (1, "waiting"),
                                (2, "agents.available"), (3, "agents.idle")]
        assert (await server.post(http, [{**snapshot, "id": "s5"}]))[0] == 202
        live = (await healthy(server, http))["queues"]["sales"]["live"]
        assert (live["waiting"], live["agents_available"], live["agents_busy"]) == (3, 2, 1)
        counts = await reasons(server.url, http)
        assert (counts["out_of_range"], counts["bad_value"]) == (3, 1)
        server.stop()
        await server.start()
        assert (await healthy(server, http))["queues"]["sales"]["live"] == live


def rss_bytes(server: ServerProcess) -> int:
    """The server process's resident memory."""
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024


async def test_a_megabyte_queue_name_is_refused_cheaply(server_process, tmp_path: Path) -> None:
    server = server_process(journal_config(tmp_path / "data"))
    await server.start()
    t = time.time()
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        assert (await server.post(http, contact(1, t)))[0] == 202
        before = rss_bytes(server)
        for n in range(5):
            name = f"{n}" + "q" * 1_000_000
            started = time.monotonic()
            status, body, _ = await server.post(http, [
                {"type": "contact.queued", "id": f"big{n}", "ts": t, "queue": name,
                 "contact_id": "c"}])
            assert time.monotonic() - started < 2.0
            assert status in (400, 422) and fields(body) == [(0, "queue")]
            assert "server.max_name_length (128)" in body["rejected"][0]["error"]
            assert len(orjson.dumps(body)) < 1000  # the name is not echoed back
        assert rss_bytes(server) - before < 50 * 2**20  # it was 1.7 GB after five
        async with http.get(f"{server.url}/metrics") as resp:
            assert len(await resp.read()) < 200_000
        assert (await reasons(server.url, http))["too_long"] == 5
        snap = await healthy(server, http)
        assert set(snap["queues"]) == {"sales", "chat"}


async def test_times_far_from_now_and_huge_waits_are_refused(live_server) -> None:
    live = await live_server(base_config())
    t = time.time()
    queued = {"type": "contact.queued", "queue": "sales", "contact_id": "c1"}
    status, body = await live.post([
        {**queued, "id": "y1", "ts": "9999-12-31T23:59:59Z"},
        {**queued, "id": "y2", "ts": 1e300},
        {**queued, "id": "y3", "ts": t + 3600},  # an hour ahead: past server.max_clock_skew_s
        {**queued, "id": "y4", "ts": t - 8 * DAY},  # past journal.retention_days
        {"type": "contact.answered", "id": "y5", "ts": t, "queue": "sales",
         "contact_id": "c9", "wait_s": 1.2e29},
        {**queued, "id": "ok", "ts": t},
        # A helpdesk's backlog: a ticket opened 90 days ago, due in a year, still counts.
        {"type": "ticket.created", "id": "t1", "ts": t - 90 * DAY, "queue": "sales",
         "contact_id": "T-1", "due_ts": t + 365 * DAY}])
    assert status < 500 and body["accepted"] == 2
    assert fields(body) == [(0, "ts"), (1, "ts"), (2, "ts"), (3, "ts"), (4, "wait_s")]
    assert "server.max_clock_skew_s" in body["rejected"][2]["error"]
    assert "journal.retention_days" in body["rejected"][3]["error"]
    snap = await live.get_json("/api/snapshot")
    sales = snap["queues"]["sales"]
    assert sales["live"]["waiting"] == 1 and sales["live"]["oldest_wait_s"] < 60
    assert sales["today"]["answered"] == 0 and sales["live"]["tickets_open"] == 1
    _, text = await live.get_text("/metrics")
    assert rejected_by_reason(text)["out_of_range"] == 5


async def test_control_and_bidi_characters_in_names_are_refused_hebrew_is_not(
        live_server) -> None:
    live = await live_server(base_config())
    t = time.time()
    queued = {"type": "contact.queued", "ts": t, "contact_id": "c1"}
    status, body = await live.post([
        {**queued, "id": "b1", "queue": "sales\u202e"},  # right-to-left override
        {**queued, "id": "b2", "queue": "sa\x00les"},
        {**queued, "id": "b3", "queue": "new\nline"},
        {**queued, "id": "b4", "queue": "\u2066isolate\u2069"},
        {"type": "agent.state", "id": "b5", "ts": t, "agent": "ann\x1b[2J", "state": "busy"},
        {**queued, "id": "h1", "queue": "מכירות"},
        {"type": "agent.state", "id": "h2", "ts": t, "agent": "أحمد", "team": "דסק ב׳",
         "state": "available", "queues": ["מכירות"]}])
    assert status < 500 and body["accepted"] == 2
    assert fields(body) == [(0, "queue"), (1, "queue"), (2, "queue"), (3, "queue"),
                            (4, "agent")]
    snap = await live.get_json("/api/snapshot")
    assert snap["queues"]["מכירות"]["live"]["waiting"] == 1
    assert snap["agents"]["أحمد"]["team"] == "דסק ב׳"
    assert snap["teams"]["דסק ב׳"]["live"]["agents_available"] == 1
    assert not [q for q in snap["queues"] if q not in ("sales", "chat", "מכירות")]
    _, text = await live.get_text("/metrics")
    assert rejected_by_reason(text)["bad_chars"] == 5


async def test_thirty_thousand_agents_stop_at_max_agents(live_server) -> None:
    live = await live_server(base_config())  # server.max_agents: 2,000 by default
    t = time.time()
    accepted = 0
    for start in range(0, 30_000, 3_000):
        batch = [{"type": "agent.state", "id": f"s{n}", "ts": t, "agent": f"agent-{n}",
                  "state": "available", "queues": ["sales"]} for n in range(start, start + 3_000)]
        status, body = await live.post(batch)
        assert status < 500
        accepted += body["accepted"]
        if start >= 3_000:  # past the limit every new agent is refused, naming it
            assert body["accepted"] == 0 and body["rejected_total"] == 3_000
            assert body["rejected_reasons"] == {"agent_limit": 3_000}
            assert len(body["rejected"]) == 100  # the answer lists the first 100 in full
            assert {item["field"] for item in body["rejected"]} == {"agent"}
            assert "server.max_agents (2000)" in body["rejected"][0]["error"]
    assert accepted == 2_000
    # Known agents keep working; a new one in a contact counts for the queue, without the
    # agent (as the fold does without admission), and is counted under agent_limit.
    status, body = await live.post([
        {"type": "agent.state", "id": "k1", "ts": t + 1, "agent": "agent-7", "state": "busy"},
        {"type": "contact.answered", "id": "k2", "ts": t + 1, "queue": "sales",
         "contact_id": "c1", "agent": "agent-29999", "wait_s": 3}])
    assert body["accepted"] == 2 and fields(body) == []
    snap = await live.get_json("/api/snapshot")
    assert len(snap["agents"]) == 2_000 and snap["agents"]["agent-7"]["state"] == "busy"
    assert "agent-29999" not in snap["agents"]
    assert snap["queues"]["sales"]["today"]["answered"] == 1
    assert snap["queues"]["sales"]["live"]["agents_available"] == 1_999
    _, text = await live.get_text("/metrics")
    assert rejected_by_reason(text)["agent_limit"] == 28_001


class HostileConfig(SourceConfig):
    """No settings."""


class HostileConnector(PushSource):
    """A connector emitting its own Event objects, some out of bounds."""

    type: ClassVar[str] = "test_hostile_connector"
    Config: ClassVar[type[SourceConfig]] = HostileConfig

    async def run(self, emit: Any) -> None:
        self.connected()
        t = time.time()
        emit(Event(type="contact.queued", ts=t, id="good", queue="sales", contact_id="c1"))
        emit(Event(type="contact.ended", ts=t, id="huge", queue="sales", contact_id="c1",
                   talk_s=1.7e308))
        emit(Event(type="contact.queued", ts=t, id="long", queue="q" * 100_000,
                   contact_id="c2"))
        emit(Event(type="contact.queued", ts=1e300, id="far", queue="sales", contact_id="c3"))
        await asyncio.Event().wait()


class HostilePlugin:
    @hookimpl
    def register_source_types(self) -> list[type[Source]]:
        return [HostileConnector]


async def test_a_connector_emitting_out_of_bounds_events_is_checked_and_counted(
        tmp_path: Path) -> None:
    config = {"queues": {"sales": {}}, "journal": {"data_dir": str(tmp_path / "data")},
              "sources": {"pbx": {"type": "test_hostile_connector"}}}
    async with running(config, plugin=HostilePlugin()) as live:
        deadline = time.monotonic() + 5
        while True:
            snap = await live.get_json("/api/snapshot")
            if snap["sources"]["pbx"]["events"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        snap = await live.get_json("/api/snapshot")
        _, text = await live.get_text("/metrics")
    assert snap["queues"]["sales"]["today"]["offered"] == 1
    assert snap["queues"]["sales"]["today"]["aht_s"] is None  # the huge talk was not folded
    assert set(snap["queues"]) == {"sales"}
    counts = rejected_by_reason(text)
    assert (counts["out_of_range"], counts["too_long"]) == (2, 1)


async def test_the_start_up_replay_checks_each_event_against_its_arrival(
        tmp_path: Path) -> None:
    """An event valid when it arrived stays valid in the replay, however long ago that was."""
    clock = Clock(time.time())
    config = base_config(journal={"data_dir": str(tmp_path / "data")},
                         site={"timezone": midday_zone()})  # no midnight between the runs
    arrived = clock.now
    old = {"type": "contact.queued", "id": "old", "ts": arrived - 7 * DAY + 60,
           "queue": "sales", "contact_id": "c1"}
    async with running(config, clock) as live:
        status, body = await live.post([old, contact(1, arrived)[0]])
        assert (status, body["accepted"]) == (202, 2)
    clock.now += 120  # the old event is now past the 7-day window, but it arrived within it
    async with running(config, clock) as live:
        _, text = await live.get_text("/metrics")
        snap = await live.get_json("/api/snapshot")
    assert "out_of_range" not in rejected_by_reason(text)
    assert snap["queues"]["sales"]["live"]["waiting"] == 1
