"""Benchmark: how long the real server takes to open its port with 10⁶ events stored today.

Three starts of `wallboard serve` in one run, each timed from spawn to the first /healthz 200:

- floor: an empty journal (the process, its imports and the port, nothing to fold);
- full fold: the journal holding `--events` events that arrived today, no checkpoint (today's
  way: every event folded again);
- checkpoint: the same journal after that server ran for a while (sparkline points sampled at
  a short `server.history_step_s`) and stopped cleanly, writing its checkpoint.

It also reports the loop's pause while a checkpoint is taken, its size, and whether the
restarted server's sparklines show the points from before the restart.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchio import figure, free_port, write_report
from workload import CONFIG, event_stream, with_ids

from wallboard.config.settings import JournalConfig
from wallboard.journal.sqlite_backend import SqliteJournal
from wallboard.model.events import Event

TARGET_S = 2.0  # port open after start, 10⁶ events stored today, with a checkpoint
EVENTS = 1_000_000
STEP_S = 1.0  # history step here (the board samples about once a second): 59 s of sparkline
RUN_S = 20.0  # how long the first server runs: 20 points sampled before the restart
SERIES_KEY = "total.today.service_level"
SPARK = 59  # earlier points of a sparkline
CHUNK = 50_000


def late_evening_zone() -> str:
    """An Etc/GMT zone where it is about 23:00 now: 'today' began 23 hours ago."""
    offset = 23 - datetime.now(UTC).hour
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def config(data: Path) -> dict[str, Any]:
    return {**CONFIG, "site": {**CONFIG["site"], "timezone": late_evening_zone()},
            "server": {"history_step_s": STEP_S, "push_interval_ms": 200},
            "journal": {"data_dir": str(data), "checkpoint_every_s": 1, "sync": "normal"}}


def start_for(total: int) -> float:
    """When the workload's center must start for `total` events to end about now."""
    probe: list[Event] = list(islice(event_stream(7, start=0.0), 20_000))
    rate = len(probe) / (probe[-1].ts - probe[0].ts)
    return time.time() - total / rate * 1.01 - 60


async def fill(data: Path, total: int) -> float:
    """Store `total` events that arrived today; the newest arrival time."""
    start = start_for(total)
    journal = SqliteJournal(JournalConfig(data_dir=str(data), sync="normal"))
    journal.open()
    journal.start()
    source = with_ids(event_stream(7, start=start))
    done, newest = 0, start
    now = time.time()
    while done < total:
        events = [e for e in islice(source, min(CHUNK, total - done)) if e.ts < now]
        if not events:
            break
        pending = [journal.append(events[i:i + 500], events[min(i + 499, len(events) - 1)].ts)
                   for i in range(0, len(events), 500)]
        await asyncio.gather(*pending)
        done += len(events)
        newest = events[-1].ts
    await journal.close()
    return newest


class Server:
    """One `wallboard serve` process."""

    def __init__(self, workdir: Path, cfg: dict[str, Any]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.port = workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "wallboard.yaml").write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self) -> float:
        """Spawn and wait for /healthz; seconds from spawn to the first 200."""
        self.starts += 1
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wallboard", "serve", "--config", "wallboard.yaml",
             "--port", str(self.port)], cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited: see {self.workdir}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return time.perf_counter() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.01)

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}{path}") as resp:
            return await (resp.json() if path.startswith("/api") else resp.text())

    def stop(self) -> float:
        """SIGTERM (a clean stop writes the checkpoint); seconds until the process ended."""
        assert self.proc is not None
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        return time.perf_counter() - started


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def points(snapshot: dict[str, Any]) -> dict[int, Any]:
    """The sparkline's earlier points by step slot (the board samples about once a second)."""
    earlier = snapshot.get("series", {}).get(SERIES_KEY, [])[:-1]
    first = math.floor(snapshot["meta"]["ts"] / STEP_S) - len(earlier)
    return {first + i: p for i, p in enumerate(earlier) if p is not None}


def from_before(before: dict[str, Any], after: dict[str, Any]) -> tuple[int, int]:
    """(points the restarted board shows of those the stopped one had, in its range, of them)."""
    old, new = points(before), points(after)
    low = math.floor(after["meta"]["ts"] / STEP_S) - SPARK
    wanted = {slot: p for slot, p in old.items() if slot >= low}
    return sum(new.get(slot) == p for slot, p in wanted.items()), len(wanted)


async def run(root: Path, events: int, run_s: float) -> dict[str, Any]:
    data = root / "data"
    t = time.perf_counter()
    newest = await fill(data, events)
    fill_s = time.perf_counter() - t
    print(f"stored {events:,} events arriving until {time.time() - newest:.0f}s ago "
          f"in {fill_s:.1f}s", flush=True)

    floor = Server(root / "floor", config(root / "empty"))
    floor_s = await floor.start()
    floor.stop()

    server = Server(root / "server", config(data))
    full_s = await server.start()
    full_restore = metric(await server.get("/metrics"), "wallboard_journal_replay_seconds")
    await asyncio.sleep(run_s)  # sparkline points, and a few checkpoints
    before = await server.get("/api/snapshot")
    text = await server.get("/metrics")
    stop_s = server.stop()
    pause_s = metric(text, "wallboard_checkpoint_pause_seconds")
    size = metric(text, "wallboard_checkpoint_bytes")

    ckpt_s = await server.start()
    after = await server.get("/api/snapshot")
    text = await server.get("/metrics")
    server.stop()
    loaded = metric(text, 'wallboard_checkpoint_loads_total{result="loaded"}')
    ckpt_restore = metric(text, "wallboard_journal_replay_seconds")
    tail = metric(text, "wallboard_journal_replayed_events")
    shown, wanted = from_before(before, after)
    assert before.get("series", {}).get(SERIES_KEY), "the board charts no such series"
    return {"events": events, "fill_seconds": round(fill_s, 1),
            "floor_empty_journal_s": round(floor_s, 3), "full_fold_s": round(full_s, 3),
            "checkpoint_s": round(ckpt_s, 3), "checkpoint_loaded": loaded,
            "full_fold_restore_s": round(full_restore, 3),
            "checkpoint_restore_s": round(ckpt_restore, 3),
            "tail_events_folded": tail, "full_fold_events": events,
            "clean_stop_s": round(stop_s, 3), "checkpoint_pause_ms": round(pause_s * 1000, 1),
            "checkpoint_bytes": size, "sparkline_points_from_before": shown,
            "sparkline_points_wanted": wanted}


def main(argv: list[str] | None = None) -> int:
    """Run the restart benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=EVENTS, help="events stored today")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--dir", type=Path, help="where the journal goes (default: a temp dir)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "restart.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 20_000
    started = time.perf_counter()
    load = round(os.getloadavg()[0], 2)
    print(f"restart benchmark: {args.events:,} events stored today, python "
          f"{platform.python_version()}, {os.cpu_count()} cpus, load average {load}", flush=True)
    with tempfile.TemporaryDirectory(prefix="wallboard-restart-bench-", dir=args.dir) as tmp:
        report = asyncio.run(run(Path(tmp), args.events, 6.0 if args.quick else RUN_S))
    report |= {"name": "restart", "quick": args.quick, "python": platform.python_version(),
               "load_average_at_start": load}
    floor, ckpt, full = (report["floor_empty_journal_s"], report["checkpoint_s"],
                         report["full_fold_s"])
    print(f"port open, empty journal (floor): {floor:.2f}s")
    print(f"port open, full fold of {report['full_fold_events']:,} events: {full:.2f}s "
          f"(x{full / floor:.1f} the floor)")
    print(f"port open, from the checkpoint ({report['tail_events_folded']:.0f} events after "
          f"it): {ckpt:.2f}s (x{ckpt / floor:.2f} the floor, {full / ckpt:.1f}x faster than "
          f"the full fold)  TARGET <= {TARGET_S:g}s: x{TARGET_S / ckpt:.2f}")
    print(f"restore() inside those starts: full fold {report['full_fold_restore_s']:.2f}s, "
          f"checkpoint load and tail {report['checkpoint_restore_s']:.3f}s")
    print(f"checkpoint: {report['checkpoint_bytes']:,.0f} bytes, the loop paused "
          f"{report['checkpoint_pause_ms']} ms to take it; clean stop "
          f"{report['clean_stop_s']:.2f}s")
    print(f"sparkline after the restart: shows {report['sparkline_points_from_before']} of "
          f"the {report['sparkline_points_wanted']} points sampled before the restart that its "
          f"range still covers (step {STEP_S}s here; at the default 60 s: the hour before it)")
    n = f"{report['events']:,}"
    figure(report, f"restart: port open from a checkpoint ({n} events today)", ckpt, "s",
           floor=floor, floor_name="start with an empty journal", target=f"<= {TARGET_S:g} s",
           met=ckpt <= TARGET_S)
    figure(report, f"restart: port open by a full fold ({n} events today)", full, "s",
           floor=floor, floor_name="start with an empty journal")
    figure(report, "checkpoint: the loop's pause to take one", report["checkpoint_pause_ms"],
           "ms")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
