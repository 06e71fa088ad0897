"""`wallboard replay`: a recorded NDJSON event stream through the pipeline on a virtual clock.

Output (stdout) is KPI snapshots only: one at every `--every` boundary of event time (multiples
of the interval since the Unix epoch, so `1h` falls on the hour and `1d` at 00:00 UTC) that
lies after the first event and before the final time, then one at the final time: the latest
event time, or `--until`. A snapshot at a boundary includes every event stamped at or before
it that came before the first event past it. Messages go to stderr: every malformed line (the
first 1,000 in full) with its line number, field path and reason, the URL when serving, a
progress line on a terminal, and a summary. Blank lines are skipped without a report.
With `--speed N` the board is served on the same virtual clock (configured sources are never
started) and, once the replay ends, the final state stays served until interrupted.

Exit codes: 0 when the file was read and at least one event replayed; 1 when it was read but
held no valid event (at or before `--until`), in which case nothing is printed on stdout, or
when stdout was closed early; 2 for a missing or unreadable file, a bad configuration or bad
arguments; 130 when interrupted before the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Generator, Iterator
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO, Any

import orjson
from aiohttp import web

from wallboard.base.clock import VirtualClock
from wallboard.base.durations import parse_duration
from wallboard.base.gcpause import gc_paused
from wallboard.config.file import host_arg, port_arg
from wallboard.config.settings import Settings, load_settings, parse_settings
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.pipeline import Pipeline
from wallboard.journal.cli import parse_until
from wallboard.kpi.snapshot import SnapshotBuilder
from wallboard.model.events import Event, EventError
from wallboard.replay.input import PROGRESS_INTERVAL_S, SOURCE, Reader, Report, use_parallel
from wallboard.server import keys
from wallboard.server.app import create_app

SLACK_S = 0.01  # events due within this much real time are folded as one batch, no sleep
YIELD_EVERY_S = 0.05  # when behind schedule, still let the server run this often


def parse_interval(text: str) -> int:
    """An interval like 30s, 15m, 1h, 1d (or bare seconds) in whole seconds."""
    with contextlib.suppress(ValueError):
        seconds = parse_duration(text)
        if seconds and seconds == int(seconds):
            return int(seconds)
    raise argparse.ArgumentTypeError(f"not an interval: {text!r} (use e.g. 30s, 15m, 1h, 1d)")


def parse_speed(text: str) -> float | None:
    """'max' (None: as fast as possible) or a positive real-time multiplier."""
    if text.strip().lower() == "max":
        return None
    with contextlib.suppress(ValueError):
        if math.isfinite(speed := float(text)) and speed > 0:
            return speed
    raise argparse.ArgumentTypeError(f"not a speed: {text!r} (use max or a number > 0)")


def add_parser(sub: Any) -> None:
    """Register the `replay` subcommand on the CLI's subparsers."""
    p = sub.add_parser("replay", help="replay a recorded NDJSON event stream on a virtual clock",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="NDJSON file, one canonical event per line")
    p.add_argument("--speed", type=parse_speed, default=None, metavar="N|max",
                   help="max (default): as fast as possible; N: N x real time, serving the board")
    p.add_argument("--until", type=parse_until, metavar="TIME",
                   help="stop at this event time (RFC 3339 or epoch seconds)")
    p.add_argument("--every", type=parse_interval, metavar="INTERVAL",
                   help="also print a snapshot at each multiple of INTERVAL (30s, 15m, 1h, 1d)")
    p.add_argument("--config", help="YAML configuration (default: no queues; sources ignored)")
    p.add_argument("--json", action="store_true", help="compact JSON, one document per line")
    p.add_argument("--host", type=host_arg,
                   help="with --speed N: listen address (overrides server.host)")
    p.add_argument("--port", type=port_arg,
                   help="with --speed N: listen port (0: any free port)")
    p.add_argument("--exit-at-end", action="store_true",
                   help="with --speed N: stop serving when the replay ends")
    p.set_defaults(func=run)


class Replay:
    """One run: the reader, the virtual clock, the engine and the snapshots on stdout."""

    def __init__(self, args: argparse.Namespace, settings: Settings, reader: Reader,
                 out: IO[bytes]) -> None:
        self.args = args
        self.settings = settings
        self.reader = reader
        self.report = reader.report
        self.out = out
        self.every: int = args.every or 0
        self.until: float = math.inf if args.until is None else args.until
        self.option = 0 if args.json else orjson.OPT_INDENT_2
        self.clock = VirtualClock(0.0)
        self.builder: SnapshotBuilder | None = None
        self.pipeline: Pipeline | None = None
        self.boundary = math.inf
        self.stopped_early = False
        self.latest = self.emitted = -math.inf
        self.started, self.cpu = time.perf_counter(), time.process_time()
        self.yielded = 0.0  # paced: when the server last had the loop

    def attach(self, first: Event, aggregator: Aggregator, pipeline: Pipeline) -> None:
        """Use this engine; bad lines are counted where the pipeline counts rejections."""
        self.builder, self.pipeline = SnapshotBuilder(aggregator), pipeline
        pipeline.rejected = self.reader.rejected
        self.latest = first.ts
        if self.every:
            self.boundary = (first.ts // self.every + 1) * self.every

    def emit(self, t: float) -> None:
        """Print the snapshot at virtual time `t`."""
        assert self.builder is not None and self.pipeline is not None
        if self.clock.now != self.emitted:  # an event moved the clock since the last snapshot
            self.latest = self.clock.now
        self.clock.now = self.clock.cap = self.emitted = max(self.latest, t)
        self.builder.agg.advance(t)  # the replay's tick: windows and due timers move to t
        doc = self.builder.build(t)
        doc["sources"] = {SOURCE: {"status": "up", "last_error": None,
                                   "last_event_ts": self.latest,
                                   "events": sum(self.pipeline.accepted.values())}}
        self.out.write(orjson.dumps(doc, option=self.option) + b"\n")
        self.out.flush()

    def steps(self, first: Event, events: Iterator[Event], paced: bool) -> Iterator[float]:
        """Fold events in order, yielding each snapshot (paced: and event) time before it."""
        assert self.pipeline is not None
        clock, until, reject = self.clock, self.until, self.reader.reject
        ingest = self.pipeline.ingest
        for event in chain((first,), events):
            ts = event.ts
            if ts > clock.now:
                if ts > until:
                    self.stopped_early = True
                    break
                while ts > self.boundary:
                    yield self.boundary
                    self.emit(self.boundary)
                    self.boundary += self.every
                if paced:
                    yield ts
                clock.now = ts
            try:
                ingest(event)
            except EventError as exc:
                reject(exc, count=False)  # the pipeline counted it (queue_limit)
        final = clock.now if math.isinf(until) else until
        while self.boundary < final:
            yield self.boundary
            self.emit(self.boundary)
            self.boundary += self.every
        yield final
        self.emit(final)

    def run_max(self, first: Event, events: Iterator[Event]) -> None:
        """Fold everything as fast as possible, without asyncio."""
        self.clock.now = first.ts
        # The clock does not flow here: reading its `now` through C (partial of getattr) saves
        # a Python call on every event.
        aggregator = Aggregator(self.settings, partial(getattr, self.clock, "now"))
        self.attach(first, aggregator, Pipeline(aggregator))
        with gc_paused():
            for _ in self.steps(first, events, paced=False):
                pass
        if isinstance(events, Generator):
            events.close()  # stopped early (--until): end the reader (and its process) now
        self.summary()

    async def run_paced(self, first: Event, events: Iterator[Event], speed: float) -> int:
        """Serve the board and fold events at `speed` x their recorded pace."""
        self.clock.now = self.clock.cap = first.ts
        app = create_app(self.settings, clock=self.clock)
        self.attach(first, app[keys.AGGREGATOR], app[keys.PIPELINE])
        server = self.settings.server
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        assert runner.server is not None
        # As `serve` does: the connection cap and deadlines, and true counts on /metrics.
        app[keys.CONNECTIONS].attach(runner.server)
        try:
            try:
                await web.TCPSite(runner, server.host, server.port).start()
            except (OSError, OverflowError) as exc:
                self.report.info(f"error: cannot listen on {server.host}:{server.port}: "
                                 f"{getattr(exc, 'strerror', None) or exc}")
                return 2
            host, port = runner.addresses[0][:2]
            host = {"0.0.0.0": "127.0.0.1", "::": "localhost"}.get(host, host)  # a URL to open
            boards: dict[str, dict[str, Any]] = app[keys.BOARDS]
            board = next(iter(boards), "overview")
            self.report.info(f"replay: serving http://{host}:{port}/board/{board} at {speed:g}x "
                             f"(api: http://{host}:{port}/api/snapshot)")
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            self.clock.start(speed)
            finished = True
            for t in self.steps(first, events, paced=True):
                if not await self.reach(t, stop):
                    finished = False
                    break
            self.summary()
            if finished and not self.args.exit_at_end:
                self.report.info("replay: finished; serving the final state until interrupted")
                await stop.wait()
        finally:
            await runner.cleanup()
        return 0 if finished else 130

    async def reach(self, t: float, stop: asyncio.Event) -> bool:
        """Let the clock flow up to `t`; sleep only when that is more than SLACK_S away."""
        clock, report = self.clock, self.report
        clock.cap = max(clock.cap, t)
        now = time.monotonic()
        slept = False
        while (left := clock.due(t) - now) > SLACK_S and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(left, PROGRESS_INTERVAL_S))
            now, slept = time.monotonic(), True
            report.progress(self.reader.lineno - self.reader.rejected.total(),
                            self.reader.offset)
        if slept:
            self.yielded = now
        elif now - self.yielded > YIELD_EVERY_S:
            await asyncio.sleep(0)  # behind schedule: still let the server answer
            self.yielded = time.monotonic()
        return not stop.is_set()

    def summary(self) -> None:
        """The closing counts on stderr."""
        elapsed = time.perf_counter() - self.started
        cpu = time.process_time() - self.cpu
        pipeline, reader = self.pipeline, self.reader
        accepted = sum(pipeline.accepted.values()) if pipeline else 0
        reasons = ", ".join(f"{code} {n}" for code, n in sorted(reader.rejected.items()))
        self.report.info(
            f"replay: {accepted:,} events replayed from {reader.lineno:,} lines in "
            f"{elapsed:.2f}s ({accepted / max(elapsed, 1e-9):,.0f} events/s; {cpu:.2f}s CPU, "
            f"{accepted / max(cpu, 1e-9):,.0f} events/CPU s)"
            + (f" with a reader process ({reader.reader_cpu_s:.2f}s CPU)"
               if reader.reader_cpu_s is not None else "") + "; "
            f"{reader.rejected.total():,} lines skipped{f' ({reasons})' if reasons else ''}; "
            f"{pipeline.duplicates if pipeline else 0:,} duplicates, "
            f"{pipeline.late if pipeline else 0:,} late"
            + (f"; stopped at line {reader.lineno:,} (--until)" if self.stopped_early else ""))


def replay_settings(args: argparse.Namespace) -> Settings:
    """The configuration to replay with: sources and journal dropped, server overrides applied."""
    settings = (load_settings(args.config) if args.config
                else parse_settings({}, "<replay: no configuration>"))
    server = settings.server.model_copy(update={
        k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None})
    # A replay reads a file: it must neither write the live journal nor fold it back in.
    journal = settings.journal.model_copy(update={"enabled": False})
    return settings.model_copy(update={"sources": {}, "server": server, "journal": journal})


def run(args: argparse.Namespace, out: IO[bytes] | None = None,
        err: IO[str] | None = None) -> int:
    """The `wallboard replay` command; returns the exit code."""
    out = out if out is not None else sys.stdout.buffer
    err = err if err is not None else sys.stderr
    path = Path(args.file)
    try:
        with path.open("rb"):
            size = path.stat().st_size
    except OSError as exc:
        print(f"error: {path}: cannot read: {exc.strerror or exc}", file=err)
        return 2
    reader = Reader(path, Report(str(path), size, err), parallel=use_parallel(args, size))
    replay = Replay(args, replay_settings(args), reader, out)
    events = iter(reader)
    first = next(events, None)
    if first is None or first.ts > replay.until:
        replay.stopped_early = first is not None
        replay.summary()
        where = " at or before --until" if first is not None else ""
        reader.report.info(f"replay: nothing replayed: no valid event in {path}{where}")
        return 1
    try:
        if args.speed is None:
            replay.run_max(first, events)
            return 0
        return asyncio.run(replay.run_paced(first, events, args.speed))
    except KeyboardInterrupt:
        replay.summary()
        return 130
    except BrokenPipeError:  # the reader of stdout went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1
