"""`wallboard replay`: the helpdesk log's ticket KPIs against an independent computation from
the raw CSV, determinism, malformed lines, --until/--every, and the board served at --speed N."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import csv
import math
import os
import re
import signal
import subprocess
import sys
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.helpdesk_events import helpdesk_events, write_ndjson

ROOT = Path(__file__).resolve().parents[1]
HELPDESK_CSV = Path(__file__).resolve().parent / "data" / "helpdesk" / "helpdesk.csv"
DAY = 86400
T0 = 1736935200  # 2025-01-15T10:00:00Z


def replay(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m wallboard replay ARGS`."""
    return subprocess.run([sys.executable, "-m", "wallboard", "replay", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def docs(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The JSON documents of a --json run, one per line."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def write_lines(path: Path, lines: list[Any]) -> Path:
    """Write dicts as JSON lines and strings verbatim."""
    path.write_text("".join((line if isinstance(line, str) else orjson.dumps(line).decode())
                            + "\n" for line in lines))
    return path


def queued(n: int, ts: float, queue: str = "sales") -> dict[str, Any]:
    """A contact.queued event with id q<n>."""
    return {"type": "contact.queued", "id": f"q{n}", "ts": ts, "queue": queue,
            "contact_id": f"c{n}"}


# -- the independent computation: straight from the CSV rows -----------------------------------

CREATE = {"Assign seriousness", "Insert ticket"}
NOT_WORK = {"Resolve ticket", "Closed", "RESOLVED", "VERIFIED", "INVALID", "DUPLICATE"}


@dataclass
class Truth:
    """Ticket facts per the mapping documented in tests/helpdesk_events.py."""

    created: list[tuple[float, str]] = field(default_factory=list)  # (ts, queue)
    responses: list[tuple[float, float, str]] = field(default_factory=list)  # (ts, frt, queue)
    resolutions: list[tuple[float, float, str]] = field(default_factory=list)  # (ts, took, q)
    reopens: list[tuple[float, str]] = field(default_factory=list)
    open_spans: list[tuple[float, float, str]] = field(default_factory=list)  # [start, end)


def truth_from_csv(path: Path) -> Truth:
    """Creations, first responses, resolutions, reopens and open spans of every ticket."""
    cases: dict[str, list[list[str]]] = {}
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = {name: header.index(name) for name in
               ("Case ID", "Activity", "Complete Timestamp", "support_section")}
        for row in reader:
            cases.setdefault(row[col["Case ID"]], []).append(row)
    truth = Truth()
    for rows in cases.values():
        acts = [(calendar.timegm(time.strptime(r[col["Complete Timestamp"]], "%Y/%m/%d %H:%M:%S")),
                 r[col["Activity"]]) for r in rows]
        if acts[0][1] not in CREATE:
            assert not any(a in CREATE for _, a in acts)  # creation, when present, comes first
            continue
        queue = "section-" + rows[0][col["support_section"]].split()[-1]
        born = acts[0][0]
        truth.created.append((born, queue))
        open_since: float | None = born
        responded = False
        for ts, activity in acts[1:]:
            if open_since is None and activity not in NOT_WORK:
                open_since = ts
                truth.reopens.append((ts, queue))
            if activity == "Take in charge ticket" and not responded:
                responded = True
                truth.responses.append((ts, ts - born, queue))
            elif activity in ("Resolve ticket", "Closed") and open_since is not None:
                truth.open_spans.append((open_since, ts, queue))
                truth.resolutions.append((ts, ts - born, queue))
                open_since = None
        if open_since is not None:
            truth.open_spans.append((open_since, math.inf, queue))
    return truth


def nearest_rank(values: list[float], q: float) -> float | None:
    """The nearest-rank quantile of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


class Index:
    """The truth of one queue (or all), sorted by time for window queries."""

    def __init__(self, truth: Truth, queue: str | None) -> None:
        def mine(q: str) -> bool:
            return queue is None or q == queue

        self.created = sorted(ts for ts, q in truth.created if mine(q))
        self.reopens = sorted(ts for ts, q in truth.reopens if mine(q))
        self.responses = sorted((ts, frt) for ts, frt, q in truth.responses if mine(q))
        self.resolutions = sorted((ts, took) for ts, took, q in truth.resolutions if mine(q))
        self.starts = sorted(s for s, _, q in truth.open_spans if mine(q))
        self.ends = sorted(e for _, e, q in truth.open_spans if mine(q))

    def backlog(self, t: float) -> int:
        """Tickets open at t, every event stamped at or before t applied."""
        return bisect_right(self.starts, t) - bisect_right(self.ends, t)

    def window(self, lo: float, hi: float) -> dict[str, Any]:
        """The ticket KPIs of events stamped in [lo, hi]."""
        def count(times: list[float]) -> int:
            return bisect_right(times, hi) - bisect_left(times, lo)

        def values(pairs: list[tuple[float, float]]) -> list[float]:
            return [v for _, v in pairs[bisect_left(pairs, (lo, -math.inf)):
                                        bisect_right(pairs, (hi, math.inf))]]

        frts, tooks = values(self.responses), values(self.resolutions)
        return {
            "tickets_created": count(self.created),
            "tickets_resolved": len(tooks),
            "tickets_reopened": count(self.reopens),
            "first_responses": len(frts),
            "frt_avg_s": sum(frts) / len(frts) if frts else None,
            "frt_p50_s": nearest_rank(frts, 0.5), "frt_p90_s": nearest_rank(frts, 0.9),
            "resolution_avg_s": sum(tooks) / len(tooks) if tooks else None,
            "resolution_p50_s": nearest_rank(tooks, 0.5),
            "resolution_p90_s": nearest_rank(tooks, 0.9),
        }


def window_bounds(window: str, t: float) -> tuple[float, float]:
    """What a window covers at snapshot time t: the UTC day so far, or whole 10 s buckets."""
    if window == "today":
        return t - t % DAY, t
    span = {"15m": 900, "1h": 3600}[window]
    return (t // 10 - span // 10) * 10, t


def check_snapshot(doc: dict[str, Any], indexes: dict[str | None, Index]) -> list[str]:
    """Every difference between a snapshot's ticket KPIs and the truth at its time."""
    t = doc["meta"]["ts"]
    problems = []

    def compare(where: str, got: Any, want: Any, rel: float) -> None:
        if want is None or got is None:
            ok = got == want
        else:
            ok = abs(got - want) <= rel * abs(want) + (0.011 if rel >= 0.01 else 1e-3)
        if not ok:
            problems.append(f"t={t} {where}: got {got}, want {want}")

    for queue, index in indexes.items():
        block = doc["total"] if queue is None else doc["queues"].get(queue)
        name = queue or "total"
        if block is None:  # not seen yet: nothing may have happened in it
            if bisect_right(index.created, t):
                problems.append(f"t={t} queue {queue} missing")
            continue
        compare(f"{name}.live.tickets_open", block["live"]["tickets_open"], index.backlog(t), 0)
        for window in ("today", "1h", "15m"):
            for kpi, value in index.window(*window_bounds(window, t)).items():
                rel = 0.01 if kpi.endswith(("p50_s", "p90_s")) else 0 if "avg" not in kpi else 1e-6
                compare(f"{name}.{window}.{kpi}", block[window][kpi], value, rel)
    return problems


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    """The converted NDJSON file and the truth from the raw CSV."""
    path = tmp_path_factory.mktemp("helpdesk") / "helpdesk.ndjson"
    write_ndjson(helpdesk_events(HELPDESK_CSV), path)
    return path, truth_from_csv(HELPDESK_CSV)


def indexes_of(truth: Truth) -> dict[str | None, Index]:
    """The site total (None) and every queue."""
    return {q: Index(truth, q) for q in [None, *sorted({q for _, q in truth.created})]}


def test_truth_matches_the_logs_shape(helpdesk: tuple[Path, Truth]) -> None:
    _, truth = helpdesk
    assert len(truth.created) == 4580 - 78  # cases without a creation activity are left out
    assert len(truth.reopens) == 157
    assert len(truth.resolutions) == len(truth.created) + len(truth.reopens) - sum(
        math.isinf(e) for _, e, _ in truth.open_spans)


def test_helpdesk_ticket_kpis_at_every_point_match_the_csv(helpdesk: tuple[Path, Truth]
                                                           ) -> None:
    path, truth = helpdesk
    outputs = docs(replay(path, "--json", "--every", "25h"))
    # 25 h is not a whole number of days, so the boundaries fall at every hour of the day.
    assert len(outputs) > 1300
    indexes = indexes_of(truth)
    problems = [p for doc in outputs for p in check_snapshot(doc, indexes)]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


def test_helpdesk_ticket_kpis_at_busy_moments_match_the_csv(helpdesk: tuple[Path, Truth]
                                                            ) -> None:
    path, truth = helpdesk
    per_day: dict[int, int] = {}
    for ts, _ in truth.created:
        per_day[int(ts // DAY)] = per_day.get(int(ts // DAY), 0) + 1
    busiest = max(per_day, key=lambda d: (per_day[d], d)) * DAY
    checked_windows = 0
    for until in (busiest + 10 * 3600 + 7, busiest + 15 * 3600 + 1805):
        [doc] = docs(replay(path, "--json", "--until", str(until)))
        assert doc["meta"]["ts"] == until
        problems = check_snapshot(doc, indexes_of(truth))
        assert not problems, "\n".join(problems[:40])
        checked_windows += doc["total"]["1h"]["tickets_created"] > 0
        assert doc["total"]["today"]["tickets_created"] > 5
    assert checked_windows >= 1  # the rolling windows were not all empty


def test_replay_is_deterministic_and_looking_does_not_change_the_result(
        helpdesk: tuple[Path, Truth]) -> None:
    path, _ = helpdesk
    first = replay(path, "--json", "--every", "25h")
    second = replay(path, "--json", "--every", "25h")
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    # A snapshot must not depend on how often snapshots were taken on the way there.
    lines = first.stdout.splitlines()
    alone = replay(path, "--json")
    assert lines[-1] == alone.stdout.strip()
    for line in (lines[len(lines) // 3], lines[2 * len(lines) // 3]):
        until = orjson.loads(line)["meta"]["ts"]
        assert replay(path, "--json", "--until", str(until)).stdout.strip() == line


def test_malformed_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mixed.ndjson", [
        queued(1, T0),
        queued(2, T0 + 1),
        '{"type": "contact.queued", "ts": ',  # line 3: cut short
        {"type": "contact.teleported", "ts": T0 + 2, "queue": "sales", "contact_id": "x"},
        "",  # line 5: blank, skipped silently
        {"type": "contact.answered", "ts": T0 + 3, "queue": "sales", "contact_id": "c1",
         "wait_s": -4},  # line 6: bad field
        queued(3, T0 + 4, "support"),
        queued(3, T0 + 5, "support"),  # line 8: repeated id: a duplicate, not malformed
        {"type": "contact.answered", "id": "a1", "ts": T0 + 6, "queue": "sales",
         "contact_id": "c1"},
    ])
    proc = replay(path, "--json")
    [doc] = docs(proc)
    err = proc.stderr
    assert re.search(r"mixed\.ndjson:3: <line>: not JSON: .* \[malformed\]", err), err
    assert re.search(r"mixed\.ndjson:4: type: unknown event type 'contact\.teleported'.*"
                     r"\[unknown_type\]", err), err
    # A negative wait is outside its documented bounds (0 to 7 days): out_of_range.
    assert re.search(r"mixed\.ndjson:6: wait_s: .*\[out_of_range\]", err), err
    assert ":5:" not in err and ":8:" not in err and ":9:" not in err
    assert "4 events replayed from 9 lines" in err
    assert "3 lines skipped (malformed 1, out_of_range 1, unknown_type 1)" in err
    assert "1 duplicates" in err
    assert "\r" not in err  # no progress bar when stderr is not a terminal
    assert doc["total"]["today"]["offered"] == 3 and doc["total"]["today"]["answered"] == 1
    assert doc["meta"]["ts"] == T0 + 6
    assert doc["sources"]["replay"]["events"] == 4


def test_exit_codes(tmp_path: Path) -> None:
    bad = write_lines(tmp_path / "bad.ndjson", ["nonsense", {"type": "nope", "ts": T0}])
    proc = replay(bad, "--json")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "bad.ndjson:1:" in proc.stderr and "bad.ndjson:2:" in proc.stderr
    assert "nothing replayed" in proc.stderr
    assert replay(tmp_path / "missing.ndjson").returncode == 2
    good = write_lines(tmp_path / "good.ndjson", [queued(1, T0)])
    for args in (["--every", "0"], ["--every", "5x"], ["--speed", "-1"], ["--until", "soon"]):
        proc = replay(good, *args)
        assert proc.returncode == 2, (args, proc.stderr)
    proc = replay(good, "--until", str(T0 - 1))
    assert proc.returncode == 1 and "nothing replayed" in proc.stderr


def test_until_and_every(tmp_path: Path) -> None:
    # One contact a minute from 10:00:00 to 10:59:00; the 10:30 one comes after 10:31.
    events = [queued(n, T0 + 60 * n) for n in range(60)]
    events[30], events[31] = events[31], events[30]
    path = write_lines(tmp_path / "hour.ndjson", events)

    outputs = docs(replay(path, "--json", "--every", "15m"))
    assert [d["meta"]["ts"] for d in outputs] == [T0 + 900, T0 + 1800, T0 + 2700, T0 + 3540]
    # A boundary includes the events stamped at or before it that came before the first event
    # past it: 10:00..10:15 inclusive is 16 contacts; the 10:30 one comes after 10:31, so late.
    assert [d["total"]["today"]["offered"] for d in outputs] == [16, 30, 46, 60]
    assert [d["sources"]["replay"]["last_event_ts"] for d in outputs] == [
        T0 + 900, T0 + 1740, T0 + 2700, T0 + 3540]

    outputs = docs(replay(path, "--json", "--every", "15m", "--until", "2025-01-15T10:40:00Z"))
    assert [d["meta"]["ts"] for d in outputs] == [T0 + 900, T0 + 1800, T0 + 2400]
    assert outputs[-1]["total"]["today"]["offered"] == 41

    [doc] = docs(replay(path, "--json", "--until", str(T0 + 7200)))  # past the end: at --until
    assert doc["meta"]["ts"] == T0 + 7200 and doc["total"]["1h"]["offered"] == 0
    assert doc["total"]["today"]["offered"] == 60

    pretty = replay(path, "--every", "30m")
    assert pretty.returncode == 0 and pretty.stdout.startswith("{\n")
    assert [orjson.loads(chunk)["meta"]["ts"] for chunk in
            re.split(r"(?m)^(?=\{)", pretty.stdout) if chunk] == [T0 + 1800, T0 + 3540]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_line_only_on_a_terminal(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "few.ndjson", [queued(n, T0 + n) for n in range(50)])
    primary, secondary = os.openpty()
    try:
        with os.fdopen(secondary, "wb") as terminal:
            proc = subprocess.run([sys.executable, "-m", "wallboard", "replay", str(path),
                                   "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=terminal,
                                  timeout=60, check=False)
        shown = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(primary, 65536):
                shown += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0
    text = shown.decode()
    assert re.search(r"\r50 events +100\.0% +[\d,]+ events/s\x1b\[K", text), text
    assert "\r\x1b[Kreplay: 50 events replayed" in text  # erased before the summary
    assert b"\r" not in proc.stdout


async def test_speed_serves_the_board_while_replaying(tmp_path: Path) -> None:
    # 5 contacts 1000 s apart: at 1000x they arrive about once a second.
    path = write_lines(tmp_path / "slow.ndjson", [queued(n, T0 + 1000 * n) for n in range(5)])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wallboard", "replay", str(path), "--json", "--speed", "1000",
        "--port", "0", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None and proc.stdout is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        match = re.search(r"serving (http://[\d.]+:\d+)/board/(\w+)", line.decode())
        assert match, line
        base = match.group(1)
        seen: list[tuple[float, int]] = []
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/board/{match.group(2)}") as resp:
                assert resp.status == 200
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                async with session.get(f"{base}/api/snapshot") as resp:
                    tree = await resp.json()
                seen.append((tree["meta"]["ts"], tree["total"]["today"]["offered"]))
                if seen[-1][1] == 5:
                    break
                await asyncio.sleep(0.1)
            # The connection guard is attached: this request's own connection is counted.
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
            assert re.search(r"^wallboard_connections_open [1-9]", text, re.M), text
        counts = [n for _, n in seen]
        assert counts[-1] == 5, seen
        assert any(0 < n < 5 for n in counts), seen  # the events arrived one by one
        assert counts == sorted(counts)
        times = [ts for ts, _ in seen]
        assert times == sorted(times) and times[0] >= T0 and times[-1] <= T0 + 4000
        assert len(set(times)) > 3  # the virtual clock flows between events
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0
        final = orjson.loads(out.splitlines()[-1])
        assert final["meta"]["ts"] == T0 + 4000 and final["total"]["today"]["offered"] == 5
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
