"""`wallboard journal import`: events stored at their own times, their intervals rebuilt.

The stored interval rows are checked against a recount from the raw events made here, never
from the fold: offered at queue time, answered and abandoned at their own time, handled at
contact.ended, tickets created at their creation, per queue per 15-minute interval.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpdesk_events import helpdesk_events
from tests.hostile_events import Age, hostile_event, valid_event
from tests.serverproc import journal_config
from wallboard.config.settings import load_settings
from wallboard.fold import counters as c
from wallboard.ingest import backfill
from wallboard.ingest.backfill_cli import run_import
from wallboard.ingest.historian import from_row
from wallboard.ingest.reportcli import run_report
from wallboard.journal.interface import IntervalRow
from wallboard.journal.redis_backend import RedisJournal
from wallboard.journal.sqlite_backend import SqliteJournal
from wallboard.model.events import parse_event

HELPDESK_CSV = Path(__file__).resolve().parent / "data" / "helpdesk" / "helpdesk.csv"
ROOT = Path(__file__).resolve().parent.parent
QUEUES = {"sales": "voice", "support": "voice", "chat": "chat"}
INTERVAL = 900
DAY = 86_400
COUNTED = {"contact.queued": c.OFFERED, "contact.answered": c.ANSWERED,
           "contact.abandoned": c.ABANDONED, "contact.ended": c.HANDLED,
           "ticket.created": c.TICKETS_CREATED}


def config_file(tmp_path: Path, data_dir: Path) -> Path:
    path = tmp_path / "wallboard.yaml"
    path.write_bytes(orjson.dumps({
        "queues": {q: {"channel": ch} for q, ch in QUEUES.items()},
        "journal": {"data_dir": str(data_dir), "batch_ms": 0}}))
    return path


def synthetic_day(day: int, seed: int = 7) -> list[dict[str, Any]]:
    """A day of contacts over three queues: queued, then answered and ended, or abandoned."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(600):
        queue = rng.choice(list(QUEUES))
        contact = f"c{n}"
        t = day + rng.uniform(7 * 3600, 19 * 3600)
        base = {"queue": queue, "channel": QUEUES[queue], "contact_id": contact}
        events.append({"type": "contact.queued", "id": f"{contact}-q", "ts": t, **base})
        wait = rng.uniform(0, 400)
        if rng.random() < 0.2:
            events.append({"type": "contact.abandoned", "id": f"{contact}-x", "ts": t + wait,
                           "wait_s": wait, **base})
            continue
        agent = f"agent-{rng.randrange(12)}"
        events.append({"type": "contact.answered", "id": f"{contact}-a", "ts": t + wait,
                       "wait_s": wait, "agent": agent, **base})
        talk = rng.uniform(30, 900)
        events.append({"type": "contact.ended", "id": f"{contact}-e", "ts": t + wait + talk,
                       "agent": agent, "talk_s": talk, **base})
    rng.shuffle(events)  # a PBX's export need not be in time order
    return events


def recount(events: list[dict[str, Any]]) -> dict[tuple[int, str], Counter[int]]:
    """Counts per (interval start, queue), each event at its own time."""
    out: dict[tuple[int, str], Counter[int]] = {}
    for e in events:
        index = COUNTED.get(e["type"])
        if index is not None:
            key = (int(stamp(e["ts"]) // INTERVAL) * INTERVAL, e["queue"])
            out.setdefault(key, Counter())[index] += 1
    return out


def stamp(ts: float | str) -> float:
    if isinstance(ts, str):
        return datetime.fromisoformat(ts).timestamp()
    return float(ts)


def stored_counts(rows: list[IntervalRow]) -> dict[tuple[int, str], Counter[int]]:
    """The stored queue rows' counts of the counters recounted, summed over channels."""
    out: dict[tuple[int, str], Counter[int]] = {}
    for row in rows:
        record = from_row(row)
        if record.level != "queue":
            continue
        counts = Counter({k: round(v) for k, v in record.counters.items()
                          if k in COUNTED.values() and v})
        if counts:
            out.setdefault((record.start, record.name), Counter()).update(counts)
    return out


def write(path: Path, events: list[dict[str, Any]], extra: list[bytes] = ()) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events) + b"".join(extra))
    return path


def do_import(path: Path, config: Path, **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    args = argparse.Namespace(file=str(path), config=str(config), data_dir=None,
                              source=kw.get("source", "import"))
    code = run_import(args, out, io.StringIO())
    return code, out.getvalue()


def report_value(text: str, label: str) -> int:
    line = next(line for line in text.splitlines() if line.startswith(f"{label}: "))
    return int(line.removeprefix(f"{label}: ").split()[0].replace(",", ""))


def all_rows(data_dir: Path) -> list[IntervalRow]:
    journal = SqliteJournal(load_settings(None).journal.model_copy(
        update={"data_dir": str(data_dir)}))
    return journal.intervals(0, 2**40)


@pytest.fixture
def day() -> int:
    return (int(time.time()) // DAY - 1) * DAY  # yesterday: within journal.retention_days


async def store_live(data_dir: Path, config: Path, events: list[dict[str, Any]]) -> None:
    """Events stored as a running server would have stored them (source pbx), at their time."""
    journal = SqliteJournal(load_settings(str(config)).journal)
    journal.open()
    journal.start()
    try:
        for e in events:
            await journal.append([parse_event(e, "pbx")], e["ts"] + 1.5)
    finally:
        await journal.close()


async def test_a_day_imported_over_live_events_matches_a_recount(tmp_path: Path, day: int
                                                                 ) -> None:
    data_dir = tmp_path / "data"
    config = config_file(tmp_path, data_dir)
    events = synthetic_day(day)
    live, imported = events[:500], events[500:]
    await store_live(data_dir, config, live)  # what the server saw itself: not clobbered
    code, text = await asyncio.to_thread(do_import, write(tmp_path / "day.ndjson", imported),
                                         config)
    assert code == 0, text
    assert report_value(text, "stored") == len(imported)
    assert report_value(text, "duplicates") == 0
    first = min(stamp(e["ts"]) for e in imported) // INTERVAL * INTERVAL
    rows = all_rows(data_dir)
    assert rows and min(r[0] for r in rows) == first  # earlier intervals were context only
    expected = {k: v for k, v in recount(events).items() if k[0] >= first}
    last = max(stamp(e["ts"]) for e in imported) // INTERVAL * INTERVAL
    expected = {k: v for k, v in expected.items() if k[0] <= last}
    assert stored_counts(rows) == expected
    assert report_value(text, "intervals written") == len(rows)


def test_importing_the_same_file_twice_stores_nothing_new(tmp_path: Path, day: int) -> None:
    data_dir = tmp_path / "data"
    config = config_file(tmp_path, data_dir)
    events = synthetic_day(day, seed=3)
    path = write(tmp_path / "day.ndjson", events)
    code, text = do_import(path, config)
    assert code == 0 and report_value(text, "stored") == len(events), text
    rows = all_rows(data_dir)
    assert stored_counts(rows) == recount(events)
    code, text = do_import(path, config)
    assert code == 0, text
    assert report_value(text, "stored") == 0
    assert report_value(text, "duplicates") == len(events)
    assert all_rows(data_dir) == rows  # byte for byte
    journal = SqliteJournal(load_settings(str(config)).journal)
    journal.open(writable=False)
    try:
        assert journal.stats().events == len(events)
        # Arrived at their own time: a start-up replay takes them as having come in then.
        stored = [(recv, e.ts, e.source) for batch in journal.read(0) for recv, e in batch]
        assert sorted(stored) == sorted((stamp(e["ts"]),) * 2 + ("import",) for e in events)
    finally:
        asyncio.run(journal.close())


def test_bad_lines_are_reported_with_their_number_and_the_rest_is_stored(
        tmp_path: Path, day: int) -> None:
    data_dir = tmp_path / "data"
    config = config_file(tmp_path, data_dir)
    good = [e for e in synthetic_day(day, seed=5) if e["type"] == "contact.queued"][:40]
    bad = [b'{"type": "contact.queued", "ts": 1, "queue": "sales"}\n',  # no contact_id
           b"not json at all\n",
           b"\n",  # blank: skipped, not refused
           orjson.dumps({**good[0], "id": "w", "wait_s": -1, "type": "contact.abandoned"})
           + b"\n",
           orjson.dumps({**good[0], "id": "f", "ts": time.time() + 7200}) + b"\n",
           b'{"type": "contact.queued", "queue": "' + b"x" * 5_000_000 + b'"}\n',
           orjson.dumps({**good[1], "id": "dup"}) + b"\n" + orjson.dumps(
               {**good[2], "id": "dup"}) + b"\n",
           # Entered a month before it queued: refused as it would be arriving at its time.
           orjson.dumps({**good[3], "id": "ent", "entered_ts": good[3]["ts"] - 30 * DAY})
           + b"\n",
           orjson.dumps({**good[4], "id": "ent-ok", "entered_ts": good[4]["ts"] - 60}) + b"\n"]
    path = write(tmp_path / "mixed.ndjson", good, bad)
    code, text = do_import(path, config)
    assert code == 0, text
    assert report_value(text, "stored") == len(good) + 2  # the first "dup", "ent-ok"
    assert report_value(text, "duplicates") == 1  # the second "dup": an earlier line's id
    assert report_value(text, "refused") == 6
    n = len(good)
    for expected in (f"mixed.ndjson:{n + 1}: contact_id: is required",
                     f"mixed.ndjson:{n + 2}: <line>: not JSON",
                     f"mixed.ndjson:{n + 4}: wait_s:",
                     f"mixed.ndjson:{n + 5}: ts: ",
                     f"mixed.ndjson:{n + 6}: <line>: longer than server.max_body_bytes",
                     f"mixed.ndjson:{n + 9}: entered_ts: "):
        assert expected in text, (expected, text)
    assert "ahead of the server's clock" in text and "[too_long]" in text
    everything_bad = write(tmp_path / "bad.ndjson", [], bad[:2])
    code, text = do_import(everything_bad, config)
    assert code == 1 and report_value(text, "refused") == 2


def test_the_command_line_imports_and_refuses_a_journal_a_server_holds(
        tmp_path: Path, day: int) -> None:
    data_dir = tmp_path / "data"
    config = config_file(tmp_path, data_dir)
    events = synthetic_day(day, seed=11)[:300]
    path = write(tmp_path / "day.ndjson", events)
    command = [sys.executable, "-m", "wallboard", "journal", "import", str(path),
               "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert report_value(done.stdout, "stored") == len(events)
    assert stored_counts(all_rows(data_dir)) == recount(events)
    holder = SqliteJournal(load_settings(str(config)).journal)
    holder.open()  # as a running server holds it
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env=env)
    finally:
        asyncio.run(holder.close())
    assert done.returncode == 2
    assert "in use by another wallboard process" in done.stderr
    assert "stop the server" in done.stderr


def test_the_helpdesk_log_imports_with_tickets_created_per_interval_as_recounted(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "wallboard.yaml"
    config.write_bytes(orjson.dumps({"journal": {"data_dir": str(data_dir), "batch_ms": 0}}))
    events = helpdesk_events(HELPDESK_CSV)
    code, text = do_import(write(tmp_path / "helpdesk.ndjson", events), config)
    assert code == 0, text
    assert report_value(text, "stored") == len(events)
    assert report_value(text, "fold errors") == 0
    created = {k: Counter({c.TICKETS_CREATED: v[c.TICKETS_CREATED]})
               for k, v in recount(events).items() if v[c.TICKETS_CREATED]}
    stored = {k: Counter({c.TICKETS_CREATED: v[c.TICKETS_CREATED]})
              for k, v in stored_counts(all_rows(data_dir)).items() if v[c.TICKETS_CREATED]}
    assert sum(v[c.TICKETS_CREATED] for v in created.values()) == 4580 - 78
    assert stored == created


# -- hostile input ---------------------------------------------------------------------------

def _line(template: dict[str, Any], now: float, n: int) -> bytes:
    event = dict(template)
    for key, value in event.items():
        if isinstance(value, Age):
            event[key] = now - value.seconds
    event.setdefault("id", f"h{n}")
    return json.dumps(event, ensure_ascii=False).encode() + b"\n"  # 2**64: past orjson


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(valid_event(), hostile_event().map(lambda item: item.template)),
                min_size=1, max_size=12),
       st.lists(st.integers(0, 11), max_size=3))
def test_near_valid_lines_never_crash_an_import(templates: list[dict[str, Any]],
                                                repeats: list[int]) -> None:
    now = time.time()
    lines = [_line(t, now, n) for n, t in enumerate(templates)]
    lines += [lines[i] for i in repeats if i < len(lines)]  # resent lines: duplicates
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = config_file(root, root / "data")
        path = root / "events.ndjson"
        path.write_bytes(b"".join(lines))
        code, text = do_import(path, config)
        stored, refused = report_value(text, "stored"), report_value(text, "refused")
        duplicates = report_value(text, "duplicates")
        assert stored + refused + duplicates == len(lines), text
        assert code == (0 if stored + duplicates else 1)


# -- reading lines ---------------------------------------------------------------------------

@given(st.lists(st.one_of(st.binary(max_size=40), st.just(b"\xef\xbb\xbf{}")).map(
           lambda b: b.replace(b"\n", b"")), max_size=30),
       st.integers(1, 30), st.integers(1, 9), st.booleans())
def test_lines_are_read_whole_up_to_the_bound_and_never_past_it(
        lines: list[bytes], bound: int, chunk: int, final_newline: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    text = data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is not part of line 1
    expected = [(i, line if len(line) <= bound else None)
                for i, line in enumerate(text.split(b"\n"), start=1)]
    if text.endswith(b"\n") or not text:
        expected.pop()  # nothing after the last newline
    old, backfill.CHUNK_BYTES = backfill.CHUNK_BYTES, chunk
    try:
        got = list(backfill.read_lines(io.BytesIO(data), bound))
    finally:
        backfill.CHUNK_BYTES = old
    assert got == expected


def test_a_redis_journal_takes_an_import_with_the_same_history(tmp_path: Path, day: int,
                                                               redis_server: Any) -> None:
    config = tmp_path / "wallboard.yaml"
    config.write_bytes(orjson.dumps({
        "queues": {q: {"channel": ch} for q, ch in QUEUES.items()},
        "journal": {"backend": "redis", "url": redis_server.url, "timeout_s": 5}}))
    events = synthetic_day(day, seed=13)[:400]
    path = write(tmp_path / "day.ndjson", events)
    code, text = do_import(path, config)
    assert code == 0 and report_value(text, "stored") == len(events), text
    journal = RedisJournal(load_settings(str(config)).journal)
    journal.open(writable=False)
    rows = journal.intervals(0, 2**40)
    assert stored_counts(rows) == recount(events)
    code, text = do_import(path, config)  # the ids are in Redis: nothing stored twice
    assert code == 0 and report_value(text, "duplicates") == len(events), text
    assert journal.intervals(0, 2**40) == rows
    assert journal.stats().events == len(events)


async def test_a_rebuild_never_replaces_an_interval_counting_events_since_pruned(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = config_file(tmp_path, data_dir)
    old_day = (int(time.time()) // DAY - 30) * DAY  # past journal.retention_days (7)
    first = synthetic_day(old_day, seed=17)
    code, text = await asyncio.to_thread(do_import, write(tmp_path / "a.ndjson", first), config)
    assert code == 0, text
    before = all_rows(data_dir)
    assert stored_counts(before) == recount(first)
    journal = SqliteJournal(load_settings(str(config)).journal)
    journal.open()
    journal.start()
    try:  # the server's retention: the imported raw events go, their intervals stay
        # (all but the newest row, which a prune keeps so that numbering goes on)
        assert await journal.prune(time.time()) == len(first) - 1
    finally:
        await journal.close()
    # Half of one queue's events again under new ids, and a contact in an empty interval.
    sales = [e for e in first[:-1] if e["queue"] == "sales"]
    again = [{**e, "id": f"b-{e['id']}"} for e in sales[::2]]
    night = {"type": "contact.queued", "id": "night", "ts": old_day + 3 * 3600 + 5,
             "queue": "sales", "channel": "voice", "contact_id": "n1"}
    code, text = await asyncio.to_thread(
        do_import, write(tmp_path / "b.ndjson", [*again, night]), config)
    assert code == 0, text
    after = all_rows(data_dir)
    # The first import's counts stand where the rebuild had fewer; the new interval is added.
    assert stored_counts(after) == recount([*first, night])
    assert "kept as stored: they count events the journal no longer holds" in text


async def test_a_server_started_after_an_import_counts_todays_events_and_refuses_a_second(
        tmp_path: Path, server_process: Any) -> None:
    """Stored at their own times, today's imported events are in the live windows at start."""
    server = server_process(journal_config(tmp_path / "data"))
    now = time.time()
    rng = random.Random(23)
    events: list[dict[str, Any]] = []
    for n in range(60):  # the last three hours, in a zone where it is about noon
        t = now - rng.uniform(1800, 3 * 3600)
        base = {"queue": "sales", "channel": "voice", "contact_id": f"t{n}"}
        events.append({"type": "contact.queued", "id": f"t{n}-q", "ts": t, **base})
        if n % 4:
            events.append({"type": "contact.answered", "id": f"t{n}-a", "ts": t + 10,
                           "wait_s": 10, "agent": "ann", **base})
        else:
            events.append({"type": "contact.abandoned", "id": f"t{n}-x", "ts": t + 40,
                           "wait_s": 40, **base})
    path = write(tmp_path / "today.ndjson", events)
    done = await asyncio.to_thread(server.cli, "journal", "import", str(path))
    assert done.returncode == 0, done.stderr
    await server.start()
    async with aiohttp.ClientSession() as http:
        today = (await server.snapshot(http))["queues"]["sales"]["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (60, 45, 15)
    refused = await asyncio.to_thread(server.cli, "journal", "import", str(path))
    assert refused.returncode == 2 and "stop the server" in refused.stderr
    server.stop()
    assert stored_counts(all_rows(tmp_path / "data")) == recount(events)


@pytest.mark.parametrize(("reorder", "late"), [(100, 0), (3, 6)])
def test_events_are_appended_in_time_order_within_the_reordering_slack(
        tmp_path: Path, day: int, reorder: int, late: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backfill, "REORDER", reorder)
    config = config_file(tmp_path, tmp_path / "data")
    hours = [{"type": "contact.queued", "id": f"r{n}", "ts": day + (20 - n) * 3600.0,
              "queue": "sales", "contact_id": f"r{n}"} for n in range(10)]  # newest first
    code, text = do_import(write(tmp_path / "r.ndjson", hours), config)
    assert code == 0, text
    # With 3 held, the first 4 lines' oldest goes first, then each line is an hour older.
    assert (report_value(text, "out of order") if late else 0) == late
    assert ("out of order" in text) == bool(late)
    journal = SqliteJournal(load_settings(str(config)).journal)
    journal.open(writable=False)
    try:
        appended = [e.ts for batch in journal.read(0) for _, e in batch]
    finally:
        asyncio.run(journal.close())
    if not late:
        assert appended == sorted(appended)


def test_the_report_of_an_imported_day_matches_an_hourly_recount(tmp_path: Path,
                                                                 day: int) -> None:
    config = config_file(tmp_path, tmp_path / "data")
    events = synthetic_day(day, seed=29)
    code, text = do_import(write(tmp_path / "day.ndjson", events), config)
    assert code == 0, text
    out = io.BytesIO()
    args = argparse.Namespace(first=datetime.fromtimestamp(day, UTC).date().isoformat(),
                              last=None, interval="1h", queue=[], format="json",
                              config=str(config), data_dir=None)
    assert run_report(args, out, io.StringIO()) == 0
    names = {c.OFFERED: "offered", c.ANSWERED: "answered", c.ABANDONED: "abandoned",
             c.HANDLED: "handled"}
    got = {(int(datetime.fromisoformat(r["start"]).timestamp()), r["queue"]):
           {name: r[name] for name in names.values() if r[name]}
           for r in orjson.loads(out.getvalue())["rows"] if r["level"] == "queue"}
    hourly: dict[tuple[int, str], Counter[int]] = {}
    for (start, queue), counts in recount(events).items():
        hourly.setdefault((start // 3600 * 3600, queue), Counter()).update(counts)
    expected = {key: {names[k]: n for k, n in counts.items()} for key, counts in hourly.items()}
    assert {k: v for k, v in got.items() if v} == expected
