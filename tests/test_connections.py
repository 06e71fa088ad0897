"""`wallboard serve` on real sockets: slow headers and bodies, the connection cap, fd limit."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN
from tests.serverproc import ServerProcess, journal_config

HALF_HEADER = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def config(tmp_path: Path, **server: Any) -> dict[str, Any]:
    data = journal_config(tmp_path / "journal")
    data["server"].update(server)
    return data


async def metrics(url: str) -> dict[tuple[str, str], float]:
    """Connection samples of /metrics: (name, reason label or '') -> value."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return {(s.name, s.labels.get("reason", "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith(("wallboard_connections_", "wallboard_websocket_origin"))}


async def healthz_seconds(url: str) -> float:
    """How long GET /healthz takes on a new connection."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, \
            http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
        assert resp.status == 200
    return time.monotonic() - started


async def open_half_headers(port: int, n: int
                            ) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """`n` connections that send the start of a request and never finish its headers."""
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HALF_HEADER)
        conns.append((reader, writer))
    return conns


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """Everything the server sent before closing, or None if it kept the connection open."""
    try:
        async with asyncio.timeout(timeout):
            return await reader.read()
    except TimeoutError:
        return None
    except ConnectionResetError:
        return b""


def raise_own_fd_limit(need: int) -> None:
    """The test process holds the client ends: make room for them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


async def test_1500_half_headers_are_cut_after_the_header_timeout_and_health_stays_fast(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    raise_own_fd_limit(4000)
    # Every test client shares 127.0.0.1: the per-address share must not be what cuts them.
    server = server_process(config(tmp_path, header_timeout_s=3, max_connections_per_ip=4096))
    await server.start()
    opened = time.monotonic()
    conns = await open_half_headers(server.port, 1500)
    try:
        # Meanwhile the server answers health checks at once.
        assert await healthz_seconds(server.url) < 1.0
        assert not [r for r, _ in conns if r.at_eof()], "some were closed before their time"
        results = await asyncio.gather(*(closed_by_server(r, 6) for r, _ in conns))
        elapsed = time.monotonic() - opened
        assert all(r is not None for r in results), \
            f"{sum(r is None for r in results)} of 1500 still open after {elapsed:.1f}s"
        assert all(r.startswith(b"HTTP/1.1 408") for r in results if r)
        assert await healthz_seconds(server.url) < 1.0
        seen = await metrics(server.url)
        assert seen[("wallboard_connections_refused_total", "header_timeout")] == 1500
        assert seen[("wallboard_connections_open", "")] <= 2  # the scrape's own, at most
    finally:
        for _, writer in conns:
            writer.close()


async def test_the_default_header_timeout_is_ten_seconds(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(config(tmp_path))
    await server.start()
    opened = time.monotonic()
    conns = await open_half_headers(server.port, 20)
    try:
        assert await closed_by_server(conns[0][0], 8) is None  # not before its time
        results = await asyncio.gather(*(closed_by_server(r, 6) for r, _ in conns))
        assert all(r is not None for r in results)
        assert 9.5 < time.monotonic() - opened < 14
    finally:
        for _, writer in conns:
            writer.close()


async def test_past_max_connections_a_new_connection_gets_503_and_is_counted(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(config(tmp_path, max_connections=20, header_timeout_s=60))
    await server.start()
    async with aiohttp.ClientSession() as http:
        # Boards' websockets count as connections: 5 of them and 15 idle sockets fill the cap.
        boards = [await http.ws_connect(f"{server.url}/ws?board=overview") for _ in range(5)]
        for ws in boards:
            assert (await ws.receive_json())["type"] == "snapshot"
        idle = await open_half_headers(server.port, 15)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await closed_by_server(reader, 3)
        writer.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 503 Service Unavailable")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"\r\nRetry-After: 5" in head and b"server.max_connections=20" in body
        # A board joining now is refused the same way.
        try:
            await http.ws_connect(f"{server.url}/ws?board=overview")
            raise AssertionError("a websocket past the cap was accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 503
        for _, idle_writer in idle:
            idle_writer.close()
        for ws in boards:
            await ws.close()
        await asyncio.sleep(0.3)
        seen = await metrics(server.url)
    assert seen[("wallboard_connections_refused_total", "max_connections")] == 2
    log = server.log.read_text()
    assert log.count("20 connections open (server.max_connections): refusing") == 1, log
    assert seen[("wallboard_connections_limit", "")] == 20
    assert seen[("wallboard_connections_open", "")] <= 2


async def test_a_trickling_body_is_cut_after_the_body_timeout(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(config(tmp_path, body_timeout_s=1))
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[")
    started = time.monotonic()
    answer = b""
    try:
        for _ in range(40):  # one byte every 0.1 s: 4 s, if nobody stops it
            writer.write(b" ")
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(), 0.1)
                break
            except TimeoutError:
                continue
    except ConnectionError:
        pass
    finally:
        writer.close()
    cut_after = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"server.body_timeout_s=1" in answer
    assert 0.9 < cut_after < 2.5
    seen = await metrics(server.url)
    assert seen[("wallboard_connections_refused_total", "body_timeout")] == 1
    # A body sent at once is not affected.
    async with aiohttp.ClientSession() as http:
        status, _, _ = await server.post(http, [{
            "type": "contact.queued", "id": "q1", "ts": time.time(), "queue": "sales",
            "contact_id": "c1"}])
    assert status == 202


def lower_fd_limit(soft: int, hard: int | None = None) -> Callable[[], None]:
    """preexec_fn: start the server with a low open-file limit."""
    def apply() -> None:
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard or current_hard))
    return apply


def open_files_limit(pid: int) -> tuple[int, int]:
    """Soft and hard 'Max open files' of a process, from /proc."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


async def test_the_server_raises_its_open_file_soft_limit_to_the_hard_limit(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # A chosen hard limit, so that the fitted cap is a known number: 2000 - 2000 // 8.
    server = server_process(config(tmp_path), preexec=lower_fd_limit(256, 2000))
    await server.start()
    assert server.proc is not None
    assert open_files_limit(server.proc.pid) == (2000, 2000)
    assert "open-file limit raised from 256 to 2000" in server.log.read_text()
    seen = await metrics(server.url)
    assert seen[("wallboard_connections_limit", "")] == 1750


async def test_max_connections_is_fitted_below_a_low_hard_limit(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(config(tmp_path), preexec=lower_fd_limit(300, 300))
    await server.start()
    seen = await metrics(server.url)
    assert seen[("wallboard_connections_limit", "")] == 300 - 64
    assert "server.max_connections 4096 lowered to 236" in server.log.read_text()


async def test_one_address_past_max_connections_per_ip_gets_503_and_others_still_connect(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(config(tmp_path, max_connections=20, max_connections_per_ip=5,
                                   header_timeout_s=60))
    await server.start()
    idle = await open_half_headers(server.port, 5)  # all from 127.0.0.1
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = await closed_by_server(reader, 3)
    writer.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b"server.max_connections_per_ip=5" in answer and b"Retry-After: 5" in answer
    # Another address still gets in, below the global cap.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port,
                                                  local_addr=("127.0.0.2", 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = await closed_by_server(reader, 3)
    writer.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
    for _, idle_writer in idle:
        idle_writer.close()
    await asyncio.sleep(0.3)
    seen = await metrics(server.url)  # from 127.0.0.1 again: its slots are free
    assert seen[("wallboard_connections_refused_total", "max_connections_per_ip")] == 1
    assert seen[("wallboard_connections_refused_total", "max_connections")] == 0
    assert server.log.read_text().count("(server.max_connections_per_ip)") == 1
