"""A fold that cannot be poisoned: each boundary (one event, one snapshot entity, one forecast,
one /metrics section, the hub's build) survives an exception, counts it and logs it once."""

from __future__ import annotations

import asyncio
import copy
import linecache
import logging
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_config
from tests.redisproc import RedisServer
from tests.test_poisoned_journal import fold_errors
from tests.wsclient import unframe
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.fold import counters as c
from wallboard.fold import sketch
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.guard import FoldErrors
from wallboard.fold.sketch import bin_of, quantiles
from wallboard.ingest.pipeline import Pipeline
from wallboard.ingest.restore import Restored, restore
from wallboard.journal.interface import encode as encode_event
from wallboard.journal.redis_backend import RedisJournal
from wallboard.journal.sqlite_backend import SqliteJournal
from wallboard.kpi import snapshot as snapshot_module
from wallboard.kpi.snapshot import SnapshotBuilder
from wallboard.kpi.staffing import forecast
from wallboard.model.events import Event
from wallboard.server.exposition import encode
from wallboard.server.hub import Hub

QUEUES = {"sales": {"channel": "voice"}, "chat": {"channel": "chat"}}


def queued(event_id: str, queue: str = "sales", ts: float | None = None) -> dict[str, Any]:
    return {"type": "contact.queued", "id": event_id, "ts": ts or time.time(), "queue": queue,
            "contact_id": f"c-{event_id}"}


async def eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_fold_that_raises_for_one_event_leaves_the_rest_of_its_batch_counted(
        live_server, tmp_path: Path, monkeypatch, caplog) -> None:
    real_fold = Aggregator.fold

    def fold(self: Aggregator, event: Event) -> bool:
        if event.id and event.id.startswith("boom"):
            raise RuntimeError(f"a bug met by {event.id}")
        return real_fold(self, event)

    monkeypatch.setattr(Aggregator, "fold", fold)
    data_dir = tmp_path / "data"
    live = await live_server(base_config(journal={"data_dir": str(data_dir), "batch_ms": 5}))
    caplog.set_level(logging.ERROR, logger="wallboard.fold.guard")
    status, body = await live.post([queued("a"), queued("boom1"), queued("b")])
    assert status == 202, body
    for n in (2, 3):  # the same bug again: counted, not logged again
        status, body = await live.post([queued(f"boom{n}"), queued(f"ok{n}")])
        assert status == 202, body
    snapshot = await live.get_json("/api/snapshot")
    assert snapshot["queues"]["sales"]["today"]["offered"] == 4  # a, b, ok2, ok3
    _, text = await live.get_text("/metrics")
    assert fold_errors(text)["fold"] == 3
    logged = [r for r in caplog.records if "fold error on event" in r.getMessage()]
    assert len(logged) == 1 and "boom1" in logged[0].getMessage()

    reader = SqliteJournal(JournalConfig(data_dir=str(data_dir)))
    reader.open(writable=False)  # beside the running server, as `journal stats` does
    try:
        await eventually(lambda: reader.stats().quarantined == 3)
        lines = [orjson.loads(line) for line in reader.quarantined()]
        assert [line["event"]["id"] for line in lines] == ["boom1", "boom2", "boom3"]
        assert lines[0]["stage"] == "fold"
        assert lines[0]["reason"] == "RuntimeError: a bug met by boom1"
        assert reader.stats().events == 7  # stored all the same
    finally:
        await reader.close()


def test_a_refused_fold_changes_nothing() -> None:
    now = time.time()
    agg = Aggregator(parse_settings({"queues": QUEUES}), lambda: now)
    agg.fold(Event("contact.queued", now - 5, queue="sales", contact_id="c1"))
    with pytest.raises(ValueError, match=r"wait_s: 1e\+300 outside \[0, 1e\+09\]"):
        agg.fold(Event("contact.answered", now, queue="sales", contact_id="c1", wait_s=1e300))
    assert list(agg.state.queue("sales").waiting) == ["c1"]  # still waiting, not half-answered
    vector = agg.leaves[("sales", "voice")].windows.vector("today")[0]
    assert (vector[c.OFFERED], vector[c.ANSWERED]) == (1, 0)


def test_hub_flush_survives_a_build_that_raises_and_keeps_the_previous_snapshot() -> None:
    calls = iter([{"n": 1}, RuntimeError("broken build"), {"n": 3}])

    def build() -> dict[str, Any]:
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    hub = Hub(build)
    hub.flush()
    assert (hub.seq, hub.tree) == (1, {"n": 1})
    hub.flush()  # raises inside: caught, counted, the board keeps the last snapshot
    assert (hub.seq, hub.tree) == (1, {"n": 1})
    assert hub.errors.counts["snapshot"] == 1
    hub.flush()
    assert (hub.seq, hub.tree) == (2, {"n": 3})


def test_published_numbers_are_always_json_safe() -> None:
    hub = Hub(lambda: {"q": {"nan": math.nan, "inf": -math.inf, "big": 10**300, "ok": 2.5,
                             "int": 2**63 - 1, "list": [math.inf, 1]}})
    hub.flush()
    message = orjson.loads(hub.snapshot_message())
    assert message["data"] == {"q.nan": None, "q.inf": None, "q.big": None, "q.ok": 2.5,
                               "q.int": 2**63 - 1, "q.list": [None, 1]}


def test_a_known_cause_is_counted_without_reading_source_lines(monkeypatch) -> None:
    errors = FoldErrors()

    def fail() -> None:
        raise ValueError("x")

    caught = []
    for _ in range(2):
        try:
            fail()
        except ValueError as exc:
            caught.append(exc)
    errors.record("fold", caught[0])  # logged, with its traceback: may read the source
    read: list[str] = []
    monkeypatch.setattr(linecache, "getline", lambda *args, **kw: read.append(args[0]) or "")
    errors.record("fold", caught[1])  # the same cause: counted only, on the hot path
    assert errors.counts["fold"] == 2 and read == []


def test_a_flush_with_only_scoped_clients_does_not_encode_the_whole_delta() -> None:
    state = {"queues": {"sales": {"waiting": 1}, "chat": {"waiting": math.inf}}}
    hub = Hub(lambda: copy.deepcopy(state))
    hub.flush()
    whole: list[int | None] = []
    encode_delta = hub._delta

    def counting(changes: dict[str, Any], removed: list[str], seq: int | None = None,
                 series: Any = None) -> bytes:
        whole.extend([seq] if seq is not None else [])
        return encode_delta(changes, removed, seq, series)

    hub._delta = counting  # type: ignore[method-assign]
    sent: list[str] = []

    class Outbox:
        board, scope = "b", (("queues", "sales"),)

        def offer(self, frame: bytes) -> None:
            sent.append(unframe(frame).decode())

    hub.clients.add(Outbox())  # type: ignore[arg-type]
    state["queues"]["sales"]["waiting"] = 2
    hub.flush()
    assert whole == [] and orjson.loads(sent[-1])["changes"] == {"queues.sales.waiting": 2}
    assert hub.tree["queues"]["chat"]["waiting"] is None  # made JSON-safe in the tree too


def test_one_queue_whose_kpis_raise_does_not_blank_the_snapshot(monkeypatch) -> None:
    now = time.time()
    agg = Aggregator(parse_settings({"queues": QUEUES}), lambda: now)
    for n in range(7):
        agg.fold(Event("contact.queued", now - 10, queue="sales", contact_id=f"s{n}"))
    for n in range(3):
        agg.fold(Event("contact.queued", now - 10, queue="chat", contact_id=f"c{n}"))
    real = snapshot_module.window_kpis

    def window_kpis(v: list[float], *args: Any) -> dict[str, Any]:
        if v[c.OFFERED] == 7:  # the sales queue's vector only
            raise ZeroDivisionError("a KPI bug")
        return real(v, *args)

    monkeypatch.setattr(snapshot_module, "window_kpis", window_kpis)
    tree = SnapshotBuilder(agg).build(now)
    assert tree["queues"]["chat"]["today"]["offered"] == 3
    assert tree["queues"]["sales"]["today"]["offered"] is None  # nulled, keys kept
    assert tree["queues"]["sales"]["live"]["waiting"] == 7  # its live numbers still shown
    assert tree["channels"]["chat"]["today"]["offered"] == 3
    assert tree["channels"]["voice"]["today"]["offered"] is None  # sales is all of voice
    assert tree["total"]["today"]["offered"] == 10
    assert agg.errors.counts["snapshot"] == 2 * len(agg.specs)  # queue and channel, per window


def test_metrics_survive_a_value_that_is_not_a_number() -> None:
    class Broken:
        def collect(self) -> Any:
            family = GaugeMetricFamily("huge", "an int past a float's range")
            family.add_metric([], 10**400)
            yield family

    registry = CollectorRegistry()
    registry.register(Broken())
    seen: list[Exception] = []
    text = encode(registry, seen.append).decode()
    assert "huge NaN" in text and len(seen) == 1
    assert [f.name for f in text_string_to_metric_families(text)] == ["huge"]


def test_erlang_with_a_trillion_agents_returns_within_a_time_budget() -> None:
    # A subprocess: an unbounded loop must fail this test, not hang the suite.
    code = ("import time\n"
            "from wallboard.kpi.erlang import erlang_a_metrics, erlang_c_metrics\n"
            "from wallboard.kpi.staffing import forecast\n"
            "t = time.perf_counter()\n"
            "c = erlang_c_metrics(10**12, 0.05, 180.0, 20.0)\n"
            "a = erlang_a_metrics(10**12, 0.05, 180.0, 60.0, 20.0)\n"
            "f = forecast(0.05, 180.0, 20.0, 0.8, 10**12)\n"
            "g = forecast(0.05, 180.0, 20.0, 0.8, 10**12, patience_s=60.0)\n"
            "print(time.perf_counter() - t, c.service_level, a.service_level, f, g)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 0, result.stderr
    took, sl_c, sl_a, *_ = result.stdout.split(" ", 3)
    assert float(took) < 0.1
    assert float(sl_c) == float(sl_a) == 1.0  # 9 Erlangs on 10¹² agents: nobody waits
    # More staffed than erlang.MAX_AGENTS: not computed; agents needed still is (12 here).
    assert forecast(0.05, 180.0, 20.0, 0.8, 10**12) == {
        "agents_needed": 12, "forecast_sl": None, "forecast_wait_s": None,
        "forecast_abandon": None}


def test_staffing_beyond_the_traffic_cap_is_not_computable_and_quick() -> None:
    started = time.perf_counter()
    out = forecast(1e6, 1e5, 20.0, 0.8, 5000, patience_s=60.0)
    assert out == dict.fromkeys(("agents_needed", "forecast_sl", "forecast_wait_s",
                                 "forecast_abandon"))
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize("value", [1.7976931348623157e308, 1e300, 1e16])
def test_the_sketch_clamps_huge_finite_values_to_its_range(value: float) -> None:
    bins = {bin_of(value): 1, bin_of(30.0): 1}
    top = quantiles(bins, [1.0])[0]
    assert top is not None and sketch.MAX_VALUE * 0.98 <= top <= sketch.MAX_VALUE * 1.02
    assert quantiles(bins, [0.5])[0] == pytest.approx(30.0, rel=0.01)


async def test_redis_quarantine_is_written_skipped_at_start_and_listed(
        redis_server: RedisServer) -> None:
    now = time.time()
    settings = parse_settings({"queues": QUEUES, "site": {"timezone": "UTC"},
                               "journal": {"backend": "redis", "url": redis_server.url}})
    writer = RedisJournal(settings.journal)
    writer.open()
    good = [Event("contact.queued", now - 2, id=f"g{n}", source="hook", queue="sales",
                  contact_id=f"g{n}") for n in range(3)]
    bad = Event("contact.ended", now - 1, id="bad", source="hook", queue="chat",
                contact_id="x", talk_s=1.7976931348623157e308)
    # Entries as the append script writes them (not started: a started journal's tail task
    # sometimes hangs when cancelled inside XREAD, which is not what this test is about).
    for n, events in enumerate(([*good[:2], bad], good[2:]), 1):
        writer._sync.xadd(writer.stream, {"e": f"[{','.join(map(encode_event, events))}]",
                                          "n": n, "h": ""})
    await writer.close()

    def start() -> tuple[Pipeline, RedisJournal]:
        journal = RedisJournal(settings.journal)
        journal.open()
        pipeline = Pipeline(Aggregator(settings, time.time), journal=journal)
        restore(journal, pipeline, time.time(), Restored())
        return pipeline, journal

    pipeline, journal = start()
    offered = pipeline.aggregator.leaves[("sales", "voice")].windows.vector("today")[0]
    assert offered[c.OFFERED] == 3
    assert pipeline.aggregator.errors.counts["restore"] == 1
    stats = journal.stats()
    assert stats.quarantined == 1 and list(stats.quarantine_reasons) == [
        "restore: EventError: talk_s: must be a finite number within 0..604800 (7 days)"]
    assert [orjson.loads(line)["event"]["id"] for line in journal.quarantined()] == ["bad"]
    await journal.close()

    pipeline, journal = start()  # the next start skips it
    assert pipeline.aggregator.errors.counts["restore"] == 0
    assert journal.status.skipped == 1
    await journal.close()


async def test_sqlite_marks_go_with_pruned_events_and_older_journals_open(tmp_path: Path) -> None:
    now = time.time()
    config = JournalConfig(data_dir=str(tmp_path / "data"))
    journal = SqliteJournal(config)
    journal.open()
    journal.start()
    old = Event("contact.queued", now - 100, id="old", source="hook", queue="sales",
                contact_id="o")
    new = Event("contact.queued", now, id="new", source="hook", queue="sales", contact_id="n")
    await journal.append([old], now - 100)
    await journal.append([new], now)
    journal.quarantine([(now - 100, old, "fold", "a reason"), (now, new, "fold", "another")])
    await eventually(lambda: journal.stats().quarantined == 2)
    assert await journal.prune(now - 50) == 1
    stats = journal.stats()
    assert (stats.events, stats.quarantined) == (1, 1)
    assert stats.quarantine_reasons == {"fold: another": 1}
    await journal.close()

    # A journal written before the quarantine existed: read-only it has none, and reads all.
    with sqlite3.connect(tmp_path / "data" / "journal.sqlite3") as con:
        con.execute("DROP TABLE quarantine")
    reader = SqliteJournal(config)
    reader.open(writable=False)
    assert reader.stats().quarantined == 0
    assert [e.id for batch in reader.read(0) for _, e in batch] == ["new"]
    assert list(reader.quarantined()) == []
    await reader.close()
    writer = SqliteJournal(config)  # opened writable, it gets the table
    writer.open()
    assert writer.stats().quarantined == 0
    await writer.close()


def test_a_forecast_that_raises_reads_not_computable(monkeypatch) -> None:
    now = time.time()
    agg = Aggregator(parse_settings({"queues": QUEUES}), lambda: now)
    for n in range(5):
        agg.fold(Event("contact.queued", now - 100, queue="sales", contact_id=f"s{n}"))
        agg.fold(Event("contact.answered", now - 90, queue="sales", contact_id=f"s{n}",
                       wait_s=10.0))
        agg.fold(Event("contact.ended", now - 50, queue="sales", contact_id=f"s{n}",
                       talk_s=40.0))
    assert SnapshotBuilder(agg).build(now)["queues"]["sales"]["live"]["agents_needed"] == 1

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise OverflowError("a forecast bug")

    monkeypatch.setattr(snapshot_module, "forecast", broken)
    tree = SnapshotBuilder(agg).build(now)
    live = tree["queues"]["sales"]["live"]
    assert (live["agents_needed"], live["forecast_sl"]) == (None, None)
    assert live["waiting"] == 0 and tree["queues"]["sales"]["today"]["answered"] == 5
    assert agg.errors.counts["staffing"] == 2  # one forecast per queue: sales and chat


async def test_a_metrics_section_that_raises_is_left_out_of_that_scrape(live_server,
                                                                        monkeypatch) -> None:
    from wallboard.server.exporter import WallboardCollector

    def broken(self: WallboardCollector, tree: dict[str, Any]) -> Any:
        raise KeyError("a collector bug")
        yield  # a generator, like the real section

    monkeypatch.setattr(WallboardCollector, "_live", broken)
    live = await live_server()
    status, text = await live.get_text("/metrics")
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "wallboard_queue_contacts_waiting" not in names  # the broken section
    assert {"wallboard_queue_info", "wallboard_events_accepted"} <= names  # the others
    assert fold_errors(text)["exporter"] == 1


async def test_a_stored_row_that_does_not_decode_is_quarantined_not_fatal(tmp_path: Path) -> None:
    now = time.time()
    settings = parse_settings({"queues": QUEUES, "site": {"timezone": "UTC"},
                               "journal": {"data_dir": str(tmp_path / "data")}})
    journal = SqliteJournal(settings.journal)
    journal.open()
    journal.start()
    for n in range(2):
        await journal.append([Event("contact.queued", now - 5, id=f"g{n}", source="hook",
                                    queue="sales", contact_id=f"g{n}")], now - 5 + n)
    await journal.close()
    with sqlite3.connect(tmp_path / "data" / "journal.sqlite3") as con:  # a torn body
        con.execute("INSERT INTO events (recv, ts, body) VALUES (?, ?, ?)",
                    (now - 4.5, now - 5, '["contact.queued", 1'))

    def start() -> tuple[Pipeline, SqliteJournal]:
        journal = SqliteJournal(settings.journal)
        journal.open()
        pipeline = Pipeline(Aggregator(settings, time.time), journal=journal)
        restore(journal, pipeline, time.time(), Restored())
        return pipeline, journal

    for _ in range(2):  # the first start quarantines the row, the second skips it
        pipeline, journal = start()
        vector = pipeline.aggregator.leaves[("sales", "voice")].windows.vector("today")[0]
        assert vector[c.OFFERED] == 2
        assert journal.status.skipped == 1
        stats = journal.stats()
        assert stats.quarantined == 1
        assert next(iter(stats.quarantine_reasons)).startswith("restore: JSONDecodeError")
        [line] = [orjson.loads(line) for line in journal.quarantined()]
        assert (line["event"], line["body"]) == (None, '["contact.queued", 1')
        await journal.close()
