"""Daily rollups equal the sum of the intervals stored for their day, on both stores, after
live writes, writes only where missing, bare writes, prunes, a changed time zone, an import
and a rebuild; a report read through them is the report read from the intervals."""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import sqlite3
import tempfile
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.report_traffic import (
    DAY,
    DAY_TS,
    Call,
    Clock,
    Server,
    events_of,
    month,
    post_month,
)
from wallboard.config.settings import JournalConfig, Settings, load_settings, parse_settings
from wallboard.fold.counters import FIELDS, HANDLE_SUM, HANDLED, OFFERED, SKETCH_KINDS
from wallboard.fold.intervals import IntervalRecord, decode, encode
from wallboard.fold.rollup import local_day
from wallboard.fold.sketch import MAX_BIN, ZERO_BIN
from wallboard.ingest.backfill_cli import run_import, run_rebuild
from wallboard.ingest.historian import HistorianStats, load_days, load_records, to_row
from wallboard.journal.interface import Journal
from wallboard.journal.redis_backend import RedisJournal
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.kpi.report import Request
from wallboard.kpi.reporting import report
from wallboard.server import keys

ZONE = "Europe/Berlin"
FIRST = date(2026, 10, 24)  # the next day is 25 hours long: the clocks go back
TZ = ZoneInfo(ZONE)
MIDNIGHT = int(datetime.combine(FIRST, datetime.min.time(), TZ).timestamp())
LEAVES = [("queue", "sales", "voice"), ("queue", "help", "voice"), ("queue", "chat", "chat"),
          ("queue", "", "voice"), ("team", "blue", "")]


def site(zone: str = ZONE) -> Settings:
    return parse_settings({"site": {"timezone": zone},
                           "queues": {"sales": {"channel": "voice"},
                                      "help": {"channel": "voice"},
                                      "chat": {"channel": "chat"}}}, "<test>")


counters = st.dictionaries(st.sampled_from(range(len(FIELDS))),
                           st.integers(0, 200).map(lambda n: n / 4), max_size=6)
sketches = st.lists(st.dictionaries(st.integers(ZERO_BIN, MAX_BIN), st.integers(1, 5),
                                    max_size=3), min_size=SKETCH_KINDS, max_size=SKETCH_KINDS)
records = st.lists(st.builds(
    lambda leaf, slot, c, s: IntervalRecord(MIDNIGHT + 900 * slot, *leaf, c, s),
    st.sampled_from(LEAVES), st.integers(0, 3 * 96 + 3), counters, sketches),
    min_size=1, max_size=40)
# A write: live (replace, rolled up), only where missing (rolled up), or bare (no zone: an
# older version's write, which must unmark its days).
writes = st.lists(st.tuples(st.sampled_from(["live", "missing", "bare"]), records),
                  min_size=1, max_size=4)


def by_day(rows: list[Any], tz: ZoneInfo = TZ) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        out[local_day(row[0], tz)[0]].append(row)
    return out


def expected(rows: list[Any]) -> dict[tuple[str, str, str], tuple[list[float], list[Counter[int]],
                                                                 list[tuple[int, ...]]]]:
    """An independent sum of one day's stored rows per entity (decoded as a report does)."""
    out: dict[Any, Any] = {}
    for start, level, name, channel, body in sorted(rows):
        try:
            values, sk = decode(body)
        except ValueError:
            continue
        vector, merged, slots = out.setdefault((level, name, channel), (
            [0.0] * len(FIELDS), [Counter() for _ in range(SKETCH_KINDS)], []))
        for k, v in values.items():
            vector[k] += v
        for total, one in zip(merged, sk, strict=True):
            total.update(one)
        slots.append((start, *(values.get(k, 0.0) for k in (OFFERED, HANDLED, HANDLE_SUM))))
    return out


def check(journal: Journal, zone: str = ZONE) -> set[int]:
    """Every marked day's rollups equal its stored intervals; the marked days."""
    stored = by_day(journal.intervals(0, 2**40), ZoneInfo(zone))
    covered, rolled = load_days(journal, zone, 0, 2**40)
    assert load_days(journal, zone, 0, 2**40, False)[0] == covered
    slots_of = {(r.day, r.level, r.name, r.channel): r.slots
                for r in load_days(journal, zone, 0, 2**40, False)[1]}
    got: dict[int, dict[Any, Any]] = defaultdict(dict)
    for r in rolled:
        got[r.day][(r.level, r.name, r.channel)] = r
    for day in covered:
        want = expected(stored.get(day, []))
        wider: dict[Any, Any] = {}  # every queue of a channel, and the site: sums of leaves
        for (level, name, channel), (vector, merged, _) in want.items():
            if level != "queue":
                continue
            for key in (("channel", channel, channel), ("site", "", "")) if name else \
                    (("site", "", ""),):
                into = wider.setdefault(key, ([0.0] * len(FIELDS),
                                              [Counter() for _ in range(SKETCH_KINDS)], []))
                into[0][:] = [a + b for a, b in zip(into[0], vector, strict=True)]
                for total, one in zip(into[1], merged, strict=True):
                    total.update(one)
        for key, (vector, merged, _) in wider.items():
            r = got[day].pop(key)
            assert [r.counters.get(k, 0.0) for k in range(len(FIELDS))] == \
                pytest.approx(vector), key
            assert [dict(s) for s in r.sketches] == [{b: n for b, n in m.items() if n}
                                                     for m in merged]
        assert set(got[day]) == set(want), day
        for key, (vector, merged, slots) in want.items():
            r = got[day][key]
            assert [r.counters.get(k, 0.0) for k in range(len(FIELDS))] == \
                pytest.approx(vector), key
            assert [dict(s) for s in r.sketches] == [{b: n for b, n in m.items() if n}
                                                     for m in merged]
            assert list(zip(*slots_of[(day, *key)], strict=True)) == slots
            assert r.first == slots[0][0]
    return covered


def documents(journal: Journal, request: Request, zone: str = ZONE) -> tuple[dict, dict]:
    """The report from the intervals alone, and through the rollups."""
    cfg = site(zone)
    plain = report(lambda s, u: load_records(journal, s, u), request, cfg)
    stats = HistorianStats()
    rolled = report(lambda s, u: load_records(journal, s, u), request, cfg, (), None,
                    lambda s, u, bodies: load_days(journal, zone, s, u, bodies, stats))
    return plain, rolled


REQUESTS = [Request(FIRST, FIRST + timedelta(days=2), "1d"),
            Request(FIRST, FIRST + timedelta(days=9), "1d", frozenset({"sales", "chat"})),
            Request(FIRST + timedelta(days=1), FIRST + timedelta(days=1), "15m"),
            Request(FIRST + timedelta(days=7), FIRST + timedelta(days=9), "1d"),  # forecast
            Request(FIRST + timedelta(days=8), FIRST + timedelta(days=8), "1h"),
            Request(FIRST + timedelta(days=8), FIRST + timedelta(days=8), "15m",
                    frozenset({"sales"}))]


async def exercise(journal: Journal, ops: list[tuple[str, list[IntervalRecord]]]) -> None:
    """Apply the writes, check the rollups after each, catch up, check the reports."""
    last: dict[int, str] = {}
    for kind, recs in ops:
        rows = [to_row(r) for r in recs]
        await journal.save_intervals(rows, replace=kind != "missing",
                                     zone=None if kind == "bare" else ZONE)
        for day in by_day(rows):
            last[day] = kind
        covered = check(journal)
        # A day last written with the zone is marked; one last written bare is not.
        assert {d for d, k in last.items() if k != "bare"} <= covered
        assert not {d for d, k in last.items() if k == "bare"} & covered
    await journal.roll_up(ZONE, 0)
    assert check(journal) >= set(last)
    for request in REQUESTS:
        plain, rolled = documents(journal, request)
        assert rolled == plain, request


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes)
def test_sqlite_rollups_are_the_sum_of_the_stored_intervals(
        ops: list[tuple[str, list[IntervalRecord]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async def run() -> None:
            journal = SqliteJournal(JournalConfig(data_dir=tmp))
            journal.open()
            journal.start()
            try:
                await exercise(journal, ops)
            finally:
                await journal.close()
        asyncio.run(run())


_KEYS = itertools.count()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=writes)
def test_redis_rollups_are_the_sum_of_the_stored_intervals(
        redis_server: Any, ops: list[tuple[str, list[IntervalRecord]]]) -> None:
    async def run() -> None:
        journal = RedisJournal(JournalConfig(backend="redis", url=redis_server.url,
                                             key=f"r{next(_KEYS)}", timeout_s=5))
        journal.open()
        journal.start()
        try:
            await exercise(journal, ops)
        finally:
            await journal.close()
    asyncio.run(run())


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_changed_zone_and_a_prune_roll_up_again(tmp_path: Path, backend: str,
                                                        request: pytest.FixtureRequest) -> None:
    journal: Journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path))) \
        if backend == "sqlite" else RedisJournal(JournalConfig(
            backend="redis", url=request.getfixturevalue("redis_server").url, timeout_s=5))
    journal.open()
    journal.start()
    try:
        recs = [IntervalRecord(MIDNIGHT + 900 * slot, *leaf, {OFFERED: 1.0 + slot % 3}, [{}] * 4)
                for slot in range(0, 3 * 96, 5) for leaf in LEAVES]
        await journal.save_intervals([to_row(r) for r in recs], replace=True, zone=ZONE)
        assert len(check(journal)) == 3
        other = "America/New_York"  # the site moved: its local days are other spans
        assert not load_days(journal, other, 0, 2**40)[0]
        assert await journal.roll_up(other, 0) == 4  # New York's days touched: 4
        assert not load_days(journal, ZONE, 0, 2**40)[0]  # the old zone's are gone
        assert len(check(journal, other)) == 4
        for request in REQUESTS[:3]:
            plain, rolled = documents(journal, request, other)
            assert rolled == plain
        # A prune inside a day drops that day's rollup: it is read from its intervals.
        cut = MIDNIGHT + 86_400 + 3600
        await journal.save_intervals([], replace=True, prune_before=cut, zone=other)
        covered = check(journal, other)
        assert covered and min(covered) >= cut
        plain, rolled = documents(journal, REQUESTS[0], other)
        assert rolled == plain
    finally:
        await journal.close()


async def test_a_rollup_that_does_not_decode_is_counted_and_the_day_read_from_intervals(
        tmp_path: Path) -> None:
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path)))
    journal.open()
    journal.start()
    try:
        recs = [IntervalRecord(MIDNIGHT + 900 * slot, *leaf, {OFFERED: 2.0}, [{3: 1}, {}, {}, {}])
                for slot in range(40, 60) for leaf in LEAVES]
        await journal.save_intervals([to_row(r) for r in recs], replace=True, zone=ZONE)
        plain = documents(journal, REQUESTS[0])[0]
    finally:
        await journal.close()
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("UPDATE rollups SET body = X'00' WHERE name = 'sales'")
        con.execute("UPDATE rollups SET slots = '[]' WHERE name = 'chat'")
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path)))
    journal.open(writable=False)
    stats = HistorianStats()
    assert not load_days(journal, ZONE, 0, 2**40, True, stats)[0]
    assert stats.unreadable == 1  # the body
    assert not load_days(journal, ZONE, 0, 2**40, False, stats)[0]
    assert stats.unreadable == 2  # the slots
    assert documents(journal, REQUESTS[0])[1] == plain


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
                        (encode({OFFERED: 12345.0}, [{}] * SKETCH_KINDS), day))
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
