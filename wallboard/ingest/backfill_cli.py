"""`wallboard journal import EVENTS.ndjson`: the command line of the backfill, and its report."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from wallboard.config.settings import Settings
from wallboard.ingest.backfill import Imported, import_events
from wallboard.ingest.rebuild import Rebuilt, rebuild_history
from wallboard.journal.cli import add_location, settings_of
from wallboard.journal.interface import Journal, JournalDown, JournalLocked, make_journal

DESCRIPTION = """\
Store recorded events (NDJSON, one canonical event per line, as `wallboard replay` and the
webhook take them) in the journal at their own times, de-duplicated by (source, id), then
rebuild the interval history of the span they touch (from the first event's 15-minute
interval to the last one's, replacing what was stored for it unless that counts events the
journal no longer holds). Each line is validated like every other path; a bad line is
refused, reported with its number and field, and the rest goes on. The journal must not be
in use: stop the server first (its next start folds back the imported events its windows
cover). With journal.backend redis, running nodes may stay up (docs/operations.md).

exit status: 0 events were stored (or the journal held them all already), 1 no line held a
valid event (every line refused, or none), 2 the file, configuration or journal could not be
used (events committed before a journal failure stay stored: importing the file again skips
them).
"""
SOURCE = "import"


def add_parser(commands: Any) -> None:
    """Register `journal import` on the `journal` command's subparsers."""
    command = commands.add_parser("import", help="store recorded events at their own times and "
                                  "rebuild their interval history", description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("file", metavar="EVENTS.ndjson", help="the events, one JSON per line")
    command.add_argument("--source", default=SOURCE,
                         help="the source the events are stored under, the first half of their "
                         "de-duplication key (default: import; the live connector's name makes "
                         "ids it already stored count as duplicates)")
    add_location(command)
    command.set_defaults(func=run_import)


REBUILD = """\
Rebuild the interval history of local days FROM..TO (inclusive) from the raw events the
journal holds, as an import does for the span it touches: a stored interval is replaced,
unless it counts events the journal no longer holds (pruned past journal.retention_days).
Use it after restoring a journal from a backup, or for days whose history is missing. The
journal must not be in use (stop the server first; with Redis, nodes may stay up).
"""


def add_rebuild_parser(commands: Any) -> None:
    """Register `journal rebuild-history` on the `journal` command's subparsers."""
    command = commands.add_parser("rebuild-history", description=REBUILD,
                                  help="rebuild the interval history of days from raw events",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("--from", dest="first", required=True, help="first local day")
    command.add_argument("--to", dest="last", help="last local day, inclusive (--from)")
    add_location(command)
    command.set_defaults(func=run_rebuild)


def run_rebuild(args: argparse.Namespace, out: IO[str] | None = None,
                err: IO[str] | None = None) -> int:
    """Rebuild the days' intervals; 2 on a bad day, a locked or unusable journal."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    settings, config = settings_of(args)
    tz = ZoneInfo(settings.site.timezone)
    try:
        first = date.fromisoformat(args.first)
        last = date.fromisoformat(args.last) if args.last else first
    except ValueError as exc:
        print(f"error: --from/--to: {exc}", file=err)
        return 2
    if last < first:
        print(f"error: --to: {last} is before --from ({first})", file=err)
        return 2
    since = datetime.combine(first, datetime.min.time(), tz).timestamp()
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp()
    journal = make_journal(config)
    try:
        journal.open(writable=True)
    except JournalLocked as exc:
        print(f"error: journal: {exc}\n  stop the server, rebuild, then start it again",
              file=err)
        return 2

    async def run() -> Rebuilt:
        journal.start()
        try:
            return await rebuild_history(journal, settings, since, until - 1)
        finally:
            await journal.close()

    try:
        result = asyncio.run(run())
    except JournalDown as exc:
        print(f"error: journal: {exc}", file=err)
        return 2
    kept = f", {result.kept:,} kept as stored" if result.kept else ""
    out.write(f"journal rebuild-history: {first} .. {last} in {journal.location}: "
              f"{result.events:,} events folded, {result.written:,} intervals written{kept}, "
              f"{result.errors.total():,} fold errors\n")
    return 0


def run_import(args: argparse.Namespace, out: IO[str] | None = None,
               err: IO[str] | None = None) -> int:
    """Import the file; print the report. The exit status is as DESCRIPTION says."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    settings, config = settings_of(args)
    settings = settings.model_copy(update={"journal": config})
    path = Path(args.file)
    try:
        handle = path.open("rb")
    except OSError as exc:
        print(f"error: {path}: {exc.strerror or exc}", file=err)
        return 2
    with handle:
        journal = make_journal(config)
        try:
            journal.open(writable=True)
        except JournalLocked as exc:
            print(f"error: journal: {exc}\n  stop the server, import, then start it again: "
                  f"its start folds back the imported events its windows cover", file=err)
            return 2
        try:
            report = asyncio.run(_run(journal, handle, str(path), settings, args.source))
        except JournalDown as exc:
            print(f"error: journal: {exc} (events committed before it stay stored; importing "
                  f"the file again skips them)", file=err)
            return 2
    out.write(format_report(report, str(path), journal.location, args.source))
    return 0 if report.stored or report.duplicates else 1


async def _run(journal: Journal, handle: IO[bytes], name: str, settings: Settings,
               source: str) -> Imported:
    journal.start()
    try:
        return await import_events(handle, name, journal, settings, source)
    finally:
        await journal.close()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_report(report: Imported, name: str, location: str, source: str) -> str:
    """The human-readable report."""
    lines = [f"journal import: {name} into {location} (source {source!r})",
             f"lines: {report.lines:,}" + (f" ({report.blank:,} blank, skipped)"
                                           if report.blank else ""),
             f"stored: {report.stored:,}" + (
                 f" ({report.without_id:,} without an id: importing them again stores them "
                 f"again)" if report.without_id else ""),
             f"duplicates: {report.duplicates:,}"]
    refused = report.refused.total()
    reasons = ", ".join(f"{code} {n:,}" for code, n in report.refused.most_common())
    lines.append(f"refused: {refused:,}" + (f" ({reasons})" if reasons else ""))
    lines += [f"  {text}" for text in report.shown]
    if refused > len(report.shown):
        lines.append(f"  … {refused - len(report.shown):,} more")
    if report.first_ts is not None and report.last_ts is not None:
        lines.append(f"event time: {_when(report.first_ts)} .. {_when(report.last_ts)}")
    if report.out_of_order:
        lines.append(f"out of order: {report.out_of_order:,} events more than "
                     f"site.lateness_s before one stored ahead of them (the file is far from "
                     f"time order): a start-up replay counts them as late in the live windows; "
                     f"the interval history has them")
    history = report.history
    if history is not None:
        kept = (f"; {history.kept:,} kept as stored: they count events the journal no longer "
                f"holds" if history.kept else "")
        lines.append(f"intervals written: {history.written:,} "
                     f"({_when(history.since)} .. {_when(history.until)}; {history.events:,} "
                     f"events folded{kept})")
        errors = history.errors.total()
        lines.append(f"fold errors: {errors:,}")
        lines += [f"  {n:,} {why}" for why, n in history.errors.most_common(10)]
    return "\n".join(lines) + "\n"
