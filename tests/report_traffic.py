"""Synthetic days of contacts for the report tests, their interval rows recounted by hand, and
the server on a moving clock they are posted to.

The recount follows docs/reports.md, not the fold: each contact's facts land in the interval
holding their own time (offered at queue time, answered or abandoned when it left the queue,
handled when it ended, a miss past the threshold at its deadline).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import TOKEN, base_config
from wallboard.config.settings import parse_settings
from wallboard.server import keys
from wallboard.server.app import create_app

THRESHOLD_S = {"sales": 20.0, "chat": 60.0}
SHORT_S = 5.0
CHANNEL = {"sales": "voice", "chat": "chat"}


@dataclass
class Call:
    """One contact: when it queued, how long it waited, how it left, its handling time."""

    cid: str
    queue: str
    queued: float
    wait: float
    answered: bool
    handle: float


def day_of_calls(rng: random.Random, day_start: float, n: int, prefix: str) -> list[Call]:
    """`n` contacts between 08:00 and 18:00 of the day starting at `day_start` (UTC)."""
    calls = []
    for i in range(n):
        queue = rng.choice(("sales", "chat"))
        queued = day_start + 8 * 3600 + rng.uniform(0, 10 * 3600)
        calls.append(Call(f"{prefix}-{i}", queue, round(queued, 3),
                          round(rng.choice((rng.uniform(0.5, 15), rng.uniform(15, 200))), 3),
                          rng.random() < 0.8, round(rng.uniform(30, 400), 3)))
    return sorted(calls, key=lambda c: c.queued)


def events_of(calls: list[Call]) -> list[dict[str, Any]]:
    """The canonical events the contacts make, in time order."""
    events = []
    for c in calls:
        base = {"queue": c.queue, "contact_id": c.cid}
        events.append({"type": "contact.queued", "id": f"{c.cid}-q", "ts": c.queued, **base})
        left = c.queued + c.wait
        if c.answered:
            events.append({"type": "contact.answered", "id": f"{c.cid}-a", "ts": left,
                           "wait_s": c.wait, "agent": "a1", **base})
            events.append({"type": "contact.ended", "id": f"{c.cid}-e", "ts": left + c.handle,
                           "talk_s": c.handle, **base})
        else:
            events.append({"type": "contact.abandoned", "id": f"{c.cid}-x", "ts": left,
                           "wait_s": c.wait, **base})
    return sorted(events, key=lambda e: e["ts"])


DAY = date(2026, 11, 30)  # a Monday; the month before it is history
DAY_TS = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp()
QUIET = {DAY - timedelta(days=14)}  # a Monday without a single contact: not a forecast day
CHUNK_S = 540  # events posted per chunk: under the lateness, so none is late


class Clock:
    """The server's wall clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def month() -> dict[date, list[Call]]:
    """29 days of contacts ending with DAY; a few per day, one quiet Monday."""
    rng = random.Random(21)
    days = {}
    for back in range(28, -1, -1):
        day = DAY - timedelta(days=back)
        start = DAY_TS - back * 86_400
        days[day] = [] if day in QUIET else day_of_calls(rng, start, 40 + back % 5, f"d{back}")
    return days


class Server:
    """The app on a real port with its journal in `data`, on the test's clock."""

    def __init__(self, data: Path, clock: Clock, journal: dict[str, Any] | None = None,
                 **extra: Any) -> None:
        config = base_config(journal={"data_dir": str(data), **(journal or {})}, **extra)
        self.settings = parse_settings(config, "<test>")
        self.app = create_app(self.settings, clock=clock)
        self.server = TestServer(self.app, host="127.0.0.1", port=0)
        self.clock = clock

    async def __aenter__(self) -> Server:
        await self.server.start_server()
        self.session = ClientSession()
        self.url = f"http://127.0.0.1:{self.server.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await self.server.close()

    async def post(self, events: list[dict[str, Any]]) -> None:
        async with self.session.post(f"{self.url}/api/events", data=orjson.dumps(events),
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status in (200, 202), await resp.text()

    async def wait_for_snapshot_at(self, now: float, timeout_s: float = 10.0) -> None:
        """Until the hub has built a snapshot at the clock's `now` (its meta says when)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            async with self.session.get(f"{self.url}/api/snapshot") as resp:
                if (await resp.json())["meta"].get("ts") == round(now, 3):
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no snapshot at {now} within {timeout_s}s")

    async def series(self) -> dict[str, list[float | None]]:
        """The sparklines of the snapshot the hub built last."""
        async with self.session.get(f"{self.url}/api/snapshot") as resp:
            assert resp.status == 200
            series: dict[str, list[float | None]] = (await resp.json())["series"]
            return series

    async def report(self, query: str) -> tuple[int, bytes, dict[str, str]]:
        async with self.session.get(f"{self.url}/api/report?{query}") as resp:
            return resp.status, await resp.read(), dict(resp.headers)


async def post_month(server: Server, days: dict[date, list[Call]],
                     until: float | None = None) -> None:
    """Every event in time order, chunk by chunk, the clock at each chunk's end.

    With `until`, only the events before it, and the clock stays there (intervals open).
    """
    events = events_of([c for calls in days.values() for c in calls])
    if until is not None:
        events = [e for e in events if e["ts"] < until]
    chunk: list[dict[str, Any]] = []
    for event in events:
        if chunk and event["ts"] - chunk[0]["ts"] > CHUNK_S:
            server.clock.now = chunk[-1]["ts"]
            await server.post(chunk)
            chunk = []
        chunk.append(event)
    server.clock.now = chunk[-1]["ts"]
    await server.post(chunk)
    if until is not None:
        server.clock.now = until
        return
    server.clock.now = DAY_TS + 86_400 + 3600  # the next day: every interval closed
    server.app[keys.AGGREGATOR].advance(server.clock.now)


def _start(ts: float, width: int) -> int:
    return int(ts // width) * width  # UTC site: local buckets are UTC buckets


def recount(calls: list[Call], width: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (queue, bucket start) and ("", start) for the site: every report field by hand."""
    acc: dict[tuple[str, int], dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    waits: dict[tuple[str, int], list[float]] = defaultdict(list)
    for c in calls:
        threshold = THRESHOLD_S[c.queue]
        left = c.queued + c.wait
        for q in (c.queue, ""):
            acc[(q, _start(c.queued, width))]["offered"] += 1
            if c.answered:
                a = acc[(q, _start(left, width))]
                a["answered"] += 1
                a["wait_sum"] += c.wait
                waits[(q, _start(left, width))].append(c.wait)
                e = acc[(q, _start(left + c.handle, width))]
                e["handled"] += 1
                e["handle_sum"] += c.handle
                if c.wait <= threshold:
                    a["met"] += 1
            else:
                a = acc[(q, _start(left, width))]
                a["abandoned"] += 1
                if c.wait < SHORT_S:
                    a["short"] += 1
                elif c.wait <= threshold:
                    a["missed"] += 1  # abandons_negative: a long abandon within T misses
            if c.wait > threshold:  # missed at its deadline, however it left
                acc[(q, _start(c.queued + threshold, width))]["missed"] += 1
    out = {}
    for key, a in acc.items():
        long_abandons = a["abandoned"] - a["short"]
        out[key] = {
            "offered": int(a["offered"]), "answered": int(a["answered"]),
            "abandoned": int(a["abandoned"]), "abandoned_short": int(a["short"]),
            "handled": int(a["handled"]),
            "asa_s": _ratio(a["wait_sum"], a["answered"]),
            "aht_s": _ratio(a["handle_sum"], a["handled"]),
            "service_level": _ratio(a["met"], a["met"] + a["missed"]),
            "abandon_rate": _ratio(long_abandons, a["answered"] + long_abandons),
            "wait_p90_s": _nearest_rank(waits.get(key, []), 0.9),
        }
    return out


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def _nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def iso(ts: float) -> str:
    """RFC 3339 in UTC as the report writes it for a UTC site."""
    return datetime.fromtimestamp(ts, UTC).isoformat()
