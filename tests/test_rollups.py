"""Daily rollups equal the sum of the intervals stored for their day, on both stores, after
live writes, writes only where missing, bare writes, prunes, a changed time zone, an import
and a rebuild; a report read through them is the report read from the intervals."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import tempfile
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wallboard.config.settings import JournalConfig, Settings, parse_settings
from wallboard.fold.counters import FIELDS, HANDLE_SUM, HANDLED, OFFERED, SKETCH_KINDS
from wallboard.fold.intervals import IntervalRecord, decode
from wallboard.fold.rollup import local_day
from wallboard.fold.sketch import MAX_BIN, ZERO_BIN
from wallboard.ingest.historian import HistorianStats, load_days, load_records, to_row
from wallboard.journal.interface import Journal
from wallboard.journal.redis_backend import RedisJournal
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.kpi.report import Request
from wallboard.kpi.reporting import report

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
    assert load_days(journal, zone, 0, 2**40, "slots")[0] == covered
    slots_of = {(r.day, r.level, r.name, r.channel): r.slots
                for r in load_days(journal, zone, 0, 2**40, "slots")[1]}
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
                    lambda s, u, part: load_days(journal, zone, s, u, part, stats))
    return plain, rolled


REQUESTS = [Request(FIRST, FIRST + timedelta(days=2), "1d"),
            Request(FIRST, FIRST + timedelta(days=9), "1d", frozenset({"sales", "chat"})),
            Request(FIRST + timedelta(days=1), FIRST + timedelta(days=1), "15m"),
            Request(FIRST + timedelta(days=7), FIRST + timedelta(days=9), "1d"),  # forecast
            Request(FIRST + timedelta(days=8), FIRST + timedelta(days=8), "1h"),
            Request(FIRST + timedelta(days=8), FIRST + timedelta(days=8), "15m",
                    frozenset({"sales"}))]


@contextlib.asynccontextmanager
async def started(journal: Journal) -> AsyncIterator[Journal]:
    """The journal opened and started; closed after."""
    journal.open()
    journal.start()
    try:
        yield journal
    finally:
        await journal.close()


def of_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Journal:
    """A journal on SQLite in `tmp_path`, or on the test's Redis."""
    if backend == "sqlite":
        return SqliteJournal(JournalConfig(data_dir=str(tmp_path)))
    return RedisJournal(JournalConfig(backend="redis", timeout_s=5,
                                      url=request.getfixturevalue("redis_server").url))


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
            async with started(SqliteJournal(JournalConfig(data_dir=tmp))) as journal:
                await exercise(journal, ops)
        asyncio.run(run())


_KEYS = itertools.count()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=writes)
def test_redis_rollups_are_the_sum_of_the_stored_intervals(
        redis_server: Any, ops: list[tuple[str, list[IntervalRecord]]]) -> None:
    async def run() -> None:
        async with started(RedisJournal(JournalConfig(
                backend="redis", url=redis_server.url, key=f"r{next(_KEYS)}",
                timeout_s=5))) as journal:
            await exercise(journal, ops)
    asyncio.run(run())


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_changed_zone_and_a_prune_roll_up_again(tmp_path: Path, backend: str,
                                                        request: pytest.FixtureRequest) -> None:
    async with started(of_backend(backend, tmp_path, request)) as journal:
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


async def test_a_rollup_that_does_not_decode_is_counted_and_the_day_read_from_intervals(
        tmp_path: Path) -> None:
    async with started(SqliteJournal(JournalConfig(data_dir=str(tmp_path)))) as journal:
        recs = [IntervalRecord(MIDNIGHT + 900 * slot, *leaf, {OFFERED: 2.0}, [{3: 1}, {}, {}, {}])
                for slot in range(40, 60) for leaf in LEAVES]
        await journal.save_intervals([to_row(r) for r in recs], replace=True, zone=ZONE)
        plain = documents(journal, REQUESTS[0])[0]
    with sqlite3.connect(tmp_path / DB_NAME) as con:
        con.execute("UPDATE rollups SET body = X'00' WHERE name = 'sales'")
        con.execute("UPDATE rollups SET slots = '[]' WHERE name = 'chat'")
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path)))
    journal.open(writable=False)
    stats = HistorianStats()
    assert not load_days(journal, ZONE, 0, 2**40, "rows", stats)[0]
    assert stats.unreadable == 1  # the body
    assert not load_days(journal, ZONE, 0, 2**40, "slots", stats)[0]
    assert stats.unreadable == 2  # the slots
    assert documents(journal, REQUESTS[0])[1] == plain


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_day_holding_an_interval_that_does_not_decode_stays_unrolled_and_counted(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    async with started(of_backend(backend, tmp_path, request)) as journal:
        recs = [IntervalRecord(MIDNIGHT + 900 * slot, *leaf, {OFFERED: 2.0}, [{3: 1}, {}, {}, {}])
                for slot in range(40, 2 * 96, 7) for leaf in LEAVES]
        await journal.save_intervals([to_row(r) for r in recs], replace=True, zone=ZONE)
        assert check(journal) == {MIDNIGHT, MIDNIGHT + 86_400}
        torn = (MIDNIGHT + 86_400 + 900 * 50, "queue", "sales", "voice", b"\xff not json")
        await journal.save_intervals([torn], replace=True, zone=ZONE)
        assert check(journal) == {MIDNIGHT}  # the second day is read from its intervals
        await journal.roll_up(ZONE, 0)
        assert check(journal) == {MIDNIGHT}  # and a catch-up leaves it so
        stats = HistorianStats()
        for n in (1, 2):  # every report of that day counts the row again
            report(lambda s, u: load_records(journal, s, u, stats),
                   Request(FIRST, FIRST + timedelta(days=1), "1d"), site(), (), None,
                   lambda s, u, b: load_days(journal, ZONE, s, u, b, stats))
            assert stats.unreadable == n
