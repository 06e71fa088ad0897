"""Rollups through the real paths: a live server and its restart, an import and a rebuild
(by hand and random), each leaving the rollups equal to their intervals and the reports the
same read either way."""

from __future__ import annotations

import argparse
import asyncio
import io
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.report_traffic import DAY, DAY_TS, Call, Clock, Server, events_of, month, post_month
from tests.test_rollups import FIRST, MIDNIGHT, REQUESTS, ZONE, by_day, check
from wallboard.config.settings import Settings, load_settings
from wallboard.fold.counters import OFFERED, SKETCH_KINDS
from wallboard.fold.intervals import IntervalRecord
from wallboard.fold.rollup import encode_day
from wallboard.ingest.backfill_cli import run_import, run_rebuild
from wallboard.ingest.historian import load_days, load_records
from wallboard.journal.interface import Journal
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.kpi.report import Request
from wallboard.kpi.reporting import report
from wallboard.server import keys


def _plain(journal: Journal, request: Request, cfg: Settings,
           pending: list[IntervalRecord]) -> dict[str, Any]:
    """The report from the intervals alone, as JSON gives it."""
    doc = report(lambda s, u: load_records(journal, s, u), request, cfg, pending)
    return dict(orjson.loads(orjson.dumps(doc)))


async def test_live_writes_and_a_restart_keep_rollups_equal_and_reports_the_same(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = Clock(DAY_TS - 29 * 86_400)
    month_1d = f"from={DAY - timedelta(days=28)}&to={DAY}&interval=1d"
    requests = {month_1d: Request(DAY - timedelta(days=28), DAY, "1d"),
                f"from={DAY}&interval=15m": Request(DAY, DAY, "15m")}
    async with Server(data, clock) as server:
        await post_month(server, month())
        historian, journal = server.app[keys.HISTORIAN], server.app[keys.JOURNAL]
        assert historian is not None and journal is not None
        await historian.flush()  # live writes, each rolled up
        zone = server.settings.site.timezone
        stored = by_day(journal.intervals(0, 2**40), ZoneInfo(zone))
        assert await asyncio.to_thread(check, journal, zone) == set(stored)
        assert len(stored) >= 28
        for query, request in requests.items():
            status, body, _ = await server.report(query)
            assert status == 200, body
            assert orjson.loads(body) == _plain(journal, request, server.settings,
                                                historian.pending())
        # The API reads the rollups indeed: one changed by hand (its intervals untouched,
        # so its day stays marked) shows in the daily report.
        with sqlite3.connect(data / DB_NAME) as con:
            (day,), = con.execute("SELECT day FROM rollups WHERE name = 'sales' "
                                  "ORDER BY day DESC LIMIT 1 OFFSET 1")
            con.execute("UPDATE rollups SET body = ? WHERE name = 'sales' AND day = ?",
                        (encode_day([0.0] * OFFERED + [12345.0], [{}] * SKETCH_KINDS), day))
        status, body, _ = await server.report(month_1d)
        start = datetime.fromtimestamp(day, ZoneInfo(zone)).isoformat()
        assert [r["offered"] for r in orjson.loads(body)["rows"]
                if r["queue"] == "sales" and r["start"] == start] == [12345]
    with sqlite3.connect(data / DB_NAME) as con:  # as after an upgrade: no rollup at all
        con.execute("DELETE FROM rollups")
        con.execute("DELETE FROM rollup_days")
        con.execute("DELETE FROM checkpoints")  # a full replay, written where missing
    async with Server(data, clock) as server:
        historian, journal = server.app[keys.HISTORIAN], server.app[keys.JOURNAL]
        assert historian is not None and journal is not None
        await historian.catch_up()  # (also under way at start: the same days, idempotent)
        assert await asyncio.to_thread(check, journal, zone) == set(stored)
        for query, request in requests.items():
            status, body, _ = await server.report(query)
            assert status == 200, body
            assert orjson.loads(body) == _plain(journal, request, server.settings,
                                                historian.pending())


def test_an_import_and_a_rebuild_leave_rollups_equal_to_their_intervals(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "wallboard.yaml"
    config.write_bytes(orjson.dumps({
        "site": {"timezone": ZONE},
        "queues": {"sales": {"channel": "voice"}, "chat": {"channel": "chat"}},
        "journal": {"data_dir": str(data), "batch_ms": 0}}))
    events = events_of([c for calls in month().values() for c in calls])
    path = tmp_path / "month.ndjson"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    code = run_import(argparse.Namespace(file=str(path), config=str(config), data_dir=None,
                                         source="import"), io.StringIO(), io.StringIO())
    assert code == 0
    cfg = load_settings(str(config))
    requests = [Request(DAY - timedelta(days=28), DAY, "1d"), Request(DAY, DAY, "15m"),
                Request(DAY - timedelta(days=2), DAY, "1h", frozenset({"chat"}))]

    def verify() -> None:
        journal = SqliteJournal(cfg.journal)
        journal.open(writable=False)
        stored = by_day(journal.intervals(0, 2**40))
        assert check(journal) == set(stored) and len(stored) >= 28
        for request in requests:
            plain = report(lambda s, u: load_records(journal, s, u), request, cfg)
            rolled = report(lambda s, u: load_records(journal, s, u), request, cfg, (), None,
                            lambda s, u, b: load_days(journal, ZONE, s, u, b))
            assert rolled == plain, request

    verify()
    code = run_rebuild(argparse.Namespace(first=str(DAY - timedelta(days=3)),
                                          last=str(DAY - timedelta(days=1)),
                                          config=str(config), data_dir=None),
                       io.StringIO(), io.StringIO())
    assert code == 0
    verify()


contacts = st.lists(st.builds(
    lambda i, queue, day, at, wait, answered, handle: Call(
        f"c{i}", queue, MIDNIGHT + day * 86_400 + at, wait, answered, handle),
    st.integers(0, 10**6), st.sampled_from(["sales", "chat"]), st.integers(0, 9),
    st.floats(0, 86_399, allow_nan=False), st.floats(0.5, 300, allow_nan=False),
    st.booleans(), st.floats(1, 900, allow_nan=False)),
    min_size=1, max_size=60, unique_by=lambda c: c.cid)


@settings(max_examples=12, deadline=None)
@given(contacts, st.integers(0, 9), st.integers(0, 3))
def test_imports_and_rebuilds_of_random_days_leave_rollups_equal_to_their_intervals(
        calls: list[Call], first: int, more: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = base / "wallboard.yaml"
        config.write_bytes(orjson.dumps({
            "site": {"timezone": ZONE},
            "queues": {"sales": {"channel": "voice"}, "chat": {"channel": "chat"}},
            "journal": {"data_dir": str(base / "data"), "batch_ms": 0}}))
        path = base / "events.ndjson"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events_of(calls)))
        assert run_import(argparse.Namespace(file=str(path), config=str(config), data_dir=None,
                                             source="import"), io.StringIO(),
                          io.StringIO()) == 0
        cfg = load_settings(str(config))

        def verify() -> None:
            journal = SqliteJournal(cfg.journal)
            journal.open(writable=False)
            stored = by_day(journal.intervals(0, 2**40))
            assert stored and check(journal) == set(stored)
            for request in REQUESTS:
                plain = report(lambda s, u: load_records(journal, s, u), request, cfg)
                rolled = report(lambda s, u: load_records(journal, s, u), request, cfg, (),
                                None, lambda s, u, b: load_days(journal, ZONE, s, u, b))
                assert rolled == plain, request

        verify()
        day = FIRST + timedelta(days=first)
        assert run_rebuild(argparse.Namespace(first=str(day), last=str(day + timedelta(days=more)),
                                              config=str(config), data_dir=None),
                           io.StringIO(), io.StringIO()) == 0
        verify()
