"""Benchmark: journal append throughput, bytes per event, and the start-up replay of 10⁶ events.

Runs the real `SqliteJournal` (WAL, synchronous=FULL, fsync per commit, its writer thread) and
the real start-up replay (`wallboard.ingest.restore.restore`: read, decode and fold every event
through the pipeline on the arrival-time clock), on a journal in a temporary directory.

- append: events appended as a webhook does, `--append-size` events per append with up to
  `--in-flight` appends outstanding (many senders), timed from the first append until the last
  one is durable; and once more one event per append without waiting (a push source).
- bytes/event: database size after the writer closed (the write-ahead log checkpointed).
- replay: `restore()` over every stored event, also split into reading/decoding and folding.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchio import write_report
from workload import CONFIG, event_stream, pin_one_core, with_ids

from wallboard.base.clock import VirtualClock
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.ingest.restore import Restored, replay_start, restore
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.model.events import Event

TARGET_APPEND_PER_S = 50_000
TARGET_REPLAY_S = 20.0  # for 10⁶ events
REPLAY_TARGET_EVENTS = 1_000_000
# 00:30 UTC: ten hours of a busy center stay inside one 'today', so all of it is replayed.
DAY_START = datetime(2025, 1, 15, 0, 30, tzinfo=UTC).timestamp()
CHUNK = 100_000  # events generated (untimed) before each timed append run


def stream(seed: int = 42) -> Iterator[Event]:
    """The fold benchmark's center, starting just after midnight."""
    return with_ids(event_stream(seed, start=DAY_START))


async def append_all(journal: SqliteJournal, events: list[Event], size: int,
                     in_flight: int) -> float:
    """Append `events` in appends of `size`, at most `in_flight` outstanding; seconds taken."""
    pending: set[asyncio.Future[None]] = set()
    started = time.perf_counter()
    for i in range(0, len(events), size):
        part = events[i:i + size]
        pending.add(journal.append(part, part[-1].ts))
        if len(pending) >= in_flight:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.wait(pending)
    return time.perf_counter() - started


async def phase_append(data: Path, total: int, size: int, in_flight: int,
                       single: int) -> dict[str, Any]:
    """Fill the journal with `total` events; time the appends only."""
    journal = SqliteJournal(JournalConfig(data_dir=str(data)))
    journal.open()
    journal.start()
    source = stream()
    seconds, done = 0.0, 0
    while done < total:
        events = list(islice(source, min(CHUNK, total - done)))
        seconds += await append_all(journal, events, size, in_flight)
        done += len(events)
    status = journal.status
    batched = {"events": done, "seconds": round(seconds, 3),
               "events_per_s": round(done / seconds), "batches": status.batches,
               "mean_batch_events": round(status.appended / max(status.batches, 1), 1),
               "mean_commit_ms": round(1000 * status.batch_seconds_sum /
                                       max(status.batches, 1), 3)}
    # One event per append and nobody waiting for it, as a push source does; no target.
    events = list(islice(source, single))
    batches = status.batches
    one_s = await append_all(journal, events, 1, len(events))
    singles = {"events": len(events), "seconds": round(one_s, 3),
               "events_per_s": round(len(events) / one_s),
               "batches": status.batches - batches}
    await journal.close()
    return {"append_batched": batched, "append_single": singles}


def phase_bytes(data: Path, events: int) -> dict[str, Any]:
    """Size on disk per stored event, after the close checkpointed the log."""
    db = data / DB_NAME
    size = db.stat().st_size
    wal = Path(f"{db}-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    return {"db_bytes": size, "wal_bytes": wal_size,
            "bytes_per_event": round((size + wal_size) / events, 1)}


def phase_replay(data: Path) -> dict[str, Any]:
    """restore() over the whole journal, and its reading/decoding part alone."""
    settings = parse_settings(CONFIG, "<bench>")
    journal = SqliteJournal(JournalConfig(data_dir=str(data)))
    journal.open(writable=False)
    gc.collect()
    gc.disable()  # as restore() does
    started = time.perf_counter()
    read, last = 0, 0.0
    for batch in journal.read(0.0):
        read += len(batch)
        last = batch[-1][0]
    read_s = time.perf_counter() - started
    gc.enable()
    clock = VirtualClock(last + 1.0)  # the replay's "now": just after the last stored event
    aggregator = Aggregator(settings, clock)
    pipeline = Pipeline(aggregator)
    restored = Restored()
    assert replay_start(settings, clock.now) <= DAY_START
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    restore(journal, pipeline, clock.now, restored)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    asyncio.run(journal.close())
    offered = sum(leaf.windows.lifetime[0] for leaf in aggregator.leaves.values())
    return {"events": restored.events, "read_events": read, "seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2), "read_decode_seconds": round(read_s, 2),
            "fold_seconds": round(wall - read_s, 2),
            "events_per_s": round(restored.events / wall), "offered_today": offered,
            "late": aggregator.late, "duplicates_skipped": read - restored.events}


def main(argv: list[str] | None = None) -> int:
    """Run the journal benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=REPLAY_TARGET_EVENTS,
                        help="events stored, then replayed")
    parser.add_argument("--append-size", type=int, default=100, help="events per append")
    parser.add_argument("--in-flight", type=int, default=32, help="appends outstanding")
    parser.add_argument("--single", type=int, default=50_000,
                        help="events appended one per append")
    parser.add_argument("--quick", action="store_true", help="a ~10 s smoke run")
    parser.add_argument("--dir", type=Path, help="where the journal goes (default: a temp dir)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "journal.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.single = 20_000, 2_000

    started = time.perf_counter()
    print(f"journal benchmark: {args.events:,} events, appends of {args.append_size} "
          f"({args.in_flight} in flight), python {platform.python_version()}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="wallboard-journal-bench-",
                                     dir=args.dir) as tmp:
        data = Path(tmp) / "data"
        report: dict[str, Any] = {"name": "journal", "quick": args.quick,
                                  "python": platform.python_version(),
                                  "load_average_at_start": round(os.getloadavg()[0], 2)}
        report.update(asyncio.run(phase_append(data, args.events, args.append_size,
                                               args.in_flight, args.single)))
        stored = args.events + args.single
        report.update(phase_bytes(data, stored))
        batched, single = report["append_batched"], report["append_single"]
        ratio = batched["events_per_s"] / TARGET_APPEND_PER_S
        print(f"append, {args.append_size} events per append: {batched['events_per_s']:,} "
              f"events/s ({batched['events']:,} in {batched['seconds']}s; "
              f"{batched['batches']:,} commits of {batched['mean_batch_events']} events, "
              f"{batched['mean_commit_ms']} ms each)  TARGET >= {TARGET_APPEND_PER_S:,}: "
              f"x{ratio:.2f}")
        print(f"append, 1 event per append: {single['events_per_s']:,} events/s "
              f"({single['events']:,} in {single['seconds']}s, {single['batches']:,} commits)")
        print(f"bytes per event on disk: {report['bytes_per_event']} "
              f"({report['db_bytes']:,} bytes for {stored:,} events)")
        cpu = pin_one_core()  # the replay is one thread: measure it on one core
        replay = phase_replay(data)
        report["replay"] = replay
        report["replay_pinned_cpu"] = cpu
        per_million = replay["seconds"] * REPLAY_TARGET_EVENTS / max(replay["events"], 1)
        report["replay_seconds_per_million"] = round(per_million, 2)
        scaled = "" if replay["events"] == REPLAY_TARGET_EVENTS else \
            f" (measured on {replay['events']:,}, scaled)"
        print(f"replay of {replay['events']:,} events: {replay['seconds']}s wall, "
              f"{replay['cpu_seconds']}s CPU ({replay['events_per_s']:,} events/s; reading "
              f"and decoding {replay['read_decode_seconds']}s, folding "
              f"{replay['fold_seconds']}s)")
        print(f"replay time for 10^6 events: {per_million:.2f}s{scaled}  TARGET <= "
              f"{TARGET_REPLAY_S:g}s: x{TARGET_REPLAY_S / per_million:.2f}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
