"""Source runtime: base classes, supervised tasks with back-off, status per source."""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, get_args

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field

from wallboard.base.clock import Clock
from wallboard.kit.ratelimit import TokenBucket, parse_retry_after
from wallboard.model.events import Event, EventError, parse_ts

log = logging.getLogger(__name__)

STARTING, UP, DOWN, STALE = "starting", "up", "down", "stale"
STANDBY = "standby"  # another node holds the source's lease and runs it
Emit = Callable[[Event | dict[str, Any]], None]
# HTTP statuses that mean "slow down", where a Retry-After header is honoured.
_BACK_OFF_STATUSES = frozenset({429, 503})


def parse_time(value: Any) -> float | None:
    """A vendor's RFC 3339 time (`2026-11-23T09:00:00Z`) as epoch seconds; None if absent or bad.

    A time without a UTC offset is refused too, rather than read in the server's zone.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_ts(value)
    except EventError:
        return None


class SourceError(Exception):
    """The one failure type for sources: the runtime logs it, marks the source down, retries.

    `retry_after_s` (e.g. from a vendor's Retry-After header) is the least the runtime waits
    before the next attempt.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_state_file(path: Path) -> dict[str, Any]:
    """A source's saved state; {} when there is none yet. Unreadable: a SourceError."""
    try:
        state = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: unreadable state file: {exc}") from None
    return state if isinstance(state, dict) else {}


async def save_state_file(path: Path, text: str) -> None:
    """Write a source's state file atomically, off the event loop (a disk can stall for long).

    A temporary file renamed over the old one, so a crash leaves the old state or the new one;
    a failure is a SourceError naming the path.
    """
    try:
        await asyncio.to_thread(_write_atomically, path, text)
    except OSError as exc:
        raise SourceError(f"cannot save the state to {path}: {exc}") from None


class SourceConfig(BaseModel):
    """Settings every source has; a source type extends this with its own fields."""

    model_config = ConfigDict(extra="forbid")

    type: str
    stale_after_s: float | None = Field(None, gt=0)
    # Sources of one id scope de-duplicate each other's events (two views of one PBX).
    id_scope: str | None = Field(None, min_length=1, max_length=128,
                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RateLimitConfig(SourceConfig):
    """Settings of a source that calls a vendor's API: its budget, for `fetch`."""

    # The vendor's API budget: requests per second on average, in bursts of `burst`.
    max_requests_per_s: float | None = Field(None, gt=0)
    burst: int = Field(1, ge=1, le=1000)


class PollConfig(RateLimitConfig):
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
    crashes: int = 0  # failures that were not a SourceError: plugin bugs
    # Requests refused at the source's webhook route, by reason (wallboard.kit.http.REASONS).
    rejected: dict[str, int] = field(default_factory=dict)


C = TypeVar("C", bound=SourceConfig)
P = TypeVar("P", bound=PollConfig)


class Source(Generic[C]):
    """Base of all sources: push style overrides `run`, poll style uses PollSource.

    Generic in its config model: `class AcmeSource(PushSource[AcmeConfig])` types
    `self.config` as an `AcmeConfig` and makes it the class's `Config`. The runtime injects
    `http` (the app's shared aiohttp session) and `clock`, and binds `connected`, before `run`.
    """

    type: ClassVar[str]
    Config: ClassVar[builtins.type[SourceConfig]] = SourceConfig
    # False: with several nodes, one runs the source at a time (a lease); True: it only
    # receives requests, which any node behind the load balancer may get (webhooks).
    every_node: ClassVar[bool] = False
    # How far behind real time the vendor's data is by design (an export that leaves out the
    # last minute): shown on the tiles the source feeds, so a late number is not a surprise.
    lag_s: ClassVar[float] = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__:
            return
        # The config model named in the base, e.g. PushSource[AcmeConfig], is the one the
        # registry validates a source's settings with.
        for base in getattr(cls, "__orig_bases__", ()):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, SourceConfig):
                    cls.Config = arg
                    return

    def __init__(self, name: str, config: C) -> None:
        self.name = name
        self.config: C = config
        self.clock = Clock()
        self._http: aiohttp.ClientSession | None = None
        self._limiter: TokenBucket | None = None
        self._connected: Callable[[], None] = lambda: None
        # What it read and turned into no event, by reason (wallboard_source_skipped_total):
        # the source's own few words, never text from the peer.
        self.skipped: Counter[str] = Counter()

    @property
    def http(self) -> aiohttp.ClientSession:
        """The app's shared HTTP client session (one connection pool for all sources)."""
        if self._http is None:
            raise RuntimeError(f"source {self.name}: no HTTP session; the runtime injects one when "
                               "the source starts (tests: wallboard.kit.testing.SourceHarness)")
        return self._http

    @http.setter
    def http(self, session: aiohttp.ClientSession) -> None:
        self._http = session

    @property
    def limiter(self) -> TokenBucket | None:
        """The token bucket from `max_requests_per_s`/`burst`, or None when unlimited."""
        config = self.config
        if (isinstance(config, RateLimitConfig) and config.max_requests_per_s is not None
                and self._limiter is None):
            self._limiter = TokenBucket(config.max_requests_per_s, config.burst, self.clock)
        return self._limiter

    def connected(self) -> None:
        """Tell the runtime the source is live (a push source calls this once connected)."""
        self._connected()

    def bind(self, connected: Callable[[], None]) -> None:
        """The runtime's hand-over: `connected()` reports to this callback from now on."""
        self._connected = connected

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

    async def fetch(self, method: str, url: str, **kwargs: Any) -> bytes:
        """One rate-limited request on the shared session; any failure is a SourceError."""
        if self.limiter is not None:
            await self.limiter.acquire()
        try:
            async with self.http.request(method, url, **kwargs) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        if response.status in _BACK_OFF_STATUSES:
            wait = parse_retry_after(response.headers.get("Retry-After"), self.clock.time())
            if wait is not None and self.limiter is not None:
                self.limiter.defer(wait)
            after = f"; retry after {wait:g}s" if wait is not None else ""
            raise SourceError(f"{method} {url}: HTTP {response.status}{after}",
                              retry_after_s=wait)
        if response.status >= 400:
            raise SourceError(f"{method} {url}: HTTP {response.status}")
        return body

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET `url` and decode JSON; a body that is not JSON is a SourceError."""
        body = await self.fetch("GET", url, **kwargs)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"GET {url}: response is not JSON: {exc}") from None


class PushSource(Source[C]):
    """A source fed over a connection it opens: override `run(emit)`.

    Call `self.connected()` once the connection is up, emit events as they arrive, and raise
    SourceError when the connection drops; the runtime reconnects after a back-off.
    """

    async def serve_requests(self) -> None:
        """For a source fed by HTTP requests to its routes: report up, then wait (forever)."""
        self.connected()
        await asyncio.Event().wait()


class PollSource(Source[P]):
    """A source asked for new events every `interval_s`: override `poll()`."""

    Config: ClassVar[builtins.type[SourceConfig]] = PollConfig

    async def poll(self) -> list[Event | dict[str, Any]]:
        """Return the events that happened since the previous poll."""
        raise NotImplementedError

    async def run(self, emit: Emit) -> None:
        """Poll forever; the first successful poll marks the source up."""
        interval = self.config.interval_s
        while True:
            for event in await self.poll():
                emit(event)
            self.connected()
            await self.clock.sleep(interval)


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
    """Supervises one source: restarts it with back-off and tracks its status.

    `clock` stamps statuses; when it is a `Clock` it is also the source's clock, and the
    back-off sleeps on it (the contract suite passes a virtual one). `http` is the shared
    session given to the source.
    """

    def __init__(self, source: Source[Any], emit: Emit, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.time, *,
                 http: aiohttp.ClientSession | None = None) -> None:
        self.source = source
        self.name = source.name
        self.status = SourceStatus(since=clock())
        self._emit = emit
        self._clock = clock
        if isinstance(clock, Clock):
            source.clock = clock
        if http is not None:
            source.http = http
        self.backoff = backoff or Backoff()
        source.bind(self._on_connected)
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

    def set_standby(self) -> None:
        """Another node runs this source (or none yet): not down, just not here."""
        self._set(STANDBY)

    def mirror(self, status: str, last_error: str | None, last_event_ts: float | None,
               events: int) -> None:
        """Show what the node running this source reports (another node among several)."""
        s = self.status
        changed = (status, last_error) != (s.status, s.last_error)
        s.status, s.last_error, s.last_event_ts, s.events = (status, last_error, last_event_ts,
                                                             events)
        if changed:
            s.since = self._clock()
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
            retry_after: float | None = None
            try:
                for event in await self.source.current_state():
                    self.emit(event)
                await self.source.run(self.emit)
                error = "source stopped"
            except asyncio.CancelledError:
                raise
            except SourceError as exc:
                error = str(exc) or type(exc).__name__
                retry_after = exc.retry_after_s
            except Exception as exc:  # a plugin bug must not take the others down
                error = f"{type(exc).__name__}: {exc}"
                self.status.crashes += 1
                if self.status.last_error != error:
                    log.exception("source %s crashed", self.name)
            self._set(DOWN, error)
            delay = self.backoff.next_delay()
            await self.source.clock.sleep(max(delay, retry_after or 0.0))
