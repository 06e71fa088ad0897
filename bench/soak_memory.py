"""The fold's memory over virtual time at the soak's mix: where the soak's RSS growth goes.

The soak's 30 minutes are shorter than the longest rolling window (1 h), so its RSS slope
includes what fills until then (agents' window buckets, tombstones, recent ids). This folds
the same event mix on a virtual clock, `--rate` events per virtual second for `--minutes`, and
prints Python's traced memory every 5 minutes and its slope over the last 15 (MB/h), then the
checkpoint of the state reached: its size, the time to take it, and a floor (one flat copy).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
import tracemalloc

import soak_load
from soak_report import slope_per_hour

from wallboard.base.clock import VirtualClock
from wallboard.config.settings import parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest import checkpoint
from wallboard.ingest.pipeline import Pipeline
from wallboard.model.events import Event


def main() -> int:
    """Fold, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=80)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--agents", type=int, default=300)
    args = parser.parse_args()
    queues = soak_load.queue_names(args.queues)
    settings = parse_settings({"site": {"name": "Soak", "timezone": "UTC"},
                               "queues": {q: {"channel": "voice"} for q in queues}})
    clock = VirtualClock(time.time())

    class Clock:  # the generator stamps events with the virtual time
        time = staticmethod(clock)

    soak_load.time = Clock  # type: ignore[assignment]
    aggregator = Aggregator(settings, clock=clock)
    pipeline = Pipeline(aggregator)
    events = soak_load.contact_events(queues, args.agents)
    step = 1.0 / args.rate
    rows = []
    tracemalloc.start(1)
    for minute in range(1, args.minutes + 1):
        for i in range(60 * args.rate):
            raw = next(events)
            raw["id"] = f"s{minute}-{i}"
            pipeline.ingest(Event(source="hook", **raw))
            clock.advance(step)
            if i % args.rate == 0:
                aggregator.advance(clock())
        if minute % 5 == 0:
            gc.collect()
            logs = sum(a.entries() for a in aggregator.agent_windows.values())
            row = {"minute": minute,
                   "traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1),
                   "agent_log_entries": logs, "recent_ids": pipeline.dedupe_ids,
                   "departed": len(aggregator.state.departed)}
            rows.append(row)
            print(row, flush=True)
    print(f"traced memory slope over the last 15 minutes: "
          f"{slope_per_hour(rows, 'traced_mb', args.minutes - 15)} MB/h")
    tracemalloc.stop()
    print_checkpoint(pipeline)
    return 0


def print_checkpoint(pipeline: Pipeline) -> None:
    """The checkpoint of the state reached: its size, the time to take it, and a floor."""
    agents = pipeline.aggregator.agent_windows
    began = time.perf_counter()
    body = checkpoint.take(pipeline, None)
    took = time.perf_counter() - began
    began = time.perf_counter()
    part = pickle.dumps(agents, pickle.HIGHEST_PROTOCOL)
    part_s = time.perf_counter() - began
    # The floor: pickling one bytes object as large as the checkpoint (a copy, no objects).
    flat = bytes(len(body))
    began = time.perf_counter()
    pickle.dumps(flat, pickle.HIGHEST_PROTOCOL)
    floor = time.perf_counter() - began
    print(f"checkpoint: {len(body) / 2**20:.1f} MB taken in {1000 * took:.0f} ms "
          f"(agents' windows {len(part) / 2**20:.1f} MB in {1000 * part_s:.0f} ms); "
          f"floor (a flat copy as large) {1000 * floor:.1f} ms, ratio {took / floor:.0f}x",
          flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
