"""Benchmark: `wallboard replay --speed max` throughput on a synthetic stream and the helpdesk log.

Runs the real command (`python -m wallboard replay FILE --json`) and reads the rate it reports
on stderr: events per second of the replay loop by wall clock (reading, parsing, validation,
folding and snapshots; the target's measure), the loop's CPU in the main process, and the CPU of
the reader process that decodes and validates in parallel on files of 4 MB and more. It also
times the whole process (interpreter start and imports included).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from benchio import write_report

ROOT = Path(__file__).resolve().parents[1]
HELPDESK = ROOT / "tests" / "data" / "helpdesk" / "helpdesk.csv"
TARGET_EVENTS_PER_S = 100_000
START_TS = datetime(2025, 1, 15, 6, 0, tzinfo=UTC).timestamp()
# queue: (channel, share of arrivals, mean answered wait, abandon probability, mean talk s)
QUEUES = {"sales": ("voice", 0.35, 18.0, 0.10, 240.0),
          "support": ("voice", 0.35, 30.0, 0.14, 360.0),
          "chat": ("chat", 0.20, 50.0, 0.08, 420.0),
          "email": ("email", 0.10, 900.0, 0.02, 300.0)}
_RATES = re.compile(r"\(([\d,]+) events/s; ([\d.]+)s CPU, ([\d,]+) events/CPU s\)"
                    r"(?: with a reader process \(([\d.]+)s CPU\))?")


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC text with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def contact_stream(seed: int = 42, arrivals_per_s: float = 6.0,
                   agents: int = 300) -> Iterator[dict[str, Any]]:
    """An endless time-ordered stream of contact and agent events of a busy center."""
    rng = random.Random(seed)
    names, weights = list(QUEUES), [q[1] for q in QUEUES.values()]
    pending: list[tuple[float, int, dict[str, Any]]] = []
    t, n, order = START_TS, 0, itertools.count()

    def later(event: dict[str, Any]) -> None:
        heapq.heappush(pending, (event["ts"], next(order), event))

    while True:
        t += rng.expovariate(arrivals_per_s)
        while pending and pending[0][0] <= t:
            yield heapq.heappop(pending)[2]
        n += 1
        queue = rng.choices(names, weights)[0]
        channel, _, wait_mean, p_abandon, talk_mean = QUEUES[queue]
        base = {"queue": queue, "contact_id": f"c{n}"}
        yield {"type": "contact.queued", "ts": t, "channel": channel, **base}
        wait = rng.expovariate(1 / wait_mean)
        if rng.random() < p_abandon:
            later({"type": "contact.abandoned", "ts": t + wait, "wait_s": round(wait, 3), **base})
            continue
        agent, talk = f"a{rng.randrange(agents)}", rng.expovariate(1 / talk_mean)
        later({"type": "contact.answered", "ts": t + wait, "agent": agent, **base})
        later({"type": "agent.state", "ts": t + wait, "agent": agent, "state": "busy",
               "queue": queue})
        later({"type": "contact.ended", "ts": t + wait + talk, "agent": agent,
               "talk_s": round(talk, 3), "wrap_s": 20.0, **base})
        later({"type": "agent.state", "ts": t + wait + talk + 20, "agent": agent,
               "state": "available", "queue": queue})


def write_synthetic(path: Path, count: int, text_ts: bool) -> dict[str, int]:
    """Write `count` events to NDJSON with unique ids; returns the mix of types."""
    mix: dict[str, int] = {}
    with path.open("wb") as handle:
        stream = contact_stream()
        lines = []
        for i in range(1, count + 1):
            event = next(stream)
            event["id"] = f"e{i}"
            mix[event["type"]] = mix.get(event["type"], 0) + 1
            if text_ts:
                event = {**event, "ts": rfc3339(event["ts"])}
            else:
                event = {**event, "ts": round(event["ts"], 3)}
            lines.append(orjson.dumps(event))
            if len(lines) >= 65536:
                handle.write(b"\n".join(lines) + b"\n")
                lines.clear()
        if lines:
            handle.write(b"\n".join(lines) + b"\n")
    return mix


def replay(path: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the replay command; its loop rate (from stderr), wall time, output size."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "wallboard", "replay", str(path), "--json",
                           *extra], capture_output=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    err = proc.stderr.decode()
    if proc.returncode != 0:
        raise SystemExit(f"replay of {path} failed ({proc.returncode}): {err[-2000:]}")
    match = _RATES.search(err)
    if not match:
        raise SystemExit(f"no rates in the replay summary: {err[-2000:]}")
    reader_cpu = float(match.group(4)) if match.group(4) else 0.0
    return {"events_per_cpu_s": int(match.group(3).replace(",", "")),
            "events_per_wall_s": int(match.group(1).replace(",", "")),
            "loop_cpu_s": float(match.group(2)),
            "reader_process_cpu_s": reader_cpu,
            "process_wall_s": round(wall, 2), "stderr": err.strip().splitlines()[-1],
            "snapshots": proc.stdout.count(b"\n"), "file_bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """Run the replay benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="synthetic events")
    parser.add_argument("--quick", action="store_true",
                        help="a ~10 s run: 100,000 events, one timed replay")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "replay.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 100_000
    report: dict[str, Any] = {"name": "replay", "quick": args.quick,
                              "python": platform.python_version(),
                              "load_average_at_start": round(os.getloadavg()[0], 2),
                              "target_events_per_s": TARGET_EVENTS_PER_S, "runs": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        variants = [("synthetic_rfc3339_ts", True)] + ([] if args.quick else
                                                       [("synthetic_epoch_ts", False)])
        for name, text_ts in variants:
            path = Path(tmp) / f"{name}.ndjson"
            t0 = time.perf_counter()
            mix = write_synthetic(path, args.events, text_ts)
            print(f"{name}: generated {args.events:,} events ({path.stat().st_size / 1e6:.0f} MB)"
                  f" in {time.perf_counter() - t0:.1f}s", flush=True)
            runs = [("final", ())] + ([] if args.quick else [("every_15m", ("--every", "15m"))])
            for label, extra in runs:
                result = replay(path, extra)
                result["mix"] = mix
                report["runs"][f"{name}/{label}"] = result
                print(f"  --speed max {label:<9} {result['events_per_wall_s']:>9,} events/s "
                      f"({result['events_per_cpu_s']:,} per main-process CPU s; reader process "
                      f"{result['reader_process_cpu_s']}s CPU; process {result['process_wall_s']}s,"
                      f" {result['snapshots']} snapshots)", flush=True)
            path.unlink()
        if HELPDESK.exists():
            sys.path.insert(0, str(ROOT))
            from tests.helpdesk_events import helpdesk_events, write_ndjson

            path = Path(tmp) / "helpdesk.ndjson"
            write_ndjson(helpdesk_events(HELPDESK), path)
            result = replay(path)
            report["runs"]["helpdesk/final"] = result
            print(f"helpdesk ({result['file_bytes']:,} bytes): {result['stderr']}", flush=True)
        else:
            print(f"helpdesk: skipped, {HELPDESK} is absent")
    synthetic = [r["events_per_wall_s"] for k, r in report["runs"].items()
                 if k.startswith("synthetic") and k.endswith("/final")]
    report["rates_are"] = ("events per second of the replay loop by wall clock; *_cpu_s: per CPU "
                           "second of the main process (the reader process apart)")
    report["synthetic_min_events_per_s"] = min(synthetic)
    report["target_ratio"] = round(min(synthetic) / TARGET_EVENTS_PER_S, 2)
    report["target_met"] = min(synthetic) >= TARGET_EVENTS_PER_S
    print(f"TARGET >= {TARGET_EVENTS_PER_S:,} events/s (synthetic, --speed max, lowest run): "
          f"{min(synthetic):,} = x{report['target_ratio']} -> "
          f"{'MET' if report['target_met'] else 'MISSED'}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
