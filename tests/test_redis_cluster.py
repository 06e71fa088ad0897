"""Two real wallboard processes on one real redis-server: same KPIs, de-dup, Redis restarts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.journal_traffic import Contact, approx_equal, contacts, expected_today, observed_today
from tests.redisproc import RedisServer
from tests.serverproc import ServerProcess, journal_config

WINDOWS = ("15m", "1h", "today")


def redis_config(workdir: Path, url: str, node: str, **journal: Any) -> dict[str, Any]:
    """The journal tests' site (two queues, a webhook) on the Redis backend."""
    config = journal_config(workdir / "unused")
    config["journal"] = {"backend": "redis", "url": url, "node": node, "retry_s": 0.3,
                         "timeout_s": 1.0, "lease_s": 3, **journal}
    return config


def node(tmp_path: Path, name: str, config: dict[str, Any]) -> ServerProcess:
    """A server process in a directory of its own (its config file, its log)."""
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    return ServerProcess(workdir, config)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for the test, stopped at the end."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    """Two nodes, a and b, configured alike on the test's Redis (not started)."""
    made = [node(tmp_path, name, redis_config(tmp_path / name, redis_server.url, name))
            for name in ("a", "b")]
    yield made
    for server in made:
        server.stop()


def windows_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Every window block of the site and of each queue."""
    blocks = {f"total.{w}": snapshot["total"][w] for w in WINDOWS}
    for name, queue in snapshot["queues"].items():
        blocks.update({f"{name}.{w}": queue[w] for w in WINDOWS})
    return blocks


async def until(check: Any, timeout: float, what: str) -> float:
    """Poll the coroutine function `check` until it returns true; seconds it took."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        last = await check()
        if last is True:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not within {timeout}s: {last}")


async def health(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    """GET /healthz."""
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_events_posted_to_one_node_show_identical_kpis_on_the_other_within_a_second(
        nodes: list[ServerProcess]) -> None:
    a, b = nodes
    rng = random.Random(7)
    stream = contacts(rng, "two")
    await a.start()
    sent: list[Contact] = []
    async with aiohttp.ClientSession() as http:
        # Some history before b starts: b rebuilds it from the stream at start.
        early = [next(stream) for _ in range(30)]
        status, body, _ = await a.post(http, [e for c in early for e in c.events])
        assert status == 202 and body["accepted"] == sum(len(c.events) for c in early), body
        sent += early
        await b.start()
        for round_ in range(6):
            batch = [next(stream) for _ in range(rng.randint(1, 6))]
            target = (a, b)[round_ % 2]
            status, body, _ = await target.post(http, [e for c in batch for e in c.events])
            assert status == 202, body
            sent += batch
            posted = time.monotonic()
            want = expected_today(sent)

            async def both_show_it(want: dict[str, Any] = want) -> Any:
                shots = [await s.snapshot(http) for s in (a, b)]
                if not all(approx_equal(observed_today(x["total"]["today"]), want)
                           for x in shots):
                    return [observed_today(x["total"]["today"]) for x in shots]
                return windows_of(shots[0]) == windows_of(shots[1]) or "windows differ"

            await until(both_show_it, 5.0, f"round {round_}: both nodes show {want}")
            assert time.monotonic() - posted < 1.0 + 0.5  # a second, plus our own polling

        # The same event on both nodes (a sender retrying through the balancer): once.
        again = sent[0].events[:1]
        for server in (a, b):
            status, body, _ = await server.post(http, again)
            assert (status, body["accepted"], body["duplicates"]) == (202, 0, 1), body
        fresh = next(stream)
        status, body, _ = await b.post(http, fresh.events)
        assert status == 202
        status, body, _ = await a.post(http, fresh.events)  # b stored them first
        assert (body["accepted"], body["duplicates"]) == (0, len(fresh.events)), body
        sent.append(fresh)
        want = expected_today(sent)

        async def settled() -> Any:
            shots = [await s.snapshot(http) for s in (a, b)]
            return all(approx_equal(observed_today(x["total"]["today"]), want) for x in shots)

        await until(settled, 5.0, "the duplicates counted once on both nodes")
        info = [await health(http, s) for s in (a, b)]
        assert [i["node"] for i in info] == ["a", "b"]
        assert all(i["journal"] == "up" and i["stream_lag_events"] == 0 for i in info), info
        assert all(i["role"] == "standby" and i["sources_held"] == [] for i in info), info
