"""The simulator source: determinism, canonical events, a sound queueing model, the runtime."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import math
import random
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError
from wallboard_plugins import simulator
from wallboard_plugins.simulator import SimQueueConfig, Simulation, SimulatorConfig, SimulatorSource
from wallboard_plugins.simulator.model import QUEUE_CAPACITY

from tests.serverproc import ServerProcess, midday_zone
from wallboard.config.settings import DEMO_CONFIG
from wallboard.kit.source import UP, SourceRunner
from wallboard.model.events import AGENT_STATES, parse_event

# An arbitrary instant that is not on an hour boundary (2023-11-14 22:13:20 UTC).
START = 1_700_000_000.0
HOUR = 3600.0


def config(**fields: Any) -> SimulatorConfig:
    """A simulator config from plain values, validated like YAML would be."""
    return SimulatorConfig.model_validate({"type": "simulator", **fields})


def one_queue(profile: list[float] | None = None, staffing: bool = False,
              **queue: Any) -> SimulatorConfig:
    """A single-queue config named 'q'; flat profile and fixed staffing unless told."""
    return config(profile=profile or [1.0] * 24, scheduled_staffing=staffing, queues={"q": queue})


def run(cfg: SimulatorConfig, hours: float, seed: int = 1,
        start: float = START) -> list[dict[str, Any]]:
    """Every event of `hours` simulated hours in one advance call."""
    return Simulation(cfg, seed, start, "sim").advance(start + hours * HOUR)


def of_type(events: list[dict[str, Any]], etype: str) -> list[dict[str, Any]]:
    """The events of one type."""
    return [e for e in events if e["type"] == etype]


# -- determinism -----------------------------------------------------------------------------

def test_same_seed_and_start_give_identical_events() -> None:
    cfg = config()
    assert run(cfg, 2, seed=42) == run(cfg, 2, seed=42)


def test_chunking_of_advance_calls_does_not_change_the_events() -> None:
    cfg = config()
    whole = run(cfg, 3, seed=7)
    sim = Simulation(cfg, 7, START, "sim")
    chunker = random.Random(99)
    chunked: list[dict[str, Any]] = []
    until = START - 10.0
    while until < START + 3 * HOUR:
        previous, until = until, min(START + 3 * HOUR, until + chunker.uniform(0, 90))
        batch = sim.advance(until)
        assert all(previous < e["ts"] <= until for e in batch)
        chunked.extend(batch)
        assert sim.advance(previous) == []  # going back in time yields nothing
    assert chunked == whole


def test_exact_chunk_boundaries_on_event_times_keep_the_events() -> None:
    cfg = config()
    whole = run(cfg, 1, seed=3)
    sim = Simulation(cfg, 3, START, "sim")
    chunked: list[dict[str, Any]] = []
    for ts in sorted({e["ts"] for e in whole}):
        chunked.extend(sim.advance(ts))
    assert chunked == whole


def test_different_seeds_give_different_events() -> None:
    cfg = config()
    first, second = run(cfg, 1, seed=1), run(cfg, 1, seed=2)
    assert [e["ts"] for e in first] != [e["ts"] for e in second]


def test_no_events_before_the_start() -> None:
    sim = Simulation(config(), 1, START, "sim")
    assert sim.advance(START - 1) == []
    assert sim.advance(START)  # the agents' initial states


# -- canonical events ------------------------------------------------------------------------

def test_every_event_is_canonical_with_a_unique_id_and_in_time_order() -> None:
    events = run(config(), 4, seed=11)
    assert len(events) > 1000
    for event in events:
        parsed = parse_event(event)
        assert "source" not in event  # the runtime sets it
        assert parsed.id and parsed.id.startswith("sim-")
    assert len({e["id"] for e in events}) == len(events)
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] == START and stamps[-1] <= START + 4 * HOUR
    assert {e["type"] for e in events} == {
        "contact.queued", "contact.answered", "contact.abandoned", "contact.ended",
        "agent.state", "survey.response"}


def test_ids_differ_between_simulations_started_at_different_times() -> None:
    first = {e["id"] for e in run(config(), 0.2, start=START)}
    second = {e["id"] for e in run(config(), 0.2, start=START + 60)}
    assert not first & second


def test_all_agents_report_a_state_at_the_start() -> None:
    cfg = config(scheduled_staffing=False)
    events = Simulation(cfg, 1, START, "sim").advance(START)
    names = {f"{q}-{i:02d}" for q, qc in cfg.queues.items() for i in range(1, qc.agents + 1)}
    states = {e["agent"]: e["state"] for e in of_type(events, "agent.state")}
    assert set(states) == names
    assert set(states.values()) == {"available"}


# -- arrivals --------------------------------------------------------------------------------

def test_arrivals_with_a_flat_profile_match_the_poisson_mean() -> None:
    cfg = one_queue(channel="voice", arrivals_per_hour=300, agents=30, aht_s=200)
    hours = 8
    expected = 300 * hours
    for seed in (1, 2, 3):
        count = len(of_type(run(cfg, hours, seed=seed), "contact.queued"))
        assert abs(count - expected) <= 4 * math.sqrt(expected), (seed, count)


def test_arrivals_follow_the_hourly_profile_in_utc() -> None:
    # Even UTC hours quiet, odd hours busy; start at midnight so the hours line up.
    profile = [0.2 if h % 2 == 0 else 1.0 for h in range(24)]
    cfg = one_queue(profile=profile, channel="voice", arrivals_per_hour=400, agents=40,
                    aht_s=200)
    midnight = START - START % 86_400
    counts = Counter(int((e["ts"] - midnight) // HOUR) % 2
                     for e in of_type(run(cfg, 24, start=midnight), "contact.queued"))
    for parity, share in ((0, 0.2), (1, 1.0)):
        expected = 400 * share * 12
        assert abs(counts[parity] - expected) <= 4 * math.sqrt(expected), (parity, counts)


# -- the queueing model ----------------------------------------------------------------------

def replay(events: list[dict[str, Any]], cfg: SimulatorConfig) -> Counter[str]:
    """Check every contact's and agent's lifecycle; return counts of what happened."""
    queued: dict[str, dict[str, Any]] = {}
    waiting: Counter[str] = Counter()
    handling: dict[str, dict[str, Any]] = {}  # agent -> its answered event
    answered: dict[str, dict[str, Any]] = {}
    ended: dict[str, dict[str, Any]] = {}
    last_state: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for e in events:
        seen[e["type"]] += 1
        cid = e.get("contact_id")
        if e["type"] == "contact.queued":
            assert cid not in queued
            queued[cid] = e
            waiting[e["queue"]] += 1
        elif e["type"] in ("contact.answered", "contact.abandoned"):
            start = queued.pop(cid)  # was queued, and leaves the queue only once
            assert start["queue"] == e["queue"]
            assert e["wait_s"] == pytest.approx(e["ts"] - start["ts"], abs=1e-6)
            waiting[e["queue"]] -= 1
            assert waiting[e["queue"]] >= 0
            if e["type"] == "contact.abandoned":
                assert cfg.queues[e["queue"]].patience_s is not None
                continue
            agent = e["agent"]
            assert agent not in handling, "an agent took a second contact"
            assert last_state[agent] == "available"
            assert agent.startswith(e["queue"] + "-")
            handling[agent] = answered[cid] = e
        elif e["type"] == "contact.ended":
            start = handling.pop(e["agent"])
            assert start["contact_id"] == cid
            del answered[cid]
            handle = e["talk_s"] + e["hold_s"] + e["wrap_s"]
            assert e["ts"] - start["ts"] == pytest.approx(handle, abs=2e-3)
            ended[cid] = e
        elif e["type"] == "agent.state":
            agent, state = e["agent"], e["state"]
            assert state in AGENT_STATES
            if state in ("busy", "wrapup"):
                assert handling[agent]["contact_id"] == e["contact_id"]
            else:
                assert agent not in handling, f"{agent} went {state} during a contact"
            if state == "away":
                assert e["reason"] == "break"
            last_state[agent] = state
        elif e["type"] == "survey.response":
            end = ended[cid]
            assert e["ts"] > end["ts"] and e["agent"] == end["agent"]
            assert e["score"] in (1, 2, 3, 4, 5)
    seen["still_waiting"] = sum(waiting.values())
    return seen


def test_contact_and_agent_lifecycles_are_consistent() -> None:
    cfg = config()
    seen = replay(run(cfg, 6, seed=5), cfg)
    assert seen["contact.answered"] > 1000 and seen["contact.abandoned"] > 10
    assert seen["survey.response"] > 50


def test_lifecycles_hold_for_an_overloaded_queue_with_frequent_breaks() -> None:
    cfg = one_queue(channel="voice", arrivals_per_hour=200, agents=3, aht_s=180, wrap_s=20,
                    patience_s=60, breaks={"every_s": 600, "mean_s": 120})
    seen = replay(run(cfg, 4, seed=8), cfg)
    assert seen["contact.abandoned"] > seen["contact.answered"] / 2


def test_a_queue_without_patience_never_abandons() -> None:
    cfg = one_queue(channel="email", arrivals_per_hour=100, agents=3, aht_s=120, wrap_s=10,
                    patience_s=None)
    events = run(cfg, 4, seed=2)
    assert not of_type(events, "contact.abandoned")
    assert max(e["wait_s"] for e in of_type(events, "contact.answered")) > 60


def test_the_default_email_queue_never_abandons() -> None:
    events = run(config(), 6, seed=4)
    assert of_type(events, "contact.queued")
    assert not [e for e in of_type(events, "contact.abandoned") if e["queue"] == "email"]


def test_a_queue_without_agents_loses_every_contact_to_abandonment() -> None:
    cfg = config(profile=[1.0] * 24, queues={
        "empty": {"arrivals_per_hour": 120, "agents": 0, "aht_s": 200, "patience_s": 30},
        "staffed": {"arrivals_per_hour": 60, "agents": 4, "aht_s": 200, "patience_s": 30},
    })
    events = [e for e in run(cfg, 3, seed=6) if e.get("queue") == "empty"]
    queued = {e["contact_id"] for e in of_type(events, "contact.queued")}
    abandoned = {e["contact_id"] for e in of_type(events, "contact.abandoned")}
    assert len(queued) > 200
    assert not of_type(events, "contact.answered")
    # Contacts queued in the last minutes may still be waiting when the run stops.
    late = {e["contact_id"] for e in of_type(events, "contact.queued")
            if e["ts"] > START + 3 * HOUR - 600}
    assert queued - late <= abandoned <= queued


def test_contacts_are_answered_first_in_first_out() -> None:
    # E-mail has no alerting delay, so answer order is exactly routing order.
    cfg = one_queue(channel="email", arrivals_per_hour=150, agents=4, aht_s=120, wrap_s=10,
                    patience_s=None)
    events = run(cfg, 3, seed=9)
    queued_at = {e["contact_id"]: e["ts"] for e in of_type(events, "contact.queued")}
    order = [queued_at[e["contact_id"]] for e in of_type(events, "contact.answered")]
    assert order == sorted(order)


def test_an_overloaded_queue_without_patience_is_capped() -> None:
    cfg = one_queue(channel="email", arrivals_per_hour=5000, agents=0, aht_s=100,
                    patience_s=None, breaks=None)
    sim = Simulation(cfg, 1, START, "sim")
    queued = len(of_type(sim.advance(START + 2 * HOUR), "contact.queued"))
    assert queued == QUEUE_CAPACITY == sim.waiting("q")


def test_survey_responses_arrive_at_the_configured_rate() -> None:
    cfg = one_queue(channel="chat", arrivals_per_hour=300, agents=40, aht_s=200,
                    csat_response_rate=0.4)
    events = run(cfg, 6, seed=12)
    ended = len(of_type(events, "contact.ended"))
    surveys = of_type(events, "survey.response")
    expected, sigma = 0.4 * ended, math.sqrt(ended * 0.4 * 0.6)
    # Surveys of the last two minutes may not have arrived yet.
    assert expected - 4 * sigma - 10 <= len(surveys) <= expected + 4 * sigma
    top_two = sum(e["score"] >= 4 for e in surveys) / len(surveys)
    assert 0.6 < top_two < 0.95  # skewed positive, as real CSAT is


def test_scheduled_staffing_logs_agents_out_in_quiet_hours() -> None:
    midnight = START - START % 86_400
    profile = [0.35] * 12 + [1.0] * 12
    cfg = one_queue(profile=profile, staffing=True, channel="voice", arrivals_per_hour=240,
                    agents=20, aht_s=240)
    events = run(cfg, 24, start=midnight)
    replay(events, cfg)
    on: set[str] = set()
    logged_in: dict[int, int] = {}
    for e in of_type(events, "agent.state"):
        (on.discard if e["state"] == "offline" else on.add)(e["agent"])
        logged_in[int((e["ts"] - midnight) // HOUR)] = len(on)
    assert max(logged_in[h] for h in range(2, 12)) < 20
    assert logged_in[20] == 20


def test_fixed_staffing_keeps_every_agent_logged_in() -> None:
    events = run(config(scheduled_staffing=False), 6)
    assert not [e for e in of_type(events, "agent.state") if e["state"] == "offline"]


# -- configuration ---------------------------------------------------------------------------

def test_default_queues_match_the_demo_configuration() -> None:
    cfg = config()
    demo = DEMO_CONFIG["queues"]
    assert set(cfg.queues) == set(demo)
    for name, queue in cfg.queues.items():
        assert queue.channel == demo[name]["channel"]
    assert min(cfg.profile) >= 0.35 and max(cfg.profile) == 1.0


@pytest.mark.parametrize(("fields", "where"), [
    ({"queues": {"q": {"arrivals_per_hour": -5, "agents": 2, "aht_s": 60}}},
     ("queues", "q", "arrivals_per_hour")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": -1, "aht_s": 60}}},
     ("queues", "q", "agents")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": 1, "aht_s": 0}}},
     ("queues", "q", "aht_s")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": 1, "aht_s": 60, "patience_s": 0}}},
     ("queues", "q", "patience_s")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": 1, "aht_s": 60,
                       "csat_response_rate": 1.5}}},
     ("queues", "q", "csat_response_rate")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": 1, "aht_s": 60, "channel": "fax"}}},
     ("queues", "q", "channel")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": 1, "aht_s": 60,
                       "breaks": {"every_s": -1}}}},
     ("queues", "q", "breaks", "every_s")),
    ({"queues": {"q": {"arrivals_per_hour": 5, "agents": 1, "aht_s": 60, "speed": 2}}},
     ("queues", "q", "speed")),
    ({"queues": {}}, ("queues",)),
    ({"profile": [1.0] * 23}, ("profile",)),
    ({"profile": [0.0] * 24}, ("profile",)),
    ({"profile": [1.0] * 23 + [-1.0]}, ("profile", 23)),
    ({"tick_s": 0}, ("tick_s",)),
    ({"warmup_s": -1}, ("warmup_s",)),
])
def test_config_rejects_bad_values_naming_the_field(fields: dict[str, Any],
                                                    where: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        config(**fields)
    assert where in [tuple(err["loc"]) for err in info.value.errors()]


def test_config_rejects_wrap_up_longer_than_the_handle_time() -> None:
    with pytest.raises(ValidationError, match="wrap_s"):
        SimQueueConfig(arrivals_per_hour=5, agents=1, aht_s=60, wrap_s=60)


# -- plugin and runtime ----------------------------------------------------------------------

def test_plugin_registers_the_simulator_source_type() -> None:
    assert simulator.register_source_types() == [SimulatorSource]
    assert SimulatorSource.type == "simulator" and SimulatorSource.Config is SimulatorConfig
    points = importlib.metadata.entry_points(group="wallboard")
    assert "wallboard_plugins.simulator" in {p.value for p in points if p.name == "simulator"}


@pytest.mark.asyncio
async def test_source_runs_under_the_runner_and_stops_when_cancelled() -> None:
    events: list[dict[str, Any]] = []
    source = SimulatorSource("demo", config(seed=5, warmup_s=120, tick_s=0.05))
    runner = SourceRunner(source, events.append)  # type: ignore[arg-type]
    started = time.time()
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(1.0)
    assert runner.status.status == UP
    assert runner.status.events == len(events) > 0
    for event in events:
        parse_event(event)
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] == pytest.approx(started - 120, abs=0.5)  # the warm-up's start
    assert stamps[-1] <= time.time()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    assert task in done and task.cancelled()


@pytest.mark.asyncio
async def test_a_restarted_source_resumes_instead_of_replaying_the_warm_up() -> None:
    events: list[dict[str, Any]] = []
    source = SimulatorSource("demo", config(seed=3, warmup_s=300, tick_s=0.05))
    for _ in range(2):
        task = asyncio.create_task(source.run(events.append))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    assert len({e["id"] for e in events}) == len(events)
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)


async def _run_briefly(source: SimulatorSource, seconds: float = 0.3) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    task = asyncio.create_task(source.run(events.append))  # type: ignore[arg-type]
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    return events


@pytest.mark.asyncio
async def test_a_new_process_with_a_state_dir_resends_the_warm_up_with_the_same_ids(
        tmp_path) -> None:
    """A restart re-runs the saved simulation: what it sends again is the same, id for id."""
    fields = {"warmup_s": 600, "tick_s": 0.05, "state_dir": str(tmp_path)}
    first = await _run_briefly(SimulatorSource("demo", config(**fields)))
    saved = json.loads((tmp_path / "simulator-demo.json").read_text())
    assert set(saved) == {"seed", "start", "fingerprint"}
    second = await _run_briefly(SimulatorSource("demo", config(**fields)))
    last = first[-1]["ts"]
    again = [e for e in second if e["ts"] <= last]
    # The second warm-up starts 600 s before its own start, inside the first run's history.
    assert again and again[0]["ts"] > first[0]["ts"]
    by_id = {e["id"]: e for e in first}
    assert all(by_id.get(e["id"]) == e for e in again), "a resent event differs"
    # Without a state dir every start is a new simulation: nothing would be recognised.
    fresh = await _run_briefly(SimulatorSource("demo", config(warmup_s=600, tick_s=0.05)))
    assert not {e["id"] for e in fresh} & set(by_id)


@pytest.mark.asyncio
async def test_an_unreadable_state_file_starts_a_new_simulation_and_is_rewritten(
        tmp_path) -> None:
    (tmp_path / "simulator-demo.json").write_text("{not json")
    events = await _run_briefly(SimulatorSource("demo", config(
        warmup_s=60, tick_s=0.05, state_dir=str(tmp_path))))
    assert events
    saved = json.loads((tmp_path / "simulator-demo.json").read_text())
    assert events[0]["id"].startswith(f"demo-{saved['seed']:x}-{int(saved['start']):x}-")


@pytest.mark.asyncio
async def test_a_changed_simulation_config_starts_a_new_simulation(tmp_path) -> None:
    fields = {"warmup_s": 300, "tick_s": 0.05, "state_dir": str(tmp_path)}
    first = await _run_briefly(SimulatorSource("demo", config(**fields)))
    changed = config(**fields, scheduled_staffing=False)
    second = await _run_briefly(SimulatorSource("demo", changed))
    assert not {e["id"] for e in first} & {e["id"] for e in second}


@pytest.mark.asyncio
async def test_restarts_with_a_journal_never_count_the_warm_up_twice(tmp_path) -> None:
    """Journal on, two restarts: today holds each simulated contact once, late ones none.

    Checked against the simulation itself, re-run from the saved seed and start.
    """
    data = tmp_path / "data"
    cfg = {
        "site": {"name": "Sim", "timezone": midday_zone(), "lateness_s": 1000},
        "server": {"push_interval_ms": 50},
        "queues": {name: {"channel": q["channel"]} for name, q in DEMO_CONFIG["queues"].items()},
        "sources": {"sim": {"type": "simulator", "warmup_s": 900, "tick_s": 0.1,
                            "state_dir": str(data)}},
        "journal": {"data_dir": str(data), "batch_ms": 5},
    }
    server = ServerProcess(tmp_path, cfg)
    counts = []
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            await server.start()
            await asyncio.sleep(1.5)
            snap = await server.snapshot(http)
            server.stop()
            counts.append((snap["meta"]["ts"], snap["total"]["today"]["offered"],
                           snap["meta"]["late_events"]))
    saved = json.loads((data / "simulator-sim.json").read_text())
    sim = Simulation(config(**cfg["sources"]["sim"]), saved["seed"], saved["start"], "sim")
    queued = [e["ts"] for e in sim.advance(counts[-1][0]) if e["type"] == "contact.queued"]
    for ts, offered, late in counts:
        expected = sum(1 for t in queued if t <= ts)
        # The last tick's events may still be on their way to the journal at the snapshot.
        assert expected - 3 <= offered <= expected, (counts, expected)
        assert late == 0
    assert counts[-1][1] < 1.3 * counts[0][1]  # not another warm-up per start
