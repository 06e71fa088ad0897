"""A virtual clock: poll intervals, back-offs and Retry-After waits pass without real waiting."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from wallboard.kit.source import Clock


class VirtualClock(Clock):
    """Time that moves only when told: a sleeper wakes once `advance` passes its deadline."""

    def __init__(self, start: float | None = None) -> None:
        self._epoch = time.time() if start is None else start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.slept: list[float] = []  # every sleep asked for, in order (for assertions)

    def time(self) -> float:
        """Virtual seconds since the epoch."""
        return self._epoch + self._elapsed

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._elapsed

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
