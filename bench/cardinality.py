"""Benchmark: what one more queue, team or agent costs (memory, snapshot bytes, build time).

Each entity is busy for an hour (a contact every 20 s per queue; per agent, state changes
and handled contacts through the hour), so its windows hold what a working day allocates.
The figures are the marginal cost per entity: the server.max_queues, max_teams and
max_agents limits times these bound what the limits let in (docs/operations.md).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from benchio import write_report
from workload import START_TS, VirtualClock

from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.kpi.snapshot import SnapshotBuilder

HOUR = 3600.0
TARGET_SNAPSHOT_MS = 1000  # a snapshot of every limit at its default builds within a second


def queue_events(n: int, t: float) -> list[dict[str, Any]]:
    """A contact every 20 s for an hour in queue n (queued, answered, ended)."""
    out = []
    for k in range(int(HOUR / 20)):
        at, cid = t + k * 20, f"q{n}-c{k}"
        base = {"queue": f"queue-{n}", "contact_id": cid}
        out += [{"type": "contact.queued", "ts": at, **base},
                {"type": "contact.answered", "ts": at + 5, "wait_s": 5, **base},
                {"type": "contact.ended", "ts": at + 15, "talk_s": 10, **base}]
    return out


def agent_events(n: int, t: float, team: bool) -> list[dict[str, Any]]:
    """An agent working an hour: a state change and a handled contact every 5 minutes."""
    agent = {"agent": f"agent-{n}", **({"team": f"team-{n}"} if team else {})}
    out: list[dict[str, Any]] = []
    for k in range(12):
        at = t + k * 300
        out += [{"type": "agent.state", "ts": at, "state": "available", "queues": ["sales"],
                 **agent},
                {"type": "contact.answered", "ts": at + 60, "queue": "sales",
                 "contact_id": f"a{n}-{k}", "wait_s": 4, "agent": agent["agent"]},
                {"type": "agent.state", "ts": at + 61, "state": "busy", **agent},
                {"type": "contact.ended", "ts": at + 200, "queue": "sales",
                 "contact_id": f"a{n}-{k}", "talk_s": 139, "agent": agent["agent"]}]
    return out


def measure(count: int, events_of: Callable[[int, float], list[dict[str, Any]]]
            ) -> dict[str, float]:
    """Fold `count` entities' events; memory, snapshot bytes and build time, per entity."""
    settings = parse_settings({"queues": {"sales": {}}, "server": {
        "max_queues": 100_000, "max_teams": 100_000, "max_agents": 1_000_000}}, "<bench>")
    events = sorted((e for n in range(count) for e in events_of(n, START_TS)),
                    key=lambda e: e["ts"])
    clock = VirtualClock(START_TS)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pipeline = Pipeline(Aggregator(settings, clock=clock))
    for raw in events:
        clock.now = raw["ts"]
        pipeline.ingest(pipeline.parse(raw, "bench"))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    builder = SnapshotBuilder(pipeline.aggregator)
    pipeline.aggregator.advance(clock.now)  # the hub's tick, before its build
    doc = builder.build(clock.now)
    build_s = float("inf")
    for _ in range(3):  # CPU time, best of three: other processes share the machine
        cpu = time.process_time()
        builder.build(clock.now)
        build_s = min(build_s, time.process_time() - cpu)
    return {"bytes": held / count, "snapshot_bytes": len(orjson.dumps(doc)) / count,
            "build_us": build_s * 1e6 / count}


def main(argv: list[str] | None = None) -> int:
    """Measure queues, teams and agents; print the cost per entity and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer entities (~10 s)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "cardinality.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    queues, agents = (10, 100) if args.quick else (100, 2000)
    per_queue = measure(queues, queue_events)
    per_agent = measure(agents, lambda n, t: agent_events(n, t, team=False))
    with_team = measure(agents, lambda n, t: agent_events(n, t, team=True))
    per_team = {k: with_team[k] - per_agent[k] for k in per_agent}  # one team per agent
    report: dict[str, Any] = {"name": "cardinality", "quick": args.quick,
                              "queues": queues, "agents": agents}
    defaults = {"queue": (per_queue, 200), "team": (per_team, 200), "agent": (per_agent, 2000)}
    total_ms = 0.0
    for name, (cost, limit) in defaults.items():
        report[f"per_{name}"] = {k: round(v, 1) for k, v in cost.items()}
        at_limit = {k: v * limit for k, v in cost.items()}
        total_ms += at_limit["build_us"] / 1000
        print(f"per {name}: {cost['bytes']:,.0f} bytes held, "
              f"{cost['snapshot_bytes']:,.0f} snapshot bytes, {cost['build_us']:,.1f} us to "
              f"build; at the default limit ({limit:,}): {at_limit['bytes'] / 2**20:,.1f} MiB, "
              f"snapshot {at_limit['snapshot_bytes'] / 2**20:,.2f} MiB, "
              f"{at_limit['build_us'] / 1000:,.0f} ms")
    report["snapshot_ms_at_default_limits"] = round(total_ms, 1)
    print(f"TARGET snapshot of every default limit <= {TARGET_SNAPSHOT_MS} ms: "
          f"{total_ms:,.0f} ms -> {'MET' if total_ms <= TARGET_SNAPSHOT_MS else 'MISSED'}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
