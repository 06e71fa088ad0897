"""Benchmark: the forecast tile's costs, by queues, with 8 weeks of 15-minute history stored.

Two figures, each beside its floor in the same run: the event-loop CPU the forecast block adds
to one snapshot (floor: building the rest of that snapshot, which the hub does anyway), and
the time one read of today's forecast takes off the loop (floor: reading the same stored rows
with load_records alone, without summing them into a forecast).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from benchio import figure, write_report

from wallboard.config.settings import parse_settings
from wallboard.fold.counters import HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import IntervalRecord
from wallboard.ingest.historian import load_records, to_row
from wallboard.journal import intervals
from wallboard.kpi.report import day_span
from wallboard.server import keys
from wallboard.server.app import create_app

TARGET_BLOCK_MS = 2.0  # per snapshot, on the loop that pushes every 200 ms
TARGET_READ_S = 5.0  # at start, on a new day and every 15 minutes, off the loop
WEEKS = 8  # the forecast looks back at most 2 x forecast_weeks (4) same weekdays
_WEEK = timedelta(days=7)


def seed(data_dir: Path, queues: list[str], now: float) -> int:
    """Every interval of every day of the last WEEKS weeks for each queue; returns rows."""
    data_dir.mkdir(parents=True, exist_ok=True)
    midnight = int(now // 86_400) * 86_400
    counters = {OFFERED: 4.0, HANDLED: 4.0, HANDLE_SUM: 720.0}
    rows = [to_row(IntervalRecord(midnight - day * 86_400 + 900 * k, "queue", q, "voice",
                                  counters, [{}, {}, {}, {}]))
            for day in range(1, 7 * WEEKS + 1) for k in range(96) for q in queues]
    with sqlite3.connect(data_dir / "journal.sqlite3") as con:
        intervals.create(con)
        con.isolation_level = None  # store() runs its own transaction
        intervals.store(con, rows, True, None)
    return len(rows)


def build(queues: int, data_dir: Path, now: float) -> web.Application:
    names = [f"q{i:03d}" for i in range(queues)]
    seed(data_dir, names, now)
    config: dict[str, Any] = {
        "site": {"name": "Bench", "timezone": "UTC"},
        "server": {"max_queues": max(200, queues)},
        "queues": {n: {"channel": "voice"} for n in names},
        "sources": {"hook": {"type": "webhook", "token": "bench-token-123"}},
        "journal": {"data_dir": str(data_dir)},
        "boards": {"fc": {"tiles": [{"type": "forecast", "queue": n} for n in names[:8]]}},
    }
    return create_app(parse_settings(config, "<bench>"), clock=lambda: now)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def measure(queues: int, rounds: int) -> dict[str, float]:
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        app = build(queues, Path(tmp) / "data", now)
        journal, forecast = app[keys.JOURNAL], app[keys.FORECAST]
        assert journal is not None and forecast is not None
        journal.open()
        try:
            reads, floors = [], []
            for _ in range(max(3, rounds // 10)):
                t0 = time.perf_counter()
                await forecast.refresh()
                t1 = time.perf_counter()
                day = forecast.local_day(now)
                for week in range(1, WEEKS + 1):  # the same rows, read without a forecast
                    since, until = day_span(day - week * _WEEK, day - week * _WEEK,
                                            forecast.tz)
                    load_records(journal, since, until)
                floors.append(time.perf_counter() - t1)
                reads.append(t1 - t0)
            assert forecast.days, "the history gave no forecast"
            app[keys.AGGREGATOR].advance(now)  # as the hub's tick does before a build
            builder = app[keys.HUB].build
            blocks, snapshots = [], []
            for _ in range(rounds):
                t0 = time.process_time()
                tree = builder()  # the whole snapshot, the forecast block included
                t1 = time.process_time()
                forecast.add_to(tree, now)
                t2 = time.process_time()
                blocks.append(t2 - t1)
                snapshots.append((t1 - t0) - (t2 - t1))  # the snapshot without the block
        finally:
            await journal.close()
    return {"block_ms": _median(blocks) * 1000, "snapshot_ms": _median(snapshots) * 1000,
            "read_s": _median(reads), "load_s": _median(floors)}


def main() -> int:
    """Print the forecast's costs per size and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "forecast.json")
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = [5] if args.quick else [10, 50]
    rounds = 10 if args.quick else 100
    report: dict[str, Any] = {"cpus": os.cpu_count(),
                              "load_average_at_start": round(os.getloadavg()[0], 2), "runs": []}
    print(f"forecast tile ({WEEKS} weeks of 15-minute history per queue)")
    for queues in sizes:
        f = asyncio.run(measure(queues, rounds))
        report["runs"].append({"queues": queues, **f})
        print(f"  {queues:4d} queues: block {f['block_ms']:.3f} ms CPU per snapshot "
              f"(rest of the snapshot {f['snapshot_ms']:.3f} ms, "
              f"{f['block_ms'] / f['snapshot_ms']:.2f}x); read {f['read_s'] * 1000:.1f} ms "
              f"off the loop (bare load_records {f['load_s'] * 1000:.1f} ms, "
              f"{f['read_s'] / f['load_s']:.2f}x)")
        figure(report, f"forecast block per snapshot, {queues} queues", f["block_ms"],
               "ms CPU", floor=f["snapshot_ms"], floor_name="the rest of the snapshot",
               target=f"<= {TARGET_BLOCK_MS:g} ms", met=f["block_ms"] <= TARGET_BLOCK_MS)
        figure(report, f"today's forecast read, {queues} queues", f["read_s"], "s",
               floor=f["load_s"], floor_name="load_records of the same days",
               target=f"<= {TARGET_READ_S:g} s", met=f["read_s"] <= TARGET_READ_S)
    worst = max(run["block_ms"] for run in report["runs"])
    print(f"  TARGET <= {TARGET_BLOCK_MS:g} ms per snapshot, <= {TARGET_READ_S:g} s per read: "
          f"{'met' if all(x['met'] for x in report['figures']) else 'NOT met'} "
          f"(worst block {worst:.3f} ms)")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
