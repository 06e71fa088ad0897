"""Benchmark: `wallboard journal import` of a synthetic contact centre, against its floor.

The import reads and validates each line, stores each event at its own time (de-duplicated
by id), then scans the span back and folds it into interval history. The floor, measured in
the same run on the same events, is the two costs no import can avoid: the journal's append
of already validated events in batches of 1,000 (as many commits), plus a bare fold of them
in time order on a virtual clock. Times are wall-clock seconds in this process (the journal's
writer thread included); the re-import (every line a duplicate) is reported beside.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchio import figure, write_report
from replay import contact_stream

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wallboard.base.clock import VirtualClock  # noqa: E402  (after the path: run as a script)
from wallboard.config.settings import Settings, parse_settings  # noqa: E402
from wallboard.fold.aggregate import Aggregator  # noqa: E402
from wallboard.ingest.backfill_cli import run_import  # noqa: E402
from wallboard.journal.sqlite_backend import SqliteJournal  # noqa: E402
from wallboard.model.events import Event, parse_event  # noqa: E402

TARGET_RATIO = 3.0  # this bench's own bar: an import within 3x its floor
QUEUES = {"sales": "voice", "support": "voice", "chat": "chat", "email": "email"}


def settings_for(data_dir: Path) -> Settings:
    return parse_settings({"queues": {q: {"channel": ch} for q, ch in QUEUES.items()},
                           "journal": {"data_dir": str(data_dir)}}, "<bench>")


def write_events(path: Path, count: int) -> list[dict[str, Any]]:
    """`count` events of a busy centre, ids set, ending an hour ago (within retention)."""
    raw = list(itertools.islice(contact_stream(arrivals_per_s=0.5), count))  # days, not hours
    shift = time.time() - 3600 - raw[-1]["ts"]
    for n, event in enumerate(raw):
        event["ts"] += shift
        event["id"] = f"e{n}"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in raw))
    return raw


def timed_import(path: Path, data_dir: Path, config: Path) -> tuple[float, str]:
    args = argparse.Namespace(file=str(path), config=str(config), data_dir=None,
                              source="import")
    out = io.StringIO()
    started = time.perf_counter()
    code = run_import(args, out, io.StringIO())
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"import failed ({code}): {out.getvalue()}")
    return elapsed, out.getvalue()


async def bare_append(events: list[Event], settings: Settings) -> float:
    journal = SqliteJournal(settings.journal)
    journal.open()
    journal.start()
    started = time.perf_counter()
    try:
        await asyncio.gather(*(journal.append(events[i:i + 1000], events[i].ts)
                               for i in range(0, len(events), 1000)))
    finally:
        await journal.close()
    return time.perf_counter() - started


def bare_fold(events: list[Event], settings: Settings) -> float:
    started = time.perf_counter()
    ordered = sorted(events, key=lambda e: e.ts)
    clock = VirtualClock(ordered[0].ts)
    aggregator = Aggregator(settings, clock)
    for event in ordered:
        if event.ts > clock.now:
            clock.now = event.ts
        aggregator.fold(event)
    aggregator.advance(clock.now + 3600)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Run the import benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000, help="synthetic events")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 20,000 events")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "backfill.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 20_000
    report: dict[str, Any] = {"name": "backfill", "quick": args.quick, "events": args.events,
                              "load_average_at_start": round(os.getloadavg()[0], 2)}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "events.ndjson"
        raw = write_events(path, args.events)
        config = root / "import.yaml"
        config.write_bytes(orjson.dumps({
            "queues": {q: {"channel": ch} for q, ch in QUEUES.items()},
            "journal": {"data_dir": str(root / "import")}}))
        seconds, text = timed_import(path, root / "import", config)
        again, _ = timed_import(path, root / "import", config)
        events = [parse_event(e, "import") for e in raw]
        floor_append = asyncio.run(bare_append(events, settings_for(root / "floor")))
        floor_fold = bare_fold(events, settings_for(root / "floor"))
    floor = floor_append + floor_fold
    per_million = 1e6 / args.events
    print(text, end="")
    print(f"import: {seconds:.2f}s ({args.events / seconds:,.0f} events/s); re-import (all "
          f"duplicates): {again:.2f}s")
    print(f"floor: bare append {floor_append:.2f}s + bare fold {floor_fold:.2f}s = {floor:.2f}s")
    ratio = seconds / floor
    report.update(import_s=round(seconds, 3), reimport_s=round(again, 3),
                  floor_append_s=round(floor_append, 3), floor_fold_s=round(floor_fold, 3),
                  events_per_s=round(args.events / seconds))
    figure(report, "journal import, s per 1M events", seconds * per_million, "s",
           floor=floor * per_million, floor_name="bare append + bare fold",
           target=f"<= {TARGET_RATIO:g}x floor", met=ratio <= TARGET_RATIO)
    print(f"TARGET import <= {TARGET_RATIO:g}x its floor: x{ratio:.2f} -> "
          f"{'MET' if ratio <= TARGET_RATIO else 'MISSED'}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
