"""`wallboard report`: the interval report from the journal's history, as a table, CSV or JSON.

It reads the store of a possibly running server (read-only): closed intervals only; the ones
still open (the last lateness of today) are in the server's `GET /api/report`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import IO

import orjson

from wallboard.config.settings import load_settings, parse_settings
from wallboard.ingest.historian import report_loaders
from wallboard.journal.interface import make_journal
from wallboard.kpi.report import WIDTHS
from wallboard.kpi.reporting import FORMATS, ReportError, parse_request, report, to_csv, to_table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `report` subcommand."""
    parser = sub.add_parser("report", help="the interval report from the history (15m to 1d)")
    parser.add_argument("--from", dest="first", help="first local day, YYYY-MM-DD (today)")
    parser.add_argument("--to", dest="last", help="last local day, inclusive (--from)")
    parser.add_argument("--interval", choices=tuple(WIDTHS), default="15m")
    parser.add_argument("--queue", action="append", default=[],
                        help="a queue to report (repeat; default: every queue)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--config", help="the server's YAML configuration (site, journal)")
    parser.add_argument("--data-dir", help="the journal's directory (overrides the config)")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace, out: IO[bytes] | None = None,
               err: IO[str] | None = None) -> int:
    """Print the report; 2 on a bad parameter."""
    out = out if out is not None else sys.stdout.buffer
    err = err if err is not None else sys.stderr
    settings = load_settings(args.config) if args.config else parse_settings({}, "<defaults>")
    config = settings.journal
    if args.data_dir:
        config = config.model_copy(update={"data_dir": args.data_dir})
    params = {"interval": [args.interval], "queue": args.queue, "format": [args.format]}
    if args.first:
        params["from"] = [args.first]
    if args.last:
        params["to"] = [args.last]
    try:
        request, fmt = parse_request(params, settings, time.time())
    except ReportError as exc:
        print(f"error: {exc}", file=err)
        return 2
    journal = make_journal(config)
    journal.open(writable=False)
    try:
        load, offered, days = report_loaders(journal, settings.site.timezone, None,
                                             request.queues)
        doc = report(load, request, settings, (), offered, days)
    finally:
        asyncio.run(journal.close())  # never started: this only releases the store
    if fmt == "json":
        out.write(orjson.dumps(doc) + b"\n")
    elif fmt == "csv":
        out.write(to_csv(doc["rows"]))
    else:
        out.write(to_table(doc["rows"]).encode())
    return 0
