"""`wallboard journal export|stats|import`: read (or fill) the event journal of a server.

Times (--since, --until): RFC 3339 (`2026-11-23T08:00:00+02:00`), epoch seconds, `now`,
`today` or `yesterday` (local midnight in site.timezone), or relative to now: `now-90s`,
`now-15m`, `now-1h`, `now-2d` (or `--since=-1h`). Export selects by event time and writes
NDJSON in arrival order, which `wallboard replay` reads; stats counts events, bytes and
sources, and the quarantine (events kept but left out of every start because their fold
failed) with its most frequent reasons. `export --quarantined` writes the quarantined events,
one JSON object per line: {"ref", "recv", "stage", "reason", "at", "event"}; `jq -c .event`
turns that into input for `wallboard replay`. `import` stores recorded events at their own
times and rebuilds their interval history (it needs the journal to itself: stop the server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson

from wallboard.base.durations import parse_duration
from wallboard.config.settings import JournalConfig, Settings, load_settings, parse_settings
from wallboard.fold.periods import day_bounds
from wallboard.journal.interface import Journal, JournalStats, make_journal, to_line
from wallboard.model.events import EventError, parse_ts

_RELATIVE = ("now-", "-")  # now-15m, -15m: a duration before now


def parse_until(text: str) -> float:
    """An RFC 3339 time or epoch seconds, in epoch seconds."""
    with contextlib.suppress(ValueError):  # EventError is a ValueError too
        return parse_ts(float(text))
    try:
        return parse_ts(text.strip())
    except EventError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def parse_when(text: str, settings: Settings, now: float) -> float:
    """A time for --since/--until in epoch seconds; ArgumentTypeError when unreadable."""
    word = text.strip().lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        bounds = day_bounds(ZoneInfo(settings.site.timezone))
        start = bounds(now)[0]
        return start if word == "today" else bounds(start - 1)[0]
    for prefix in _RELATIVE:
        if word.startswith(prefix):
            with contextlib.suppress(ValueError):
                return now - parse_duration(word.removeprefix(prefix))
            break
    try:
        return parse_until(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use RFC 3339, epoch seconds, now, today, yesterday, "
            f"or now-15m, now-1h, now-2d)") from None


def add_parser(sub: Any) -> Any:
    """Register `journal export` and `journal stats`; the journal's subparsers, for `import`."""
    journal = sub.add_parser("journal", help="export, describe or import into the event journal",
                             description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = journal.add_subparsers(dest="journal_command", required=True)
    export = commands.add_parser("export", help="write stored events as NDJSON to stdout")
    export.add_argument("--since", metavar="T", help="first event time (required, except "
                        "with --quarantined)")
    export.add_argument("--until", metavar="T", help="last event time (default: no limit)")
    export.add_argument("--quarantined", action="store_true",
                        help="the quarantined events instead, with their stage and reason")
    stats = commands.add_parser("stats", help="events, bytes, bytes/event, time span, sources")
    stats.add_argument("--json", action="store_true", help="one JSON document")
    for command in (export, stats):
        add_location(command)
    export.set_defaults(func=run_export)
    stats.set_defaults(func=run_stats)
    return commands


def add_location(command: argparse.ArgumentParser) -> None:
    """--config and --data-dir, as every `journal` command takes them."""
    command.add_argument("--config", help="YAML configuration (its journal.data_dir)")
    command.add_argument("--data-dir", help="the journal's directory (overrides the config)")


def settings_of(args: argparse.Namespace) -> tuple[Settings, JournalConfig]:
    """The settings of --config (defaults without), the journal's with --data-dir applied."""
    settings = load_settings(args.config) if args.config else parse_settings({}, "<defaults>")
    config = settings.journal
    if args.data_dir:
        config = config.model_copy(update={"data_dir": args.data_dir})
    return settings, config


def run_export(args: argparse.Namespace, out: IO[bytes] | None = None,
               err: IO[str] | None = None) -> int:
    """Write the events whose time lies in [--since, --until] as NDJSON."""
    out = out if out is not None else sys.stdout.buffer
    err = err if err is not None else sys.stderr
    settings, config = settings_of(args)
    if args.quarantined:
        return _export_quarantined(config, out, err)
    if not args.since:
        print("error: journal export needs --since (or --quarantined)", file=err)
        return 2
    now = time.time()
    try:
        since = parse_when(args.since, settings, now)
        until = parse_when(args.until, settings, now) if args.until else float("inf")
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=err)
        return 2
    journal = make_journal(config)
    journal.open(writable=False)
    count = 0
    try:
        for batch in journal.scan(since, until):
            out.write(b"".join(map(to_line, batch)))
            count += len(batch)
        out.flush()
    except BrokenPipeError:  # the reader of stdout went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1
    finally:
        _close(journal)
    print(f"journal export: {count:,} events from {journal.location}", file=err)
    return 0


def _export_quarantined(config: JournalConfig, out: IO[bytes], err: IO[str]) -> int:
    """Write the quarantined events as NDJSON, each with its stage and reason."""
    journal = make_journal(config)
    journal.open(writable=False)
    count = 0
    try:
        for line in journal.quarantined():
            out.write(line)
            count += 1
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1
    finally:
        _close(journal)
    print(f"journal export: {count:,} quarantined events from {journal.location}", file=err)
    return 0


def run_stats(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """Print counts, size, bytes per event, the time span and events per source."""
    out = out if out is not None else sys.stdout
    _, config = settings_of(args)
    journal = make_journal(config)
    journal.open(writable=False)
    try:
        stats = journal.stats()
    finally:
        _close(journal)
    if args.json:
        doc = {**stats.__dict__, "bytes_per_event": stats.bytes_per_event}
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(format_stats(stats))
    return 0


def _close(journal: Journal) -> None:
    asyncio.run(journal.close())  # never started: this only releases the file


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else "-"


def format_stats(stats: JournalStats) -> str:
    """The human-readable stats."""
    per = f" ({stats.bytes_per_event:,.1f} bytes/event)" if stats.bytes_per_event else ""
    sources = ", ".join(f"{name or '?'} {n:,}" for name, n in stats.sources.items()) or "-"
    return (f"journal: {stats.path}\n"
            f"events: {stats.events:,}\n"
            f"bytes: {stats.bytes:,}{per}\n"
            f"event time: {_when(stats.oldest_ts)} .. {_when(stats.newest_ts)}\n"
            f"arrived: {_when(stats.oldest_recv)} .. {_when(stats.newest_recv)}\n"
            f"sources: {sources}\n"
            f"quarantined: {stats.quarantined:,}\n"
            + "".join(f"  {n:,} {why}\n" for why, n in stats.quarantine_reasons.items()))
