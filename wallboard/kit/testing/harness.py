"""Run one source under the real runtime on a virtual clock, and watch the event loop."""

from __future__ import annotations

import asyncio
import gc
import linecache
import random
import re
import sys
import sysconfig
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from wallboard.base.clock import VirtualClock
from wallboard.kit.source import STARTING, Backoff, Source, SourceRunner
from wallboard.model.events import Event, EventError, parse_event

T = TypeVar("T")


class ContractViolation(AssertionError):
    """A source broke the contract; the message names the problem and the fix."""


_STDLIB = sysconfig.get_paths()["stdlib"]
_HANDLE = re.compile(r"name='([^']*)'.*?coro=<([\w.]+)\(")


@dataclass
class SlowCallback:
    """One callback that held the event loop longer than allowed."""

    what: str
    seconds: float

    def describe(self) -> str:
        """A short name for the callback: 'task source:x (SourceRunner.run)'."""
        match = _HANDLE.search(self.what)
        return f"task {match[1]} ({match[2]})" if match else self.what[:120]


def _runqueue_wait_s() -> float:
    """Seconds this thread has waited for a CPU (Linux schedstat), 0.0 where unknown."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _describe(handle: asyncio.Handle) -> str:
    """The task a handle steps (as asyncio's debug warning names it), else the handle."""
    owner = getattr(getattr(handle, "_callback", None), "__self__", None)
    return repr(owner) if isinstance(owner, asyncio.Task) else repr(handle)


class _CallbackTimer:
    """Times every callback the loop runs, less the time the OS kept the thread off the CPU.

    asyncio's own debug check times callbacks by the wall clock, so on a loaded machine a
    callback preempted by other processes looks slow; the scheduler's run-queue wait is
    subtracted so that only the callback's own time counts (blocking I/O included).
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.found: list[SlowCallback] = []
        self._original = asyncio.events.Handle._run

    def install(self) -> None:
        original, timer = self._original, self

        def _run(handle: asyncio.Handle) -> None:
            started, waited = time.perf_counter(), _runqueue_wait_s()
            try:
                original(handle)
            finally:
                took = time.perf_counter() - started
                if took > timer.limit_s:
                    own = took - max(0.0, _runqueue_wait_s() - waited)
                    if own > timer.limit_s:
                        timer.found.append(SlowCallback(_describe(handle), own))

        # asyncio has no hook around each callback: patch the method that runs them.
        asyncio.events.Handle._run = _run  # type: ignore[method-assign,assignment]  # no hook

    def remove(self) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]  # undo install()


class _StallSampler:
    """A thread that, while the loop is stalled, notes which line of code holds it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit_s: float) -> None:
        self.loop, self.limit_s = loop, limit_s
        self.beat = time.monotonic()
        self.where: Counter[str] = Counter()
        self._thread_id = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-sampler", daemon=True)

    def start(self) -> None:
        self._tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _tick(self) -> None:
        self.beat = time.monotonic()
        if not self._stop.is_set():
            self.loop.call_later(0.01, self._tick)

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            if time.monotonic() - self.beat > self.limit_s:
                frame = sys._current_frames().get(self._thread_id)
                # The innermost frame outside the standard library is the code to blame.
                while frame is not None and frame.f_code.co_filename.startswith(_STDLIB):
                    frame = frame.f_back
                if frame is not None:
                    code = frame.f_code
                    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
                    self.where[f"{code.co_filename}:{frame.f_lineno} in {code.co_name}: "
                               f"{line}"] += 1


class LoopWatch:
    """Turns on asyncio debug mode for the running loop and records slow callbacks."""

    def __init__(self, slow_callback_s: float = 0.05) -> None:
        self.slow_callback_s = slow_callback_s
        self._timer = _CallbackTimer(slow_callback_s)
        self._sampler: _StallSampler | None = None

    @property
    def slow(self) -> list[SlowCallback]:
        """Every callback that ran longer than the limit so far."""
        return self._timer.found

    @property
    def blocked_at(self) -> str | None:
        """The line of code seen most often while the loop was stalled."""
        common = self._sampler.where.most_common(1) if self._sampler else []
        return common[0][0] if common else None

    def __enter__(self) -> LoopWatch:
        loop = asyncio.get_running_loop()
        self._was = (loop.get_debug(), loop.slow_callback_duration)
        # Debug mode for its other checks; its wall-clock slow-callback warning is replaced by
        # the timer, which does not blame a callback for the machine's load.
        loop.set_debug(True)
        loop.slow_callback_duration = float("inf")
        self._timer.install()
        # A full collection of a big test process can take longer than the limit by itself;
        # objects alive now are frozen out of collection so only the source is measured.
        gc.collect()
        gc.freeze()
        self._sampler = _StallSampler(loop, self.slow_callback_s)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._sampler is not None
        self._sampler.stop()
        self._timer.remove()
        gc.unfreeze()
        loop = asyncio.get_running_loop()
        debug, duration = self._was
        loop.set_debug(debug)
        loop.slow_callback_duration = duration


class SourceHarness:
    """A source under a real SourceRunner: every emitted event checked, every status seen."""

    def __init__(self, source: Source[Any], *, clock: VirtualClock | None = None,
                 http: aiohttp.ClientSession | None = None, poll_s: float = 0.005) -> None:
        self.source = source
        self.clock = clock or VirtualClock()
        self.events: list[Any] = []
        self.invalid: list[tuple[Any, str]] = []
        self.statuses: list[str] = [STARTING]
        self.crash_errors: list[str] = []  # errors of failures that were not a SourceError
        self.poll_s = poll_s
        self._http, self._own_http = http, http is None
        self.runner: SourceRunner | None = None
        self.task: asyncio.Task[None] | None = None
        self._cancelled = False

    async def __aenter__(self) -> SourceHarness:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the runner task (with a seeded back-off so runs repeat)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self.runner = SourceRunner(self.source, self._emit, Backoff(rng=random.Random(0)),
                                   clock=self.clock, http=self._http)
        self.runner.on_change = self._changed
        self.task = asyncio.create_task(self.runner.run(), name=f"source:{self.source.name}")

    async def stop(self, timeout_s: float = 1.0) -> bool:
        """Cancel the source; True when it ended within `timeout_s`."""
        stopped = True
        if self.task is not None and not self.task.done():
            if self._cancelled:
                return False  # it already outlived one cancel; waiting again changes nothing
            self._cancelled = True
            self.task.cancel()
            done, _ = await asyncio.wait({self.task}, timeout=timeout_s)
            stopped = bool(done)
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None
        return stopped

    @property
    def status(self) -> str:
        """The runner's current status."""
        return self.statuses[-1]

    @property
    def last_error(self) -> str | None:
        """The runner's last error text."""
        return self.runner.status.last_error if self.runner else None

    @property
    def crashes(self) -> int:
        """Failures that were not a SourceError (plugin bugs)."""
        return self.runner.status.crashes if self.runner else 0

    def _changed(self) -> None:
        assert self.runner is not None
        if self.runner.status.crashes > len(self.crash_errors):
            self.crash_errors.append(self.runner.status.last_error or "?")
        if self.runner.status.status != self.statuses[-1]:
            self.statuses.append(self.runner.status.status)

    def _emit(self, item: Any) -> None:
        raw = item.to_dict() if isinstance(item, Event) else item
        self.events.append(raw)
        try:
            parse_event(raw, self.source.name)
        except EventError as exc:
            self.invalid.append((raw, str(exc)))

    def transitions(self) -> str:
        """The statuses seen so far, as 'starting → up → down'."""
        return " → ".join(self.statuses)

    async def settle(self, seconds: float) -> None:
        """Let `seconds` of real time pass, with virtual time jumping as in wait_for."""
        end = asyncio.get_running_loop().time() + seconds
        await self.wait_for(lambda: asyncio.get_running_loop().time() >= end, "settle",
                            seconds + 5.0)

    async def wait_for(self, condition: Callable[[], bool], what: str,
                       timeout_s: float = 5.0) -> None:
        """Let real and virtual time pass until `condition()` holds, or fail saying `what`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition():
            if loop.time() > deadline:
                error = f"; last error: {self.last_error}" if self.last_error else ""
                raise ContractViolation(
                    f"did not {what} within {timeout_s:g}s (statuses: {self.transitions()}; "
                    f"{len(self.events)} event(s) emitted{error})")
            await asyncio.sleep(self.poll_s)  # real time: sockets make progress
            wake = self.clock.next_wake_s()
            if wake is not None:
                self.clock.advance(wake)  # virtual time: the next sleep ends now


def run_isolated(main: Callable[[], Coroutine[Any, Any, T]], grace_s: float = 1.0) -> T:
    """Run `main()` on a fresh event loop that is closed even if a task ignores cancellation."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            # A task that swallows CancelledError would make asyncio.run() hang forever.
            loop.run_until_complete(asyncio.wait(tasks, timeout=grace_s))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
