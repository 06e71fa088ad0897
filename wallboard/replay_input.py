"""Reading a recorded NDJSON stream for replay: chunks, line numbers, and stderr reporting."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from wallboard.events import Event, EventError, parse_event

SOURCE = "replay"
CHUNK_BYTES = 1 << 18
MAX_REPORTED = 1000
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


class Reader:
    """Reads an NDJSON file in large chunks; yields valid events, reports and counts the rest."""

    def __init__(self, path: Path, report: Report) -> None:
        self.path = path
        self.report = report
        self.rejected: Counter[str] = Counter()  # shared with the pipeline once it exists
        self.lineno = 0
        self.offset = 0

    def reject(self, exc: EventError, count: bool = True) -> None:
        """Report the current line as skipped."""
        if count:
            self.rejected[exc.code] += 1
        self.report.bad(self.lineno, exc)

    def __iter__(self) -> Iterator[Event]:
        loads, parse, decode_error = orjson.loads, parse_event, orjson.JSONDecodeError
        lineno = offset = 0
        with self.path.open("rb") as handle:
            rest = handle.read(3)
            if rest == b"\xef\xbb\xbf":
                rest = b""
            while True:
                chunk = handle.read(CHUNK_BYTES)
                if chunk:
                    lines = (rest + chunk).split(b"\n")
                    rest = lines.pop()
                else:
                    lines = [rest] if rest else []
                for line in lines:
                    lineno += 1
                    offset += len(line) + 1
                    try:
                        raw = loads(line)
                    except decode_error as exc:
                        if line.strip():
                            self.lineno = lineno
                            self.reject(EventError("<line>", f"not JSON: {exc}", "malformed"))
                        continue
                    try:
                        event = parse(raw, SOURCE)
                    except EventError as exc:
                        self.lineno = lineno
                        self.reject(exc)
                        continue
                    self.lineno = lineno
                    self.offset = offset
                    yield event
                self.lineno, self.offset = lineno, min(offset, self.report.size)
                self.report.progress(lineno - self.rejected.total(), self.offset)
                if not chunk:
                    return
