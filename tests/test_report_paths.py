"""The report's cheaper read paths give the same document: the forecast's offered-only
records, the queue filter before decoding, and rows summed per queue first (checked against
a naive recount of the records), in the process and through `wallboard report`; corrupt
bodies are counted, never raised."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import require_program
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.fold.counters import FIELDS, OFFERED, SKETCH_KINDS
from wallboard.fold.intervals import IntervalRecord, decode, decode_offered, encode
from wallboard.fold.sketch import ZERO_BIN, merge_sketches
from wallboard.ingest.historian import HistorianStats, load_offered, load_records, to_row
from wallboard.journal.interface import IntervalRow
from wallboard.journal.intervals import store
from wallboard.journal.redis_backend import RedisJournal
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.kpi.formulas import window_kpis
from wallboard.kpi.report import Request, bucket
from wallboard.kpi.reporting import report

ZONE = "Europe/Berlin"
DAY = date(2026, 10, 25)  # a Sunday the clocks go back: a 25-hour local day
SETTINGS = parse_settings({"site": {"timezone": ZONE},
                           "queues": {"sales": {"channel": "voice"},
                                      "help": {"channel": "voice"},
                                      "chat": {"channel": "chat"}}}, "<test>")
LEAVES = [("queue", "sales", "voice"), ("queue", "help", "voice"), ("queue", "chat", "chat"),
          ("queue", "", "voice"), ("team", "blue", "")]
MIDNIGHT = int(datetime.combine(DAY, datetime.min.time(), ZoneInfo(ZONE)).timestamp())


class Store:
    """The journal's interval reads over rows in memory."""

    def __init__(self, rows: list[IntervalRow]) -> None:
        self.rows = rows

    def intervals(self, since: int, until: int,
                  queues: frozenset[str] = frozenset()) -> list[IntervalRow]:
        return sorted((r for r in self.rows if since <= r[0] < until
                       and (not queues or (r[1] == "queue" and r[2] in queues))),
                      key=lambda r: r[0])


counters = st.dictionaries(st.sampled_from(range(len(FIELDS))),
                           st.integers(0, 50).map(float), max_size=6)
# Bins as the fold writes them (decode moves others to the edge bins: test_interval_properties).
sketches = st.lists(st.dictionaries(st.integers(ZERO_BIN, 900), st.integers(1, 5), max_size=4),
                    min_size=SKETCH_KINDS, max_size=SKETCH_KINDS)
records = st.lists(st.builds(
    lambda leaf, week, slot, c, s: IntervalRecord(
        MIDNIGHT - 7 * 86_400 * week + 900 * slot, *leaf, c, s),
    st.sampled_from(LEAVES), st.integers(0, 9), st.integers(0, 99), counters, sketches),
    max_size=60, unique_by=lambda r: (r.start, r.level, r.name, r.channel))


def documents(rows: list[IntervalRow], request: Request) -> tuple[dict, dict]:
    """The report read the full way (every body decoded), and the way the server reads it."""
    store, queues = Store(rows), request.queues
    full = report(lambda s, u: load_records(store, s, u), request, SETTINGS)
    fast = report(lambda s, u: load_records(store, s, u, None, queues), request, SETTINGS, (),
                  lambda s, u: load_offered(store, s, u, None, queues))
    return full, fast


@settings(max_examples=60, deadline=None)
@given(records, st.sampled_from(["15m", "1h", "1d"]),
       st.sampled_from([frozenset(), frozenset({"sales"}), frozenset({"sales", "chat"})]))
def test_cheaper_paths_give_the_same_document(recs: list[IntervalRecord], width: str,
                                              queues: frozenset[str]) -> None:
    rows = [to_row(r) for r in recs]
    full, fast = documents(rows, Request(DAY, DAY, width, queues))
    assert fast == full


@settings(max_examples=60, deadline=None)
@given(records, st.sampled_from(["15m", "1h", "1d"]))
def test_rows_match_a_naive_recount_of_the_records(recs: list[IntervalRecord],
                                                   width: str) -> None:
    tz = ZoneInfo(ZONE)
    doc = report(lambda s, u: load_records(Store([to_row(r) for r in recs]), s, u),
                 Request(DAY, DAY, width), SETTINGS)
    day = [r for r in recs if MIDNIGHT <= r.start < MIDNIGHT + 25 * 3600]
    for row in doc["rows"]:
        if row["level"] == "team":
            continue
        start = int(datetime.fromisoformat(row["start"]).timestamp())
        members = [r for r in day if r.level == "queue" and bucket(r.start, tz, width)[0] == start
                   and (row["level"] == "site"
                        or (row["level"] == "channel" and r.name and r.channel == row["channel"])
                        or (row["level"] == "queue" and r.name == row["queue"]))]
        vector = [sum(r.counters.get(k, 0.0) for r in members) for k in range(len(FIELDS))]
        merged: list[dict[int, int]] = [{} for _ in range(SKETCH_KINDS)]
        for r in members:
            merge_sketches(merged, r.sketches)
        want = window_kpis(vector, merged)
        for name in ("offered", "answered", "abandoned", "asa_s", "service_level",
                     "wait_p90_s"):
            assert row[name] == want[name], (row, name)


def test_offered_alone_reads_as_the_full_decode_does() -> None:
    body = encode({OFFERED: 7.0, 3: 2.5}, [{1: 2}, {}, {}, {}])
    assert decode_offered(body) == decode(body)[0][OFFERED] == 7.0
    assert decode_offered(b'{"c": {"offered": "many"}}') == 0.0 == \
        decode(b'{"c": {"offered": "many"}}')[0].get(OFFERED, 0.0)
    assert decode_offered(b'{"c": {}}') == 0.0
    for bad in (b"[1, 2]", b"nul", b'{"c": 3}'):
        with pytest.raises((ValueError, TypeError)):
            decode_offered(bad)


def test_corrupt_bodies_are_counted_and_left_out_on_both_paths() -> None:
    good = to_row(IntervalRecord(MIDNIGHT, "queue", "sales", "voice", {OFFERED: 3.0},
                                 [{}, {}, {}, {}]))
    rows = [good, (MIDNIGHT, "queue", "help", "voice", b"\xff not json"),
            (MIDNIGHT, "queue", "chat", "chat", b"[1]"),
            (MIDNIGHT + 900, "queue", "sales", "voice", b'{"c": {"offered": 1}, "s": [5]}')]
    store = Store(rows)
    stats = HistorianStats()
    full = load_records(store, MIDNIGHT, MIDNIGHT + 86_400, stats)
    assert [r.name for r in full] == ["sales"] and stats.unreadable == 3
    stats = HistorianStats()
    offered = load_offered(store, MIDNIGHT, MIDNIGHT + 86_400, stats)
    # The offered path reads no sketch: the body with a broken sketch still gives its offered.
    assert [(r.name, r.counters) for r in offered] == [("sales", {OFFERED: 3.0}),
                                                        ("sales", {OFFERED: 1.0})]
    assert stats.unreadable == 2
    # The queue filter applies before decoding: the corrupt rows of other queues are not read.
    stats = HistorianStats()
    only = load_records(store, MIDNIGHT, MIDNIGHT + 86_400, stats,
                        frozenset({"sales"}))
    assert len(only) == 1 and stats.unreadable == 1
    assert (DAY - timedelta(days=7)).weekday() == DAY.weekday()


def test_the_cli_reads_the_store_as_the_full_path_does(tmp_path: Path) -> None:
    rng = random.Random(5)
    recs = [IntervalRecord(MIDNIGHT - 7 * 86_400 * week + 900 * slot, *leaf,
                           {OFFERED: float(rng.randint(0, 9)), 1: float(rng.randint(0, 5))},
                           [{rng.randint(0, 400): 1}, {}, {}, {}])
            for week in range(6) for slot in range(0, 96, 3) for leaf in LEAVES]
    rows = [to_row(r) for r in recs] + [(MIDNIGHT, "queue", "zz", "voice", b"not json")]
    journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path / "data")))
    journal.open()
    asyncio.run(journal.close())
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / DB_NAME,
                                            isolation_level=None)) as con:
        store(con, rows, True, None)
    config = tmp_path / "wallboard.yaml"
    config.write_text(yaml.safe_dump({"site": {"timezone": ZONE},
                                      "queues": {name: {"channel": cfg.channel} for name, cfg
                                                 in SETTINGS.queues.items()},
                                      "journal": {"data_dir": str(tmp_path / "data")}}))
    for extra, queues in (([], frozenset()), (["--queue", "sales"], frozenset({"sales"}))):
        done = subprocess.run([sys.executable, "-m", "wallboard", "report", "--config",
                               str(config), "--from", DAY.isoformat(), "--interval", "1h",
                               "--format", "json", *extra], capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        want = report(lambda s, u: load_records(Store(rows), s, u),
                      Request(DAY, DAY, "1h", queues), SETTINGS)
        got = orjson.loads(done.stdout)
        assert got["rows"] == want["rows"] and any(r["forecast_offered"] for r in got["rows"])


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_the_store_reads_the_rows_of_some_queues_alone(backend: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest
                                                             ) -> None:
    if backend == "redis":
        require_program("/usr/bin/redis-server", "Debian package redis-server")
        server = request.getfixturevalue("redis_server")
        journal: Any = RedisJournal(JournalConfig(backend="redis", url=server.url))
    else:
        journal = SqliteJournal(JournalConfig(data_dir=str(tmp_path / "data")))
    rows = [(MIDNIGHT + 900 * slot, level, name, channel, b'{"c": {"offered": %d}}' % slot)
            for slot in range(8) for level, name, channel in LEAVES]
    journal.open()
    journal.start()
    try:
        await journal.save_intervals(rows, replace=True)
        since, until = MIDNIGHT + 900, MIDNIGHT + 900 * 6
        assert sorted(journal.intervals(since, until)) == \
            sorted(r for r in rows if since <= r[0] < until)
        for queues in ({"sales"}, {"sales", "chat", "nobody"}, {"blue"}, {""}):
            want = sorted(r for r in rows if since <= r[0] < until and r[1] == "queue"
                          and r[2] in queues)
            got = journal.intervals(since, until, frozenset(queues))
            assert sorted(got) == want and [r[0] for r in got] == sorted(r[0] for r in got)
    finally:
        await journal.close()
