"""Interval history in both stores: rebuilt from raw events where missing, never overwritten
by a partial replay, damaged rows left out and counted; the same report after a restart on
Redis; `wallboard report` reads a stopped server's store."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.report_traffic import DAY, DAY_TS, Clock, Server, iso, month, post_month
from wallboard.server import keys

REPO = Path(__file__).resolve().parents[1]


def two_days() -> dict:
    return {d: calls for d, calls in month().items() if d >= DAY - timedelta(days=1)}


async def _report(server: Server, query: str) -> dict[str, Any]:
    status, body, _ = await server.report(query)
    assert status == 200, body
    return orjson.loads(body)


async def test_missing_rows_are_rebuilt_and_stored_ones_never_overwritten(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = Clock(DAY_TS - 86_400)
    query = f"from={DAY}&interval=15m"
    async with Server(data, clock) as server:
        await post_month(server, two_days())
        historian = server.app[keys.HISTORIAN]  # the clock is past DAY: all of it closed
        assert historian is not None
        await historian.flush()
        before = await _report(server, query)
    db = data / "journal.sqlite3"
    with sqlite3.connect(db) as con:
        starts = [s for (s,) in con.execute(
            "SELECT DISTINCT start FROM intervals WHERE start >= ? ORDER BY start", (DAY_TS,))]
        assert len(starts) > 20
        lost, kept, damaged = starts[3], starts[10], starts[20]
        con.execute("DELETE FROM intervals WHERE start = ?", (lost,))
        # A stored row the replay would make differently stays as stored (only where missing).
        con.execute("UPDATE intervals SET body = ? WHERE start = ? AND level = 'queue'",
                    (orjson.dumps({"c": {"offered": 999}, "s": []}), kept))
        con.execute("UPDATE intervals SET body = ? WHERE start = ? AND level = 'queue' AND "
                    "name = 'sales'", (b"\x00not json", damaged))
        con.execute("DELETE FROM checkpoints")  # a full replay of the windows' span
    # A start later that day: the replay (today, from midnight) covers every changed row.
    clock.now = DAY_TS + 20 * 3600
    async with Server(data, clock) as server:
        after = await _report(server, query)
        async with server.session.get(f"{server.url}/metrics") as resp:
            metrics = await resp.text()
    by_start = {}
    for doc, name in ((before, "before"), (after, "after")):
        for row in doc["rows"]:
            by_start.setdefault((row["level"], row["queue"], row["start"]), {})[name] = row
    for (level, queue, start), pair in by_start.items():
        if start == iso(kept) and level in ("queue", "site", "channel"):
            assert pair["after"]["offered"] >= 999  # the stored row stood
        elif start == iso(damaged) and level in ("queue", "site", "channel") and \
                queue in ("sales", ""):
            continue  # left out: below
        else:
            assert pair.get("after") == pair.get("before"), (level, queue, start)
    assert [r for r in after["rows"] if r["start"] == iso(lost)]  # rebuilt
    assert not [r for r in after["rows"] if r["start"] == iso(damaged) and
                r["queue"] == "sales"]
    unreadable = [line for line in metrics.splitlines()
                  if line.startswith("wallboard_history_unreadable_total")]
    assert unreadable and float(unreadable[0].split()[-1]) >= 1


async def test_the_same_report_after_a_restart_on_redis(tmp_path: Path,
                                                        redis_server: Any) -> None:
    clock = Clock(DAY_TS - 86_400)
    journal = {"backend": "redis", "url": redis_server.url}
    query = f"from={DAY - timedelta(days=1)}&to={DAY}&interval=30m"
    async with Server(tmp_path / "a", clock, journal) as server:
        await post_month(server, two_days())
        historian = server.app[keys.HISTORIAN]
        assert historian is not None
        await historian.flush()
        assert historian.stats.written > 50
        before = await _report(server, query)
    async with Server(tmp_path / "b", clock, journal) as server:
        after = await _report(server, query)
    assert after["rows"] == before["rows"] and len(before["rows"]) > 40


async def test_the_cli_reads_a_stopped_servers_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = Clock(DAY_TS - 86_400)
    async with Server(data, clock) as server:
        await post_month(server, two_days())
        want = await _report(server, f"from={DAY}&interval=1h")
    config = tmp_path / "wallboard.yaml"
    config.write_text(f"site: {{timezone: UTC}}\njournal: {{data_dir: '{data}'}}\n")
    cli = [sys.executable, "-m", "wallboard", "report", "--from", str(DAY), "--interval", "1h",
           "--config", str(config)]
    done = subprocess.run([*cli, "--format", "json"], capture_output=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    got = orjson.loads(done.stdout)
    # The CLI has no queue settings (its config names none): compare the counts.
    fields = ("level", "queue", "start", "offered", "answered", "abandoned", "service_level",
              "asa_s", "aht_s", "wait_p90_s", "forecast_offered")
    assert [{f: r[f] for f in fields} for r in got["rows"]] == \
        [{f: r[f] for f in fields} for r in want["rows"]]
    table = subprocess.run([*cli, "--format", "table"], capture_output=True, timeout=60,
                           cwd=REPO, text=True)
    assert table.returncode == 0 and "offered" in table.stdout.splitlines()[0]
    assert len(table.stdout.splitlines()) == len(want["rows"]) + 1
    bad = subprocess.run([*cli[:-4], "--from", "2026-02-30"], capture_output=True, timeout=60,
                         cwd=REPO, text=True)
    assert bad.returncode == 2 and "from:" in bad.stderr


async def test_rebuild_history_restores_days_beyond_the_replay(tmp_path: Path) -> None:
    """A day the start-up replay does not cover (yesterday is no window) comes back whole."""
    data = tmp_path / "data"
    clock = Clock(DAY_TS - 86_400)
    yesterday = DAY - timedelta(days=1)
    query = f"from={yesterday}&interval=30m"
    async with Server(data, clock) as server:
        await post_month(server, two_days())
        before = await _report(server, query)
    with sqlite3.connect(data / "journal.sqlite3") as con:
        gone = con.execute("DELETE FROM intervals WHERE start < ?", (DAY_TS,)).rowcount
    assert gone > 10
    config = tmp_path / "wallboard.yaml"
    config.write_text(f"site: {{timezone: UTC}}\njournal: {{data_dir: '{data}'}}\n"
                      "queues: {sales: {channel: voice}, chat: {channel: chat, service_level: "
                      "{threshold_s: 60}}}\n")
    done = subprocess.run([sys.executable, "-m", "wallboard", "journal", "rebuild-history",
                           "--from", str(yesterday), "--config", str(config)],
                          capture_output=True, timeout=120, cwd=REPO, text=True)
    assert done.returncode == 0, done.stderr
    written = re.search(r"([\d,]+) intervals written", done.stdout)
    assert written and int(written.group(1).replace(",", "")) == gone, done.stdout
    async with Server(data, clock) as server:
        after = await _report(server, query)
    assert after["rows"] == before["rows"] and len(before["rows"]) > 10
    bad = subprocess.run([sys.executable, "-m", "wallboard", "journal", "rebuild-history",
                          "--from", "2026-02-30", "--config", str(config)],
                         capture_output=True, timeout=60, cwd=REPO, text=True)
    assert bad.returncode == 2 and "--from" in bad.stderr
