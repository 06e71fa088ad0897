"""The source kit: virtual clock, replaying peer, rate-limited fetch, Retry-After, token bucket."""

from __future__ import annotations

import asyncio
import email.utils
from typing import Any, ClassVar

import aiohttp
import pytest

from wallboard.kit.ratelimit import MAX_RETRY_AFTER_S, TokenBucket, parse_retry_after
from wallboard.kit.source import DOWN, STARTING, UP, PollConfig, PollSource, SourceConfig
from wallboard.kit.testing import HttpReplay, ReplayPeer, SourceHarness, TcpReplay, VirtualClock

SUMMARY = b'{"waiting": 4}'


class SummaryConfig(PollConfig):
    """Where the summary is."""

    url: str


class SummarySource(PollSource):
    """Polls a JSON summary and reports the waiting count of one queue."""

    type: ClassVar[str] = "summary"
    Config: ClassVar[type[SourceConfig]] = SummaryConfig

    async def poll(self) -> list[dict[str, Any]]:
        assert isinstance(self.config, SummaryConfig)
        data = await self.get_json(self.config.url)
        return [{"type": "queue.snapshot", "ts": self.clock.time(), "queue": "q",
                 "waiting": data["waiting"]}]


def summary_source(url: str, **settings: Any) -> SummarySource:
    return SummarySource("s", SummaryConfig(type="summary", url=url, **settings))


async def test_virtual_clock_wakes_sleepers_in_deadline_order_only_when_advanced() -> None:
    clock = VirtualClock(start=1000.0)
    woke: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{clock.time():g}")

    tasks = [asyncio.create_task(nap("long", 30)), asyncio.create_task(nap("short", 10))]
    await asyncio.sleep(0.01)
    assert woke == [] and clock.next_wake_s() == 10
    await clock.run_for(15)
    assert woke == ["short@1010"]  # it wakes at its deadline, not at the end
    await clock.run_for(15)
    assert woke == ["short@1010", "long@1030"] and clock.monotonic() == 30
    await asyncio.gather(*tasks)


async def test_http_peer_replays_drops_and_returns_on_the_same_port() -> None:
    async with ReplayPeer(HttpReplay(SUMMARY)) as peer, aiohttp.ClientSession() as http:
        async with http.post(f"{peer.url}/x", data=b"abc") as resp:
            assert resp.status == 200 and await resp.read() == SUMMARY
        port = peer.port
        await peer.drop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{peer.url}/x")
        await peer.restore()
        peer.reply_next(503, b"busy", {"Retry-After": "7"})
        async with http.get(f"{peer.url}/x") as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (503, "7")
        assert peer.port == port and peer.served == 2
        assert peer.requests[0].startswith(b"POST /x HTTP/1.1")


async def test_tcp_peer_sends_the_recording_on_each_connection() -> None:
    async with ReplayPeer(TcpReplay(b"line 1\nline 2\n")) as peer:
        for _ in range(2):
            reader, writer = await asyncio.open_connection(peer.host, peer.port)
            assert await reader.readexactly(14) == b"line 1\nline 2\n"
            writer.close()
        assert peer.served == 2


async def test_retry_after_from_the_vendor_is_honoured_before_the_next_poll() -> None:
    async with ReplayPeer(HttpReplay(SUMMARY)) as peer:
        peer.reply_next(429, headers={"Retry-After": "120"})
        source = summary_source(f"{peer.url}/summary", interval_s=5)
        async with SourceHarness(source) as h:
            await h.wait_for(lambda: h.status == UP, "recover")
            assert h.statuses == [STARTING, DOWN, UP]
            # Back-off starts at <= 1 s; the vendor asked for 120 s and got them.
            assert h.clock.slept[0] == 120 and h.clock.monotonic() >= 120
    assert peer.served == 2


async def test_http_errors_and_non_json_bodies_are_source_errors_naming_the_url() -> None:
    async with ReplayPeer(HttpReplay(b"<html>")) as peer:
        peer.reply_next(500)
        source = summary_source(f"{peer.url}/summary")
        async with SourceHarness(source) as h:
            errors: list[str | None] = []
            h.runner.on_change = lambda: errors.append(h.runner.status.last_error)  # type: ignore
            await h.wait_for(lambda: len(errors) >= 2, "fail twice")
        assert errors[0] == f"GET {peer.url}/summary: HTTP 500"
        assert errors[1].startswith(f"GET {peer.url}/summary: response is not JSON")
        assert h.crashes == 0


async def test_requests_are_rate_limited_by_the_token_bucket() -> None:
    async with ReplayPeer(HttpReplay(SUMMARY)) as peer:
        # Polls every 0.1 s, but the vendor allows one request per 10 s in bursts of 2.
        source = summary_source(f"{peer.url}/s", interval_s=0.1, max_requests_per_s=0.1,
                                burst=2)
        async with SourceHarness(source) as h:
            await h.wait_for(lambda: peer.served >= 4, "poll four times")
            elapsed = h.clock.monotonic()
    assert 20 <= elapsed < 21  # two at once, then one per 10 s


def test_token_bucket_refills_at_its_rate_and_defers_after_retry_after() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate_per_s=2, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.wait_s() == 0
        bucket.tokens -= 1
    assert bucket.wait_s() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.wait_s() == 0
    bucket.defer(30)
    assert bucket.wait_s() == pytest.approx(30)


def test_token_bucket_at_a_rate_that_is_not_a_binary_fraction_never_stalls() -> None:
    clock = VirtualClock()  # epoch-sized readings: a femtosecond sleep does not move them
    bucket = TokenBucket(rate_per_s=9 / 60, burst=2, clock=clock)
    for _ in range(50):
        waits = 0
        while (delay := bucket.wait_s()) > 0:
            clock.advance(delay)
            waits += 1
            assert waits < 3, f"stalled: asked to wait {delay!r} again"
        bucket.tokens -= 1


def test_retry_after_accepts_seconds_and_http_dates_and_caps_silly_values() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120
    in_a_minute = email.utils.formatdate(now + 60, usegmt=True)
    assert parse_retry_after(in_a_minute, now) == pytest.approx(60)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0
    assert parse_retry_after("9999999", now) == MAX_RETRY_AFTER_S
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_a_source_used_without_the_runtime_says_where_its_http_session_comes_from() -> None:
    source = summary_source("http://127.0.0.1:9/")
    with pytest.raises(RuntimeError, match="the runtime injects one when the source starts"):
        _ = source.http
