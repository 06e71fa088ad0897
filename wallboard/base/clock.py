"""A virtual clock: event time during a replay, flowing at N x real time when paced."""

from __future__ import annotations

import time


class VirtualClock:
    """Event time: the latest event folded or, when paced, flowing towards the next one."""

    def __init__(self, now: float) -> None:
        self.now = now  # never earlier than the latest event folded
        self.cap = now  # paced: never later than the next event not yet folded
        self.speed = 0.0  # 0: does not flow
        self.real0 = self.virt0 = 0.0

    def __call__(self) -> float:
        """The current virtual time."""
        if not self.speed:
            return self.now
        flowing = self.virt0 + (time.monotonic() - self.real0) * self.speed
        return max(self.now, min(self.cap, flowing))

    def start(self, speed: float) -> None:
        """Let the clock flow at `speed` x real time from now."""
        self.speed, self.real0, self.virt0 = speed, time.monotonic(), self.now

    def due(self, t: float) -> float:
        """The monotonic real time at which virtual time `t` is reached."""
        return self.real0 + (t - self.virt0) / self.speed
