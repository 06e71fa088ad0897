"""Source runtime: base classes, supervised tasks with back-off, status per source."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from wallboard.events import Event

log = logging.getLogger(__name__)

STARTING, UP, DOWN, STALE = "starting", "up", "down", "stale"
Emit = Callable[[Event | dict[str, Any]], None]


class SourceError(Exception):
    """The one failure type for sources: the runtime logs it, marks the source down, retries."""


class SourceConfig(BaseModel):
    """Settings every source has; a source type extends this with its own fields."""

    model_config = ConfigDict(extra="forbid")

    type: str
    stale_after_s: float | None = Field(None, gt=0)


class PollConfig(SourceConfig):
    """Settings of a poll-style source."""

    interval_s: float = Field(5.0, gt=0)


@dataclass
class SourceStatus:
    """What the runtime knows about a source's health."""

    status: str = STARTING
    last_error: str | None = None
    last_event_ts: float | None = None
    events: int = 0
    since: float = 0.0


class Source:
    """Base of all sources: push style overrides `run`, poll style uses PollSource."""

    type: ClassVar[str]
    Config: ClassVar[type[SourceConfig]] = SourceConfig

    def __init__(self, name: str, config: SourceConfig) -> None:
        self.name = name
        self.config = config
        self._connected: Callable[[], None] = lambda: None

    def connected(self) -> None:
        """Tell the runtime the source is live (a push source calls this once connected)."""
        self._connected()

    async def run(self, emit: Emit) -> None:
        """Produce events until cancelled; raise SourceError on failure."""
        raise NotImplementedError

    async def current_state(self) -> list[Event | dict[str, Any]]:
        """Events that describe the present (queue.snapshot, agent.state); none by default.

        The runtime emits them before each `run`: at start that is after the journal replay,
        so a source that can read its system's current status corrects what the replay
        rebuilt (contacts it never heard end, agents who changed state while we were down).
        """
        return []


class PollSource(Source):
    """A source asked for new events every `interval_s`."""

    Config: ClassVar[type[SourceConfig]] = PollConfig

    async def poll(self) -> list[Event | dict[str, Any]]:
        """Return the events that happened since the previous poll."""
        raise NotImplementedError

    async def run(self, emit: Emit) -> None:
        """Poll forever; the first successful poll marks the source up."""
        interval = getattr(self.config, "interval_s", 5.0)
        while True:
            for event in await self.poll():
                emit(event)
            self.connected()
            await asyncio.sleep(interval)


class Backoff:
    """Exponential back-off with full jitter."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0,
                 rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base_s, cap_s, 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        delay = self.rng.uniform(0, min(self.cap, self.base * 2 ** self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from the base delay after a success."""
        self.attempt = 0


class SourceRunner:
    """Supervises one source: restarts it with back-off and tracks its status."""

    def __init__(self, source: Source, emit: Emit, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.name = source.name
        self.status = SourceStatus(since=clock())
        self._emit = emit
        self._clock = clock
        self.backoff = backoff or Backoff()
        source._connected = self._on_connected
        self.on_change: Callable[[], None] = lambda: None

    def _set(self, status: str, error: str | None = None) -> None:
        if status == self.status.status and error == self.status.last_error:
            return
        previous = self.status.status
        self.status.status, self.status.since = status, self._clock()
        if error is not None or status == UP:
            self.status.last_error = error
        # Log transitions only: a source that stays down does not flood the log.
        if status == previous:
            pass
        elif status == UP and previous in (DOWN, STALE):
            log.info("source %s recovered", self.name)
        elif status == DOWN:
            log.warning("source %s down: %s", self.name, error)
        elif status == STALE:
            log.warning("source %s stale: no event for %ss", self.name,
                        self.source.config.stale_after_s)
        self.on_change()

    def _on_connected(self) -> None:
        self.backoff.reset()
        if self.status.status != UP:
            self._set(UP)

    def touch(self) -> None:
        """Record that the source just delivered an event."""
        self.status.last_event_ts = self._clock()
        self.status.events += 1
        if self.status.status == STALE:
            self._set(UP)

    def emit(self, event: Event | dict[str, Any]) -> None:
        """Record freshness, then pass the event on."""
        self.touch()
        self._emit(event)

    def check_stale(self, now: float) -> None:
        """Mark an up source stale when it has been silent longer than its limit."""
        limit = self.source.config.stale_after_s
        if limit is None or self.status.status != UP:
            return
        last = self.status.last_event_ts or self.status.since
        if now - last > limit:
            self._set(STALE)

    async def run(self) -> None:
        """Run the source forever, restarting it after failures."""
        while True:
            try:
                for event in await self.source.current_state():
                    self.emit(event)
                await self.source.run(self.emit)
                error = "source stopped"
            except asyncio.CancelledError:
                raise
            except SourceError as exc:
                error = str(exc) or type(exc).__name__
            except Exception as exc:  # a plugin bug must not take the others down
                error = f"{type(exc).__name__}: {exc}"
                if self.status.last_error != error:
                    log.exception("source %s crashed", self.name)
            self._set(DOWN, error)
            await asyncio.sleep(self.backoff.next_delay())
