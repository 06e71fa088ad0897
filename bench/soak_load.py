"""Soak bench, load side: a contact centre's events at a steady rate, a probe, a flapping peer."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

TOKEN = "soak-webhook-token-0123456789"
PROBE_QUEUE = "probe"


def queue_names(count: int) -> list[str]:
    """The soak's queues: q00, q01, ..."""
    return [f"q{i:02d}" for i in range(count)]


def contact_events(queues: list[str], agents: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """An endless stream of contacts queued, answered or abandoned, ended; agents moving.

    Stamped with the time they are generated: the journal and windows see a live centre.
    About six events per contact: queued, answered + busy, ended + wrap-up + available.
    """
    rng = random.Random(seed)
    free = deque(f"a{i}" for i in range(agents))
    waiting: deque[tuple[str, str, float]] = deque()
    talking: deque[tuple[str, str, str, float]] = deque()
    n = 0
    max_waiting = 3 * len(queues)
    max_talking = max(1, int(agents * 0.7))
    while True:
        n += 1
        now = time.time()
        queue = queues[n % len(queues)] if n % 3 else rng.choice(queues)
        cid = f"c{n}"
        yield {"type": "contact.queued", "ts": now, "queue": queue, "channel": "voice",
               "contact_id": cid}
        waiting.append((cid, queue, now))
        if len(waiting) > max_waiting:
            cid, queue, since = waiting.popleft()
            wait = round(max(0.0, now - since), 3)
            if not free or rng.random() < 0.1:
                yield {"type": "contact.abandoned", "ts": now, "queue": queue,
                       "channel": "voice", "contact_id": cid, "wait_s": wait}
            else:
                agent = free.popleft()
                yield {"type": "contact.answered", "ts": now, "queue": queue,
                       "channel": "voice", "contact_id": cid, "agent": agent, "wait_s": wait}
                yield {"type": "agent.state", "ts": now, "agent": agent, "state": "busy",
                       "queue": queue}
                talking.append((cid, queue, agent, now))
        if len(talking) > max_talking or (talking and not free):
            cid, queue, agent, since = talking.popleft()
            yield {"type": "contact.ended", "ts": now, "queue": queue, "channel": "voice",
                   "contact_id": cid, "agent": agent, "talk_s": round(now - since, 3),
                   "hold_s": 0.0, "wrap_s": 5.0}
            yield {"type": "agent.state", "ts": now, "agent": agent, "state": "wrapup",
                   "queue": queue}
            yield {"type": "agent.state", "ts": now, "agent": agent,
                   "state": "away" if rng.random() < 0.05 else "available", "queue": queue}
            free.append(agent)


@dataclass
class Load:
    """Posts the stream in batches (one POST per `batch_s`), a few requests in flight."""

    url: str
    rate: float
    stream: Iterator[dict[str, Any]]
    batch_s: float = 0.05
    in_flight: int = 4
    sent: int = 0
    rtts: list[float] = field(default_factory=list)  # seconds, since the last take()
    errors: list[str] = field(default_factory=list)
    behind: int = 0  # batches skipped because every slot was busy (the server fell behind)
    _n: int = 0

    def _batch(self, count: int) -> bytes:
        events = []
        for _ in range(count):
            event = next(self.stream)
            self._n += 1
            event["id"] = f"s{self._n}"
            events.append(event)
        return orjson.dumps(events)

    async def _post(self, http: aiohttp.ClientSession, body: bytes, gate: asyncio.Semaphore,
                    ) -> None:
        start = time.perf_counter()
        try:
            async with http.post(self.url, data=body, headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "application/json"}) as resp:
                text = await resp.read()
                if resp.status != 202:
                    self.errors.append(f"{resp.status}: {text[:200]!r}")
        except (aiohttp.ClientError, OSError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            gate.release()
        self.rtts.append(time.perf_counter() - start)

    async def run(self, http: aiohttp.ClientSession) -> None:
        """Send at `rate` until cancelled; a batch waits for a free slot (no unbounded queue)."""
        gate = asyncio.Semaphore(self.in_flight)
        t0 = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        k = 0
        while True:
            k += 1
            await asyncio.sleep(max(0.0, t0 + k * self.batch_s - time.monotonic()))
            due = int(self.rate * (time.monotonic() - t0)) - self.sent
            if due <= 0:
                continue
            if gate.locked():
                self.behind += 1
            await gate.acquire()
            body = self._batch(due)
            self.sent += due
            task = asyncio.create_task(self._post(http, body, gate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def take(self) -> list[float]:
        """The round trips since the last call."""
        rtts, self.rtts = self.rtts, []
        return rtts


@dataclass
class Probe:
    """One contact.queued on the probe queue every `every_s`: its count is what TVs follow."""

    url: str
    every_s: float = 2.0
    sent: dict[int, float] = field(default_factory=dict)  # probe number -> wall time posted
    n: int = 0

    async def run(self, http: aiohttp.ClientSession) -> None:
        """Post probes until cancelled (at a random phase against the push interval)."""
        rng = random.Random(11)
        while True:
            await asyncio.sleep(self.every_s * rng.uniform(0.75, 1.25))
            self.n += 1
            body = orjson.dumps([{"type": "contact.queued", "ts": time.time(), "id": f"p{self.n}",
                                  "queue": PROBE_QUEUE, "channel": "voice",
                                  "contact_id": f"p{self.n}"}])
            self.sent[self.n] = time.time()
            try:
                async with http.post(self.url, data=body, headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "Content-Type": "application/json"}) as resp:
                    await resp.read()
            except (aiohttp.ClientError, OSError):
                self.sent.pop(self.n, None)


class FlapPeer:
    """A Freshdesk-like API that answers for a while, then fails with 503s: a source flapping."""

    def __init__(self) -> None:
        self.up = True
        self.requests = 0
        self.failed = 0
        self.runner: web.AppRunner | None = None

    async def _tickets(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self.up:
            self.failed += 1
            return web.Response(status=503, text="maintenance (soak bench: injected)")
        return web.json_response([], headers={"X-RateLimit-Remaining": "1000"})

    async def start(self, port: int) -> None:
        """Listen on 127.0.0.1:port."""
        app = web.Application()
        app.router.add_get("/api/v2/tickets", self._tickets)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def flap(self, period: float, down_s: float) -> None:
        """Down for `down_s` at the start of every period, then up."""
        while True:
            self.up = False
            await asyncio.sleep(down_s)
            self.up = True
            await asyncio.sleep(period - down_s)

    async def stop(self) -> None:
        """Stop listening."""
        if self.runner is not None:
            await self.runner.cleanup()
