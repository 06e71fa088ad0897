"""Property: for a random stream cut anywhere, a checkpoint plus the tail equals a full fold.

Both sides fold the same stored events the way the start-up restore does (the aggregator's
clock at each event's arrival); the checkpoint side stops at the cut, goes through the stored
blob (framed, checksummed, unpickled into a fresh aggregator and pipeline) and folds the rest.
Compared: the whole snapshot (every KPI of every queue, channel, team, agent and window) and
the raw totals of every window of every leaf and agent.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_kpi_properties import SHORT, T_SL, VARIANTS, contacts_strategy, events_of
from tests.test_kpi_properties import START as KPI_START
from tests.test_kpi_properties import Contact as KpiContact
from wallboard.base.clock import VirtualClock
from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest import checkpoint
from wallboard.ingest.checkpointer import Checkpointer
from wallboard.ingest.pipeline import Pipeline
from wallboard.kpi.history import History
from wallboard.kpi.snapshot import SnapshotBuilder
from wallboard.model.events import Event, parse_event
from wallboard.model.limits import WIDEST_LIMITS

START = 1_795_040_000.0  # 2026-11-18 evening in Jerusalem: streams cross midnight and shifts
CONFIG: dict[str, Any] = {
    "site": {"timezone": "Asia/Jerusalem", "shift_resets": ["07:00", "19:00"],
             "lateness_s": 600},
    "windows": ["15m", "1h", "4h", "today", "yesterday", "shift"],
    # Small limits: the streams run into them (learnt queues, refused teams and agents).
    "server": {"max_queues": 3, "max_teams": 2, "max_agents": 4},
    "queues": {"sales": {"channel": "voice",
                         "legal_rules": [{"name": "law", "limit_s": 60, "start": "queue"}]},
               "chat": {"channel": "chat",
                        "service_level": {"variant": "abandons_ignored", "threshold_s": 30}}},
}
QUEUES = ["sales", "chat", "extra", "more"]
CONTACTS = [f"c{i}" for i in range(6)]
AGENTS = [f"a{i}" for i in range(6)]
TEAMS = ["t0", "t1", "t2"]
DURATION = st.sampled_from([0.0, 3.0, 12.5, 45.0, 300.0])


@st.composite
def stored_event(draw: st.DrawFn) -> tuple[float, dict[str, Any]]:
    """(seconds since the previous arrival, an event relative to its arrival time)."""
    gap = draw(st.sampled_from([0.0, 1.0, 7.0, 35.0, 400.0, 3000.0]))
    kind = draw(st.sampled_from([
        "contact.queued", "contact.queued", "contact.answered", "contact.abandoned",
        "contact.transferred", "callback.requested", "callback.completed", "contact.ended",
        "agent.state", "agent.state", "queue.snapshot", "ticket.created", "ticket.resolved",
        "survey.response", "survey.retracted"]))
    # Mostly current, some late (past site.lateness_s), some a little ahead (skew).
    age = draw(st.sampled_from([0.0, 0.0, 5.0, 90.0, 700.0, -20.0]))
    event: dict[str, Any] = {"type": kind, "ts": -age,
                             "id": f"e{draw(st.integers(0, 40))}"}  # repeats: duplicates
    queue = draw(st.sampled_from(QUEUES))
    if kind.startswith(("contact.", "callback.")):
        event.update(queue=queue, contact_id=draw(st.sampled_from(CONTACTS)))
        if kind != "contact.queued" and draw(st.booleans()):
            event["wait_s"] = draw(DURATION)
        if kind in ("contact.answered", "contact.transferred", "contact.ended"):
            event["agent"] = draw(st.sampled_from(AGENTS))
        if kind == "contact.ended":
            event.update(talk_s=draw(DURATION), wrap_s=draw(DURATION))
    elif kind == "agent.state":
        event.update(agent=draw(st.sampled_from(AGENTS)), team=draw(st.sampled_from(TEAMS)),
                     state=draw(st.sampled_from(["available", "busy", "wrapup", "away",
                                                 "offline"])))
    elif kind == "queue.snapshot":
        event.update(queue=queue, waiting=draw(st.integers(0, 5)),
                     agents={"available": draw(st.integers(0, 3))})
    elif kind.startswith("ticket."):
        event.update(queue=queue, contact_id=draw(st.sampled_from(CONTACTS)))
    else:
        event.update(queue=queue, response_id=f"r{draw(st.integers(0, 3))}")
        if kind == "survey.response":
            event.update(kind="csat", score=draw(st.integers(1, 5)),
                         agent=draw(st.sampled_from(AGENTS)))
    return gap, event


def _stream(drawn: list[tuple[float, dict[str, Any]]]) -> list[tuple[float, Event]]:
    recv, out = START, []
    for gap, raw in drawn:
        recv += gap
        event = parse_event({**raw, "ts": recv + raw["ts"]}, "test", recv, WIDEST_LIMITS)
        out.append((recv, event))
    return out


def _fresh(at: float, config: dict[str, Any] | None = None
           ) -> tuple[Pipeline, VirtualClock, History]:
    clock = VirtualClock(at)
    settings = parse_settings(config or CONFIG, "<test>")
    pipeline = Pipeline(Aggregator(settings, clock))
    history = History({"offered": ("queues", "sales", "15m", "offered")}, settings.windows)
    return pipeline, clock, history


def _fold(pipeline: Pipeline, clock: VirtualClock, stream: list[tuple[float, Event]],
          ticks: set[int], offset: int) -> None:
    """As restore() does: each event at its arrival; `ticks`: where a hub tick advances."""
    for i, (recv, event) in enumerate(stream, offset):
        if recv > clock.now:
            clock.now = recv
        pipeline.replay(event, recv)
        if i in ticks:
            pipeline.aggregator.advance(clock.now)


def _windows(agg: Aggregator) -> dict[str, Any]:
    """Every window's raw totals, per leaf and per agent."""
    out: dict[str, Any] = {}
    for key, leaf in agg.leaves.items():
        w = leaf.windows
        w.flush()
        out[f"leaf {key}"] = ([ring.totals for ring in w.rings], w.lifetime,
                              [(p.start, p.totals, p.prev_totals) for p in w._periods])
    names = [spec.name for spec in agg.specs]
    for name, agent in agg.agent_windows.items():
        out[f"agent {name}"] = [agent.vector(window)[0] for window in names]
    return out


@given(drawn=st.lists(stored_event(), min_size=1, max_size=80), data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_checkpoint_plus_tail_equals_a_full_fold(drawn: list[tuple[float, dict[str, Any]]],
                                                 data: st.DataObject) -> None:
    stream = _stream(drawn)
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    ticks = set(data.draw(st.lists(st.integers(0, len(stream)), max_size=5), label="ticks"))
    end = stream[-1][0] + data.draw(st.sampled_from([0.0, 60.0, 5000.0]), label="later")

    full, full_clock, _ = _fresh(START)
    _fold(full, full_clock, stream, ticks, 0)

    before, before_clock, history = _fresh(START)
    _fold(before, before_clock, stream[:cut], ticks, 0)
    history.observe({"queues": {"sales": {"15m": {"offered": 3}}}}, before_clock.now)
    body = checkpoint.take(before, history)
    blob = checkpoint.frame(body, checkpoint.fingerprint(before.aggregator.settings),
                            before_clock.now, "7")
    header, stored = checkpoint.unframe(blob)
    assert header.position == "7" and header.at == before_clock.now

    after, after_clock, restored_history = _fresh(header.at)
    checkpoint.apply(stored, after, restored_history)
    assert restored_history.samples == history.samples
    _fold(after, after_clock, stream[cut:], ticks, cut)

    for pipeline in (full, after):
        pipeline.aggregator.clock = lambda: end
        pipeline.aggregator.advance(end)
    assert _windows(after.aggregator) == _windows(full.aggregator)
    expected = SnapshotBuilder(full.aggregator).build(end)
    assert SnapshotBuilder(after.aggregator).build(end) == expected
    assert dict(after.rejected) == dict(full.rejected)
    assert after.dedupe_ids == full.dedupe_ids
    # The aggregator's attributes are all accounted for: a new one must join the checkpoint
    # (FOLD_FIELDS) or say it comes from the settings or the process (FROM_SETTINGS).
    assert set(vars(full.aggregator)) == {*checkpoint.FOLD_FIELDS, *checkpoint.FROM_SETTINGS}


def test_every_global_in_a_real_checkpoint_is_allowed_and_nothing_else_loads() -> None:
    drawn = [(1.0, {"type": t, "ts": 0.0, "queue": "sales", "contact_id": "c1", "agent": "a1",
                    "team": "t0", "state": "busy", "kind": "csat", "score": 4,
                    "response_id": "r1"} | ({} if t != "queue.snapshot" else {"waiting": 1}))
             for t in ["contact.queued", "agent.state", "survey.response", "ticket.created"]]
    clean = [(gap, {k: v for k, v in e.items() if k in _FIELDS[e["type"]]}) for gap, e in drawn]
    pipeline, clock, history = _fresh(START)
    _fold(pipeline, clock, _stream(clean), set(), 0)
    fresh, _, _ = _fresh(START)
    checkpoint.apply(checkpoint.take(pipeline, history), fresh, None)  # loads: all allowed
    evil = b"\x80\x05cos\nsystem\n(S'echo hacked'\ntR."
    for body in (evil, b"garbage", checkpoint.dumps({"fold": {}})):
        try:
            checkpoint.apply(body, fresh, None)
        except checkpoint.CheckpointError as exc:
            assert exc.reason == "corrupt"
        else:
            raise AssertionError(f"{body!r} loaded")


_FIELDS = {"contact.queued": {"type", "ts", "queue", "contact_id"},
           "agent.state": {"type", "ts", "agent", "team", "state"},
           "survey.response": {"type", "ts", "queue", "kind", "score", "response_id", "agent"},
           "ticket.created": {"type", "ts", "queue", "contact_id"}}


def test_a_blob_with_a_flipped_bit_or_another_version_is_refused() -> None:
    pipeline, _, history = _fresh(START)
    blob = checkpoint.frame(checkpoint.take(pipeline, history), b"\0" * 32, START, "5")
    assert checkpoint.unframe(blob)[0].position == "5"
    for at in itertools.islice(range(0, len(blob), max(1, len(blob) // 40)), 40):
        damaged = bytearray(blob)
        damaged[at] ^= 0x10
        try:
            checkpoint.unframe(bytes(damaged))
        except checkpoint.CheckpointError as exc:
            assert exc.reason in ("corrupt", "version")
        else:
            raise AssertionError(f"a flipped bit at {at} went unnoticed")
    head = len(checkpoint.MAGIC)
    other = blob[:head] + (checkpoint.FORMAT + 1).to_bytes(2, "little") + blob[head + 2:]
    try:
        checkpoint.unframe(other)
    except checkpoint.CheckpointError as exc:
        assert exc.reason == "version"
    else:
        raise AssertionError("another format loaded")


def test_a_checkpoint_of_other_settings_is_passed_over() -> None:
    class Store:
        replicated = False

        def __init__(self, stored: list[tuple[str, bytes]]) -> None:
            self.stored = stored

        def checkpoints(self) -> list[tuple[str, bytes]]:
            return self.stored

    pipeline, _, history = _fresh(START)
    blob = checkpoint.frame(checkpoint.take(pipeline, history), b"\1" * 32, START, "5")
    loader = Checkpointer(Store([("5", blob)]), *_fresh(START)[::2])  # type: ignore[arg-type]
    assert loader.load(START - 10, START + 10) is None
    assert loader.stats.loads["fingerprint"] == 1
    good = checkpoint.frame(checkpoint.take(pipeline, history),
                            checkpoint.fingerprint(pipeline.aggregator.settings), START, "5")
    loader = Checkpointer(Store([("5", good)]), *_fresh(START)[::2])  # type: ignore[arg-type]
    assert loader.load(START + 1, START + 10) is None  # older than what a start needs
    assert loader.stats.loads["stale"] == 1
    assert loader.load(START - 10, START + 10) is not None
    assert loader.stats.loads["loaded"] == 1


@given(contacts=contacts_strategy, seed=st.randoms(use_true_random=False), data=st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_kpi_property_streams_cut_anywhere_restore_to_the_same_snapshot(
        contacts: list[KpiContact], seed: Any, data: st.DataObject) -> None:
    """The streams of tests/test_kpi_properties.py (every SL variant, disorder, duplicates)."""
    config = {"site": {"timezone": "Asia/Jerusalem", "lateness_s": 900},
              "queues": {v: {"service_level": {"threshold_s": T_SL, "short_abandon_s": SHORT,
                                               "variant": v}} for v in VARIANTS}}
    deliveries = sorted(((e["ts"] + seed.uniform(0, 300), e) for e in events_of(contacts)),
                        key=lambda d: d[0])
    deliveries += [(at + 1, e) for at, e in deliveries[:: seed.randint(2, 5)]]  # resends
    stream = [(at, parse_event(e, "test", at, WIDEST_LIMITS)) for at, e in deliveries]
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    end = max(at for at, _ in stream) + data.draw(st.sampled_from([0.0, 900.0, 7200.0]))
    full, full_clock, _ = _fresh(KPI_START, config)
    _fold(full, full_clock, stream, set(), 0)
    before, before_clock, history = _fresh(KPI_START, config)
    _fold(before, before_clock, stream[:cut], set(), 0)
    blob = checkpoint.frame(checkpoint.take(before, history),
                            checkpoint.fingerprint(before.aggregator.settings),
                            before_clock.now, "1")
    header, body = checkpoint.unframe(blob)
    after, after_clock, restored = _fresh(header.at, config)
    checkpoint.apply(body, after, restored)
    _fold(after, after_clock, stream[cut:], set(), cut)
    for pipeline in (full, after):
        pipeline.aggregator.clock = lambda: end
        pipeline.aggregator.advance(end)
    assert SnapshotBuilder(after.aggregator).build(end) == \
        SnapshotBuilder(full.aggregator).build(end)
    assert _windows(after.aggregator) == _windows(full.aggregator)
