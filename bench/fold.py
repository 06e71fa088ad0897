"""Benchmark: events folded into windows per second on one core, parse cost, window memory."""

from __future__ import annotations

import argparse
import gc
import heapq
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchio import write_report
from pydantic import BaseModel

from wallboard.aggregate import Aggregator
from wallboard.config import Settings, parse_settings
from wallboard.events import Event, parse_event
from wallboard.pipeline import Pipeline

TARGET_EVENTS_PER_S = 50_000
PARSE_EVENTS = 200_000  # enough for stable parse and parse+ingest rates
SOURCE = "bench"
# 21:00 UTC: a long run crosses local midnight, so the 'today' window rolls over too.
START_TS = datetime(2025, 1, 15, 21, 0, tzinfo=UTC).timestamp()
CONFIG: dict[str, Any] = {
    "site": {"name": "Bench", "timezone": "UTC"},
    "queues": {
        "sales": {"label": "Sales", "channel": "voice"},
        "support": {"label": "Support", "channel": "voice"},
        "chat": {"label": "Chat", "channel": "chat", "service_level": {"threshold_s": 60}},
        "email": {"label": "Email", "channel": "email",
                  "service_level": {"threshold_s": 3600, "short_abandon_s": 0}},
    },
}
# Per queue: share of arrivals, mean wait when answered, mean wait before abandoning,
# abandon probability, mean talk, mean wrap-up (seconds).
PROFILES: dict[str, tuple[float, float, float, float, float, float]] = {
    "sales": (0.35, 18.0, 35.0, 0.10, 240.0, 30.0),
    "support": (0.35, 30.0, 45.0, 0.14, 360.0, 45.0),
    "chat": (0.20, 50.0, 90.0, 0.08, 420.0, 20.0),
    "email": (0.10, 1500.0, 7200.0, 0.02, 300.0, 60.0),
}
CHANNEL_OF = {name: q["channel"] for name, q in CONFIG["queues"].items()}
SURVEY_SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


class VirtualClock:
    """A clock the benchmark moves forward with event time."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        """The current virtual time."""
        return self.now


def event_stream(seed: int = 42, arrivals_per_s: float = 6.0, agents: int = 300,
                 start: float = START_TS) -> Iterator[Event]:
    """An endless, time-ordered stream of a busy center's events, with unique ids."""
    rng = random.Random(seed)
    names = list(PROFILES)
    weights = [PROFILES[q][0] for q in names]
    pending: list[tuple[float, int, Event]] = []  # (ts, tiebreak, event) scheduled for later
    seq = 0
    t = start
    contact = 0

    def later(event: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (event.ts, seq, event))

    while True:
        t += rng.expovariate(arrivals_per_s)
        while pending and pending[0][0] <= t:
            yield heapq.heappop(pending)[2]
        contact += 1
        queue = rng.choices(names, weights)[0]
        _, wait_mean, patience_mean, p_abandon, talk_mean, wrap_mean = PROFILES[queue]
        channel = CHANNEL_OF[queue]
        cid = f"c{contact}"
        yield Event(type="contact.queued", ts=t, source=SOURCE, queue=queue, channel=channel,
                    contact_id=cid)
        if rng.random() < p_abandon:
            wait = rng.expovariate(1 / patience_mean)
            later(Event(type="contact.abandoned", ts=t + wait, source=SOURCE, queue=queue,
                        channel=channel, contact_id=cid, wait_s=round(wait, 3)))
            continue
        wait = rng.expovariate(1 / wait_mean)
        talk = rng.expovariate(1 / talk_mean)
        hold = rng.choice((0.0, 0.0, 0.0, rng.uniform(5, 90)))
        wrap = rng.expovariate(1 / wrap_mean)
        agent = f"a{rng.randrange(agents)}"
        answered = t + wait
        ended = answered + talk + hold
        later(Event(type="contact.answered", ts=answered, source=SOURCE, queue=queue,
                    channel=channel, contact_id=cid, agent=agent, wait_s=round(wait, 3)))
        later(Event(type="agent.state", ts=answered, source=SOURCE, agent=agent, state="busy",
                    queue=queue))
        later(Event(type="contact.ended", ts=ended, source=SOURCE, queue=queue, channel=channel,
                    contact_id=cid, agent=agent, talk_s=round(talk, 3), hold_s=round(hold, 3),
                    wrap_s=round(wrap, 3)))
        later(Event(type="agent.state", ts=ended, source=SOURCE, agent=agent, state="wrapup",
                    queue=queue))
        later(Event(type="agent.state", ts=ended + wrap, source=SOURCE, agent=agent,
                    state=rng.choice(("available",) * 9 + ("away",)), queue=queue))
        if rng.random() < 0.25:
            kind = rng.choice(tuple(SURVEY_SCALES))
            low, high = SURVEY_SCALES[kind]
            later(Event(type="survey.response", ts=ended + rng.uniform(10, 120), source=SOURCE,
                        queue=queue, channel=channel, contact_id=cid, kind=kind,
                        score=float(rng.randint(low, high)), scale_min=float(low),
                        scale_max=float(high)))


def with_ids(stream: Iterator[Event]) -> Iterator[Event]:
    """Number the events of a stream: e1, e2, ..."""
    for n, event in enumerate(stream, start=1):
        event.id = f"e{n}"
        yield event


def make_events(count: int, seed: int = 42) -> list[Event]:
    """Pre-generate `count` time-ordered events."""
    return list(islice(with_ids(event_stream(seed)), count))


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC text with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def to_raw(event: Event, text_ts: bool) -> dict[str, Any]:
    """The JSON object a webhook would receive for `event` (no source: the server sets it)."""
    raw = event.to_dict()
    raw.pop("source", None)
    if text_ts:
        raw["ts"] = rfc3339(event.ts)
    return raw


def new_pipeline(settings: Settings) -> tuple[Pipeline, VirtualClock]:
    """A fresh aggregator and pipeline on a virtual clock at the stream's start."""
    clock = VirtualClock(START_TS)
    return Pipeline(Aggregator(settings, clock=clock)), clock


class Timing:
    """Wall-clock and CPU seconds of one timed run over `count` events."""

    def __init__(self, count: int, wall: float, cpu: float) -> None:
        self.count = count
        self.wall = wall
        self.cpu = cpu

    @property
    def rate_cpu(self) -> float:
        """Events per CPU second: what one core does when it is not shared."""
        return self.count / self.cpu

    @property
    def rate_wall(self) -> float:
        """Events per wall-clock second (lower when other processes take the core)."""
        return self.count / self.wall


def timed(fn: Callable[[], int]) -> Timing:
    """Run `fn` after a full collection; returns its Timing."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    count = fn()
    return Timing(count, time.perf_counter() - wall, time.process_time() - cpu)


def best_of(repeat: int, fn: Callable[[], Timing], until: float = math.inf
            ) -> tuple[Timing, list[Timing]]:
    """Run a measurement up to `repeat` times (fewer past `until`); the fastest, and all runs."""
    runs = [fn()]
    while len(runs) < repeat and time.perf_counter() < until:
        runs.append(fn())
    return min(runs, key=lambda t: t.cpu), runs


def bench_fold(settings: Settings, events: list[Event],
               outcome: dict[str, int] | None = None) -> Timing:
    """Ingest pre-parsed events (clock advanced to each event's time); fills `outcome`."""
    pipeline, clock = new_pipeline(settings)
    ingest = pipeline.ingest

    def run() -> int:
        for event in events:
            clock.now = event.ts
            ingest(event)
        return len(events)

    timing = timed(run)
    if outcome is not None:
        outcome.update(accepted=sum(pipeline.accepted.values()), late=pipeline.late,
                       duplicates=pipeline.duplicates, rejected=sum(pipeline.rejected.values()))
    return timing


def bench_loop_overhead(events: list[Event]) -> Timing:
    """The timing loop alone (clock update, no ingest)."""
    clock = VirtualClock(START_TS)

    def run() -> int:
        for event in events:
            clock.now = event.ts
        return len(events)

    return timed(run)


def bench_parse(raws: list[dict[str, Any]]) -> Timing:
    """Validate dicts into Events."""

    def run() -> int:
        for raw in raws:
            parse_event(raw, SOURCE)
        return len(raws)

    return timed(run)


def bench_end_to_end(settings: Settings, raws: list[dict[str, Any]], ts: list[float]) -> Timing:
    """Validate and fold dicts through Pipeline.ingest_raw."""
    pipeline, clock = new_pipeline(settings)
    ingest_raw = pipeline.ingest_raw

    def run() -> int:
        for now, raw in zip(ts, raws, strict=True):
            clock.now = now
            ingest_raw(raw, SOURCE)
        return len(raws)

    return timed(run)


def runs_text(runs: list[Timing]) -> str:
    """CPU-time rates of every run, for the log."""
    return ", ".join(f"{t.rate_cpu:,.0f}" for t in runs)


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by `obj` and everything it references (shared config and zones excluded)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, ZoneInfo | BaseModel | type):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in obj)
    else:
        if hasattr(obj, "__dict__"):
            size += deep_size(vars(obj), seen)
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    size += deep_size(getattr(obj, name), seen)
    return size


def rings_of(obj: Any, depth: int = 3) -> list[Any]:
    """Bucket rings (objects with `slots` and `ring_len`) reachable from `obj`."""
    if hasattr(obj, "slots") and hasattr(obj, "ring_len"):
        return [obj]
    if depth == 0 or isinstance(obj, str | bytes | int | float | ZoneInfo | BaseModel):
        return []
    if isinstance(obj, dict):
        children: list[Any] = list(obj.values())
    elif isinstance(obj, list | tuple):
        children = list(obj)
    else:
        names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
        children = [getattr(obj, n) for n in names if hasattr(obj, n)]
        children += list(getattr(obj, "__dict__", {}).values())
    return [ring for child in children for ring in rings_of(child, depth - 1)]


def window_memory(aggregator: Aggregator) -> dict[str, dict[str, int]]:
    """Per queue: leaves, allocated ring buckets (of the rings' length) and bytes of windows."""
    out: dict[str, dict[str, int]] = {}
    for (queue, _channel), leaf in aggregator.leaves.items():
        row = out.setdefault(queue or "<unassigned>",
                             {"leaves": 0, "buckets": 0, "ring_len": 0, "bytes": 0})
        row["leaves"] += 1
        for ring in rings_of(leaf):
            row["buckets"] += sum(b is not None for b in ring.slots)
            row["ring_len"] += ring.ring_len
        row["bytes"] += deep_size(leaf)
    return out


def parts(obj: Any) -> dict[str, dict[str, int]]:
    """Length and bytes of each container attribute of `obj` (what a structure holds)."""
    names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
    names += list(getattr(obj, "__dict__", {}))
    out = {}
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, dict | list | set | tuple):
            out[name] = {"len": len(value), "bytes": deep_size(value)}
    return out


def bench_memory(settings: Settings, checkpoints: list[int], until: float = math.inf
                 ) -> list[dict[str, Any]]:
    """Stream events and measure memory at each checkpoint (stopping early past `until`)."""
    pipeline, clock = new_pipeline(settings)
    stream = with_ids(event_stream(seed=7))
    results = []
    done = 0
    started = time.perf_counter()
    for target in sorted(checkpoints):
        truncated = False
        while done < target:
            if time.perf_counter() > until:
                truncated = True
                break
            for event in islice(stream, min(10_000, target - done)):
                clock.now = event.ts
                pipeline.ingest(event)
            done = min(target, done + 10_000)
        if truncated and results and results[-1]["events"] == done:
            results[-1]["truncated"] = True
            break
        agg = pipeline.aggregator
        per_queue = window_memory(agg)
        state = getattr(agg, "state", None)
        agent_windows = getattr(agg, "agent_windows", None) or {}
        results.append({
            "events": done,
            "truncated": truncated,
            "virtual_hours": round((clock.now - START_TS) / 3600, 2),
            "per_queue": per_queue,
            "windows_bytes_total": sum(q["bytes"] for q in per_queue.values()),
            "agent_windows": len(agent_windows),
            "agent_windows_bytes": deep_size(agent_windows),
            "live_state_bytes": deep_size(state),
            "live_state_parts": parts(state),
            "waiting_contacts": sum(len(getattr(q, "waiting", ()))
                                    for q in getattr(state, "queues", {}).values()),
            "agents": len(getattr(state, "agents", ())),
            "timers": len(getattr(agg, "timers", ())),
            "dedupe_ids": getattr(pipeline, "dedupe_ids", 0),
            "dedupe_bytes": deep_size([getattr(pipeline, "_seen", ()),
                                       getattr(pipeline, "_older", ())]),
            "elapsed_s": round(time.perf_counter() - started, 2),
        })
        if truncated:
            break
    return results


def pin_one_core() -> int | None:
    """Pin this process to a single CPU (the last one allowed); returns it."""
    try:
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def phase_fold(settings: Settings, events: list[Event], repeat: int,
               until: float = math.inf) -> dict[str, Any]:
    """Time Pipeline.ingest over pre-parsed events and print the figures against the target."""
    outcome: dict[str, int] = {}
    fold, runs = best_of(repeat, lambda: bench_fold(settings, events, outcome), until)
    overhead = bench_loop_overhead(events)
    ratio = fold.rate_cpu / TARGET_EVENTS_PER_S
    print("fold (Pipeline.ingest of parsed Events), events per CPU second (best run):")
    print(f"  best {fold.rate_cpu:,.0f} events/s ({fold.rate_wall:,.0f} by wall clock); "
          f"runs {runs_text(runs)}")
    print(f"  per event {1e6 / fold.rate_cpu:.2f} us incl. {1e6 / overhead.rate_cpu:.2f} us "
          f"of loop/clock overhead; outcome {outcome}")
    print(f"  TARGET >= {TARGET_EVENTS_PER_S:,} events/s on one core: ratio {ratio:.2f}x "
          f"-> {'MET' if ratio >= 1 else 'MISSED'}", flush=True)
    return {
        "fold_events_per_s": round(fold.rate_cpu),
        "fold_events_per_s_wall": round(fold.rate_wall),
        "fold_runs_events_per_s": [round(t.rate_cpu) for t in runs],
        "fold_outcome": outcome,
        "loop_overhead_us_per_event": round(1e6 / overhead.rate_cpu, 3),
        "ratio_to_target": round(ratio, 3),
        "target_met": ratio >= 1,
    }


def phase_parse(settings: Settings, events: list[Event], repeat: int,
                until: float = math.inf) -> dict[str, Any]:
    """Time parse_event alone and parse+ingest, with epoch and RFC 3339 timestamps."""
    events = events[:PARSE_EVENTS]
    ts = [e.ts for e in events]
    out: dict[str, Any] = {"parse_events": len(events), "parse_events_per_s": {},
                           "end_to_end_events_per_s": {}}
    print(f"parse_event from dicts (validation only) | end-to-end Pipeline.ingest_raw "
          f"(parse + fold), first {len(events):,} events, events per CPU second:")
    for label, text_ts in (("epoch_ts", False), ("rfc3339_ts", True)):
        raws = [to_raw(e, text_ts) for e in events]
        parse, parse_runs = best_of(repeat, lambda raws=raws: bench_parse(raws), until)
        e2e, e2e_runs = best_of(
            repeat, lambda raws=raws: bench_end_to_end(settings, raws, ts), until)
        out["parse_events_per_s"][label] = round(parse.rate_cpu)
        out["end_to_end_events_per_s"][label] = round(e2e.rate_cpu)
        print(f"  {label:<10}  parse {parse.rate_cpu:>9,.0f}/s ({1e6 / parse.rate_cpu:.2f} us)"
              f"  |  parse+ingest {e2e.rate_cpu:>9,.0f}/s ({1e6 / e2e.rate_cpu:.2f} us), ratio to "
              f"target {e2e.rate_cpu / TARGET_EVENTS_PER_S:.2f}x   [runs {runs_text(parse_runs)}"
              f" | {runs_text(e2e_runs)}]", flush=True)
    out["end_to_end_ratio_to_target"] = round(
        min(out["end_to_end_events_per_s"].values()) / TARGET_EVENTS_PER_S, 3)
    return out


def phase_memory(settings: Settings, checkpoints: list[int],
                 until: float = math.inf) -> dict[str, Any]:
    """Measure window memory per queue at each checkpoint and print it."""
    memory = bench_memory(settings, checkpoints, until)
    print("window memory per queue (allocated 10 s buckets / ring slots, bytes of all windows):")
    for point in memory:
        cut = " (TIME BUDGET REACHED: stopped early)" if point["truncated"] else ""
        print(f"  after {point['events']:>9,} events ({point['virtual_hours']:.1f} virtual h, "
              f"{point['elapsed_s']:.1f}s): windows {point['windows_bytes_total']:,} B total{cut}")
        for queue, row in point["per_queue"].items():
            print(f"    {queue:<9} leaves {row['leaves']}  buckets {row['buckets']:>4}/"
                  f"{row['ring_len']:<4} {row['bytes']:>9,} B")
        if point["agent_windows"]:
            print(f"    agent windows: {point['agent_windows']} agents "
                  f"{point['agent_windows_bytes']:,} B")
        held = ", ".join(f"{name} {part['len']:,}" for name, part in
                         point["live_state_parts"].items())
        print(f"    live state {point['live_state_bytes']:,} B ({held}; "
              f"{point['waiting_contacts']} waiting, {point['timers']} timers); dedupe "
              f"{point['dedupe_ids']:,} ids {point['dedupe_bytes']:,} B")
    first, last = memory[0], memory[-1]
    growth = last["windows_bytes_total"] / first["windows_bytes_total"]
    print(f"  window memory {first['events']:,} -> {last['events']:,} events: x{growth:.2f}; "
          f"allocated buckets never exceed the ring length, so it stops growing once the "
          f"ring is full (after the longest rolling span of center time)")
    out: dict[str, Any] = {"memory": memory, "window_memory_growth": round(growth, 3)}
    if len(memory) > 2:
        prev = memory[-2]
        tail = last["windows_bytes_total"] / prev["windows_bytes_total"]
        out["window_memory_growth_ring_full"] = round(tail, 4)
        print(f"  with the ring full, {prev['events']:,} -> {last['events']:,} events: "
              f"x{tail:.3f}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the fold benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000, help="events per timed run")
    parser.add_argument("--repeat", type=int, default=3, help="timed fold runs (best is kept)")
    parser.add_argument("--memory-events", type=int, nargs="+",
                        default=[10_000, 200_000, 1_000_000], help="window-memory checkpoints")
    parser.add_argument("--quick", action="store_true", help="a ~10 s smoke run")
    parser.add_argument("--max-seconds", type=float, default=110.0,
                        help="time budget: fewer repeats and an earlier memory stop past it")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fold.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.repeat, args.memory_events = 30_000, 1, [10_000, 30_000]
        args.max_seconds = min(args.max_seconds, 10.0)

    started = time.perf_counter()
    cpu = None if args.no_pin else pin_one_core()
    settings = parse_settings(CONFIG, "<bench>")
    print(f"fold benchmark: {args.events:,} events x {args.repeat} runs, python "
          f"{platform.python_version()}, pinned to cpu {cpu}; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    t0 = time.perf_counter()
    events = make_events(args.events)
    gen_s = time.perf_counter() - t0
    mix: dict[str, int] = {}
    for event in events:
        mix[event.type] = mix.get(event.type, 0) + 1
    span_h = (events[-1].ts - events[0].ts) / 3600
    print(f"generated {len(events):,} events in {gen_s:.1f}s, spanning {span_h:.2f} virtual "
          f"hours ({len(events) / (span_h * 3600):.1f} events/s of center time), 4 queues, "
          f"300 agents")
    print("  mix: " + ", ".join(f"{k} {v / len(events):.1%}" for k, v in sorted(mix.items())))

    report: dict[str, Any] = {
        "name": "fold",
        "quick": args.quick,
        "python": platform.python_version(),
        "pinned_cpu": cpu,
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "events": len(events),
        "virtual_hours": round(span_h, 2),
        "mix": mix,
        "generate_s": round(gen_s, 2),
        "rates_are": "events per CPU second of this process, best run (*_wall: wall clock)",
        "target_events_per_s": TARGET_EVENTS_PER_S,
    }
    budget = args.max_seconds
    report.update(phase_fold(settings, events, args.repeat, started + 0.25 * budget))
    report.update(phase_parse(settings, events, min(args.repeat, 2), started + 0.4 * budget))
    del events
    report.update(phase_memory(settings, args.memory_events, started + budget))
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
