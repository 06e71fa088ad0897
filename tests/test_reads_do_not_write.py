"""Reads do not write: a snapshot build, an /api/snapshot read or a /metrics scrape leaves the
aggregator as it was, even when the clock has moved on; time moves only at the hub's tick."""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.engine import T0, Engine
from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.server import keys
from wallboard.server.app import create_app

CONFIG = {"journal": {"enabled": False}, "windows": ["15m", "1h", "today"],
          "queues": {"sales": {}, "support": {}}}


def fingerprint(obj: Any, seen: set[int] | None = None) -> Any:
    """Everything reachable from `obj` as plain data (functions and cycles left out)."""
    seen = set() if seen is None else seen
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj
    if (callable(obj) and not hasattr(obj, "__dict__")) or id(obj) in seen:
        return "<skipped>"
    seen.add(id(obj))
    if isinstance(obj, dict):
        return sorted((repr(k), fingerprint(v, seen)) for k, v in obj.items())
    if isinstance(obj, (list, tuple, deque)):
        return [fingerprint(v, seen) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(repr(v) for v in obj)
    fields = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                fields[name] = getattr(obj, name)
    if not fields:
        return repr(obj)
    return [type(obj).__name__,
            sorted((k, fingerprint(v, seen)) for k, v in fields.items() if not callable(v))]


def busy(engine: Engine) -> None:
    """Calls answered, abandoned and still waiting, agents working, at T0 and later."""
    for n in range(6):
        ts = T0 + 30 * n
        engine.send({"type": "agent.state", "ts": ts, "agent": f"a{n}", "state": "busy",
                     "queues": ["sales"], "team": "red"})
        engine.send({"type": "contact.queued", "ts": ts, "queue": "sales",
                     "contact_id": f"c{n}"})
        if n % 3 == 0:
            engine.send({"type": "contact.answered", "ts": ts + 5, "queue": "sales",
                         "contact_id": f"c{n}", "wait_s": 5.0, "agent": f"a{n}"})
        elif n % 3 == 1:
            engine.send({"type": "contact.abandoned", "ts": ts + 50, "queue": "sales",
                         "contact_id": f"c{n}", "wait_s": 50.0})


def test_a_snapshot_build_changes_nothing_however_far_the_clock_moved() -> None:
    engine = Engine(CONFIG)
    busy(engine)
    engine.snapshot()  # the tick at the last event
    for later in (10.0, 1000.0, 3 * 3600.0):
        now = engine.now + later
        engine.now = now
        before = fingerprint(engine.aggregator)
        engine.builder.build(now)
        engine.builder.build()
        assert fingerprint(engine.aggregator) == before, f"a build {later} s on wrote"


def test_events_folded_since_the_tick_are_read_without_being_stored() -> None:
    """The windows batch the current bucket's events: a read adds them to copies, and reads
    exactly what the tick then stores."""
    engine = Engine(CONFIG)
    busy(engine)
    engine.snapshot()
    engine.send({"type": "contact.ended", "ts": engine.now + 1, "queue": "sales",
                 "contact_id": "c0", "agent": "a0", "talk_s": 61.3, "wrap_s": 7.1})
    engine.send({"type": "contact.queued", "ts": engine.now + 2, "queue": "support",
                 "contact_id": "s1"})
    before = fingerprint(engine.aggregator)
    read = engine.builder.build(engine.now)
    assert fingerprint(engine.aggregator) == before
    assert read["queues"]["support"]["15m"]["offered"] == 1
    assert read == engine.snapshot()  # the tick stores what the read showed


def test_the_tick_gives_the_figures_a_build_used_to() -> None:
    """Advance then build: windows that rolled over and deadlines passed show in the read."""
    engine = Engine(CONFIG)
    busy(engine)
    tree = engine.snapshot(T0 + 2 * 3600)
    sales = tree["queues"]["sales"]
    assert sales["15m"]["offered"] == 0 and sales["today"]["offered"] == 6
    assert sales["live"]["waiting"] == 2  # c2 and c5, past their SL threshold by now
    assert sales["today"]["sl_missed"] >= 2


async def test_scrapes_and_snapshot_reads_leave_the_aggregator_unchanged() -> None:
    now = [T0]
    app = create_app(parse_settings(CONFIG, "<test>"), clock=lambda: now[0])
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pipeline, agg = app[keys.PIPELINE], app[keys.AGGREGATOR]
        assert isinstance(agg, Aggregator)
        for n in range(4):
            pipeline.ingest(pipeline.parse({"type": "contact.queued", "id": f"q{n}",
                                            "ts": T0, "queue": "sales",
                                            "contact_id": f"c{n}"}, "test"))
        assert (await (await client.get("/api/snapshot")).json())[
            "queues"]["sales"]["live"]["waiting"] == 4  # a pending change: the tick runs first
        now[0] = T0 + 2 * 3600
        before = fingerprint(agg)
        for _ in range(3):
            assert (await client.get("/metrics")).status == 200
            assert (await client.get("/api/snapshot")).status == 200
        assert fingerprint(agg) == before
