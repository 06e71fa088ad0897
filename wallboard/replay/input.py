"""Reading a recorded NDJSON stream for replay: chunks, line numbers, and stderr reporting."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.connection import Connection
from operator import length_hint
from pathlib import Path
from typing import IO, Any

import orjson

from wallboard.model.events import Event, EventError, event_from_fields, parse_event
from wallboard.model.limits import DEFAULT_LIMITS
from wallboard.model.wire import Wire

SOURCE = "replay"
CHUNK_BYTES = 1 << 18
MAX_REPORTED = 1000
# Below this size a second process costs more than it saves.
PARALLEL_MIN_BYTES = 4 << 20
PARALLEL_ENV = "WALLBOARD_REPLAY_PARALLEL"  # 1: always, 0: never, unset: decide


def use_parallel(args: Any, size: int) -> bool:
    """Whether to read in a child process: --speed max, a big file, and a second CPU."""
    forced = os.environ.get(PARALLEL_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    return (args.speed is None and size >= PARALLEL_MIN_BYTES
            and len(os.sched_getaffinity(0)) > 1)
PROGRESS_INTERVAL_S = 0.1


class Report:
    """Everything on stderr: bad lines, the progress line (terminals only), messages."""

    def __init__(self, name: str, size: int, err: IO[str]) -> None:
        self.name = name
        self.size = max(size, 1)
        self.err = err
        self.tty = err.isatty()
        self.shown = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def bad(self, lineno: int, exc: EventError) -> None:
        """Report one skipped line (the first MAX_REPORTED in full)."""
        self.shown += 1
        if self.shown <= MAX_REPORTED:
            self.info(f"{self.name}:{lineno}: {exc.field}: {exc.message} [{exc.code}]")
        elif self.shown == MAX_REPORTED + 1:
            self.info(f"{self.name}: more skipped lines not shown; the total follows at the end")

    def info(self, message: str) -> None:
        """One message line."""
        self.clear()
        print(message, file=self.err, flush=True)

    def progress(self, events: int, offset: int) -> None:
        """Redraw the progress line, at most every PROGRESS_INTERVAL_S."""
        now = time.monotonic()
        if not self.tty or now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        rate = events / max(now - self.started, 1e-9)
        self.err.write(f"\r{events:,} events  {min(offset / self.size, 1.0):6.1%}  "
                       f"{rate:,.0f} events/s\x1b[K")
        self.err.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the progress line before other output."""
        if self._drawn:
            self.err.write("\r\x1b[K")
            self._drawn = False


def _children_cpu() -> float:
    """CPU seconds used by this process's ended children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lines(path: Path) -> Iterator[tuple[list[bytes], int]]:
    """The file's lines in chunks, a leading byte-order mark dropped; each with its end offset."""
    with path.open("rb") as handle:
        rest = handle.read(3)
        if rest == b"\xef\xbb\xbf":
            rest = b""
        offset = 0
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if chunk:
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
            else:
                lines = [rest] if rest else []
            offset += sum(len(line) + 1 for line in lines)
            yield lines, offset
            if not chunk:
                return


def _read(line: bytes, wire: Wire) -> Event | EventError | None:
    """One line: its event, the error that makes it bad, or None when it is blank."""
    event = wire.decode(line, SOURCE, None)  # typed structs: plainly valid lines
    if event is not None:
        return event
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return EventError("<line>", f"not JSON: {exc}", "malformed") if line.strip() else None
    try:
        return parse_event(raw, SOURCE)
    except EventError as exc:
        return exc


def _produce(path: Path, conn: Connection) -> None:
    """Child process: read, decode and validate; send batches of events and bad lines in order.

    A batch is JSON [items, line numbers, bad, last line, offset]: an item is an event's
    fields or, at the indexes listed in `bad`, a bad line's [field, message, code]. Blank
    lines are skipped silently, as in `_local`. (JSON: the parent decodes and builds events
    from it in two thirds of the instructions pickle would take.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent reports the interrupt
    lineno = 0
    wire = Wire(DEFAULT_LIMITS)
    try:
        for lines, offset in _lines(path):
            items: list[Any] = []
            numbers: list[int] = []
            bad: list[int] = []
            for line in lines:
                lineno += 1
                read = _read(line, wire)
                if read is None:
                    continue
                if isinstance(read, EventError):
                    bad.append(len(items))
                    items.append((read.field, read.message, read.code))
                else:
                    items.append(vars(read))
                numbers.append(lineno)
            conn.send_bytes(orjson.dumps([items, numbers, bad, lineno, offset]))
        conn.send_bytes(b"null")
    except BrokenPipeError:
        pass  # the parent stopped reading (--until, an error, an interrupt)
    except Exception as exc:
        conn.send_bytes(orjson.dumps(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class Reader:
    """Reads an NDJSON file in large chunks; yields valid events, reports and counts the rest.

    With `parallel`, a child process reads, decodes and validates while this one folds: the
    same code on the same lines, in the same order, so the output is the same either way.
    """

    def __init__(self, path: Path, report: Report, parallel: bool = False) -> None:
        self.path = path
        self.report = report
        self.parallel = parallel
        self.reader_cpu_s: float | None = None  # CPU time of the child process, once it ended
        self._lineno = 0
        self._run: Iterator[Event] | None = None  # the list events are handed out from
        self._run_lines: list[int] = []
        self._run_len = 0
        self.rejected: Counter[str] = Counter()  # shared with the pipeline once it exists
        self.offset = 0

    def reject(self, exc: EventError, count: bool = True) -> None:
        """Report the current line as skipped."""
        if count:
            self.rejected[exc.code] += 1
        self.report.bad(self.lineno, exc)

    def __iter__(self) -> Iterator[Event]:
        return self._parallel() if self.parallel else self._local()

    @property
    def lineno(self) -> int:
        """The line of the latest event handed out (or line read, at the end of a chunk)."""
        run = self._run
        if run is None:
            return self._lineno
        # Events are handed out straight from a list: where its iterator stands tells the line.
        consumed = self._run_len - length_hint(run)
        return self._run_lines[consumed - 1] if consumed else self._lineno

    @lineno.setter
    def lineno(self, value: int) -> None:
        self._run = None
        self._lineno = value

    def _parallel(self) -> Iterator[Event]:
        ctx = multiprocessing.get_context("fork")  # no threads run yet: fork is safe and quick
        before = _children_cpu()
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_produce, args=(self.path, sender), daemon=True,
                            name="wallboard-replay-reader")
        child.start()
        sender.close()
        make = event_from_fields
        try:
            while True:
                try:
                    batch = orjson.loads(receiver.recv_bytes())
                except EOFError:
                    raise RuntimeError("the reader process ended without finishing") from None
                if batch is None:
                    return
                if isinstance(batch, str):
                    raise RuntimeError(f"the reader process failed: {batch}")
                items, lines, bad, lineno, offset = batch
                start = 0
                for stop in (*bad, len(items)):
                    if stop > start:
                        run = iter([make(fields) for fields in
                                    (items[start:stop] if bad else items)])
                        self._run_lines, self._run_len = lines[start:stop], stop - start
                        self._run = run
                        yield from run
                    if stop < len(items):
                        self.lineno = lines[stop]
                        self.reject(EventError(*items[stop]))
                    start = stop + 1
                self.lineno, self.offset = lineno, min(offset, self.report.size)
                self.report.progress(self.lineno - self.rejected.total(), self.offset)
        finally:
            receiver.close()
            if child.is_alive():
                child.kill()
            child.join()
            self.reader_cpu_s = _children_cpu() - before

    def _local(self) -> Iterator[Event]:
        lineno = 0
        wire = Wire(DEFAULT_LIMITS)
        for lines, offset in _lines(self.path):
            for line in lines:
                lineno += 1
                read = _read(line, wire)
                if read is None:
                    continue
                self._lineno = lineno
                if isinstance(read, EventError):
                    self.reject(read)
                else:
                    yield read
            self.lineno, self.offset = lineno, min(offset, self.report.size)
            self.report.progress(lineno - self.rejected.total(), self.offset)
