"""The one clock type: `Clock` (real time) and `VirtualClock` (time that moves when told).

A clock is called for the wall-clock time (what the fold stamps and compares); sources also
use `time`, `monotonic` and `sleep`. A replay or restore sets a virtual clock's `now` to event
or arrival time (and may let it flow at N x real time); tests `advance` it, waking sleepers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class Clock:
    """Wall-clock time, monotonic time and sleeping; tests swap in a virtual clock."""

    def __call__(self) -> float:
        return self.time()

    def time(self) -> float:
        """Seconds since the epoch (event timestamps)."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds for measuring intervals."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`; cancellable like asyncio.sleep."""
        await asyncio.sleep(seconds)


class VirtualClock(Clock):
    """Time that moves only when told: `now` set (replay), `advance`d (tests), or flowing.

    `advance` moves `now` and `monotonic` together and wakes each sleeper once its deadline
    passes. A replay sets `now` to the latest event folded and, when paced, lets it flow at
    `speed` x real time, never past `cap` (the next event not yet folded).
    """

    def __init__(self, start: float | None = None) -> None:
        self._epoch = time.time() if start is None else start
        self._elapsed = 0.0  # advanced so far: monotonic time, exact (not epoch-sized)
        self.now = self._epoch  # never earlier than the latest event folded
        self.cap = self.now  # paced: never later than the next event not yet folded
        self.speed = 0.0  # 0: does not flow
        self.real0 = self.virt0 = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.slept: list[float] = []  # every sleep asked for, in order (for assertions)

    def __call__(self) -> float:
        # Defined here, not through time(): the fold calls it once per replayed event.
        if not self.speed:
            return self.now
        flowing = self.virt0 + (time.monotonic() - self.real0) * self.speed
        return max(self.now, min(self.cap, flowing))

    def time(self) -> float:
        """The current virtual time, seconds since the epoch."""
        return self()

    def monotonic(self) -> float:
        """Virtual seconds advanced since the clock was made."""
        return self._elapsed

    def start(self, speed: float) -> None:
        """Let the clock flow at `speed` x real time from now."""
        self.speed, self.real0, self.virt0 = speed, time.monotonic(), self.now

    def due(self, t: float) -> float:
        """The monotonic real time at which virtual time `t` is reached."""
        return self.real0 + (t - self.virt0) / self.speed

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by `seconds`."""
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), future))
        await future

    def next_wake_s(self) -> float | None:
        """Virtual seconds until the next sleeper wakes, or None when nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled while asleep
        return self._sleepers[0][0] - self._elapsed if self._sleepers else None

    def advance(self, seconds: float) -> int:
        """Move time forward and wake every sleeper now due; returns how many woke."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._elapsed += seconds
        self.now = self._epoch + self._elapsed
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
                woken += 1
        return woken

    async def run_for(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, waking sleepers in order and letting them run."""
        end = self._elapsed + seconds
        while True:
            for _ in range(5):  # let woken tasks run and go back to sleep
                await asyncio.sleep(0)
            wake = self.next_wake_s()
            if wake is None or self._elapsed + wake > end:
                break
            self.advance(wake)
        self.advance(max(0.0, end - self._elapsed))
