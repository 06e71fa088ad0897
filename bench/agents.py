"""Benchmark: what the agent tiles and reasons add to a flush (snapshot build, then rows).

N agents work an hour with reasons (away at lunch, on a break, training, an unknown text):
the floor is the snapshot build without a reason map and without agent tiles; then the same
build with a 10-code reason map (time in reason per window), and the agent tiles' rows of
three boards (a grid with names, a table with initials, a team table: server/people.py). CPU
time, best of five; the ratio is against the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchio import write_report
from workload import START_TS, VirtualClock

from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.kpi.snapshot import SnapshotBuilder
from wallboard.server.boards import resolve_boards
from wallboard.server.people import add_people

HOUR = 3600.0
TARGET_RATIO = 1.5  # reasons and three agent boards cost under half the floor's build again
REASONS = {f"Reason {i}": f"code_{i}" for i in range(10)}
TEXTS = ["Reason 1", "Reason 2", "Reason 3", "Lunch at the canteen", None]


def agent_events(n: int, t: float) -> list[dict[str, Any]]:
    """An agent's hour: available, a contact, busy, then away for a reason, every 5 minutes."""
    agent = {"agent": f"Agent Person {n}", "team": f"team-{n % 20}"}
    out: list[dict[str, Any]] = []
    for k in range(12):
        at = t + k * 300
        reason = TEXTS[(n + k) % len(TEXTS)]
        out += [{"type": "agent.state", "ts": at, "state": "available", "queues": ["sales"],
                 **agent},
                {"type": "contact.answered", "ts": at + 60, "queue": "sales",
                 "contact_id": f"a{n}-{k}", "wait_s": 4, "agent": agent["agent"]},
                {"type": "agent.state", "ts": at + 61, "state": "busy", **agent},
                {"type": "contact.ended", "ts": at + 200, "queue": "sales",
                 "contact_id": f"a{n}-{k}", "talk_s": 139, "agent": agent["agent"]},
                {"type": "agent.state", "ts": at + 210, "state": "away", **agent,
                 **({"reason": reason} if reason else {})}]
    return out


def settings_for(reasons: bool, tiles: bool) -> Any:
    config: dict[str, Any] = {"queues": {"sales": {}}, "server": {"max_agents": 100_000}}
    if reasons:
        config["agents"] = {"reasons": REASONS}
    if tiles:
        config["boards"] = {
            "grid": {"agents": "names", "tiles": [{"type": "agent_grid"}]},
            "table": {"agents": "initials", "tiles": [{"type": "agent_table"}]},
            "teams": {"tiles": [{"type": "team_table"}]}}
    return parse_settings(config, "<bench>")


def flush_cpu_s(count: int, reasons: bool, tiles: bool) -> float:
    """CPU seconds of one flush's build (best of five) with `count` agents after an hour."""
    settings = settings_for(reasons, tiles)
    clock = VirtualClock(START_TS)
    pipeline = Pipeline(Aggregator(settings, clock=clock))
    events = sorted((e for n in range(count) for e in agent_events(n, START_TS)),
                    key=lambda e: e["ts"])
    for raw in events:
        clock.now = raw["ts"]
        pipeline.ingest(pipeline.parse(raw, "bench"))
    agg = pipeline.aggregator
    agg.advance(clock.now)
    builder = SnapshotBuilder(agg)
    boards = resolve_boards(settings) if tiles else {}
    best = float("inf")
    for _ in range(5):  # CPU time: other processes share the machine
        cpu = time.process_time()
        tree = builder.build(clock.now)
        if tiles:
            add_people(tree, boards, agg.state.agents, settings)
        best = min(best, time.process_time() - cpu)
    return best


def main(argv: list[str] | None = None) -> int:
    """Measure the floor and the agent features at each size; print and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer agents (~10 s)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "agents.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report: dict[str, Any] = {"name": "agents", "quick": args.quick,
                              "load_average_at_start": round(os.getloadavg()[0], 2)}
    worst = 0.0
    for count in ((50, 150) if args.quick else (150, 500, 2000)):
        floor = flush_cpu_s(count, reasons=False, tiles=False)
        reasons = flush_cpu_s(count, reasons=True, tiles=False)
        full = flush_cpu_s(count, reasons=True, tiles=True)
        ratio = full / floor if floor else 0.0
        worst = max(worst, ratio)
        report[f"agents_{count}"] = {"floor_ms": round(floor * 1000, 2),
                                     "reasons_ms": round(reasons * 1000, 2),
                                     "reasons_and_tiles_ms": round(full * 1000, 2),
                                     "ratio": round(ratio, 2)}
        print(f"{count:>5} agents: snapshot build {floor * 1000:8.2f} ms (floor); with a "
              f"10-code reason map {reasons * 1000:8.2f} ms; and three agent boards' rows "
              f"{full * 1000:8.2f} ms; ratio {ratio:.2f}")
    report["worst_ratio"] = round(worst, 2)
    print(f"TARGET reasons and agent tiles <= {TARGET_RATIO}x the floor: worst {worst:.2f}x "
          f"-> {'MET' if worst <= TARGET_RATIO else 'MISSED'}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
