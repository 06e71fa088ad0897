"""200 TVs that vanish at once, mid-stream: a routine event, so no ERROR and no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.serverproc import ServerProcess, journal_config

TVS = 200


async def post_forever(server: ServerProcess, http: aiohttp.ClientSession) -> None:
    """Contacts queued and answered every 20 ms: deltas flow to every board all the time."""
    n = 0
    while True:
        now = time.time()
        events = []
        for _ in range(5):
            n += 1
            events += [{"type": "contact.queued", "id": f"q{n}", "ts": now, "queue": "sales",
                        "contact_id": f"c{n}"},
                       {"type": "contact.answered", "id": f"a{n}", "ts": now, "queue": "sales",
                        "contact_id": f"c{n}", "wait_s": n % 30}]
        status, body, _ = await server.post(http, events)
        assert status == 202, body
        await asyncio.sleep(0.02)


def reset(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Drop the connection as a rebooting switch does: an RST, no close frame."""
    sock = ws.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection = ws._conn  # the test's own client: its transport is the socket to drop
    assert connection is not None and connection.transport is not None
    connection.transport.abort()


async def websocket_clients(url: str) -> float:
    """wallboard_websocket_clients from /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "wallboard_websocket_clients")


async def test_200_tvs_vanishing_at_once_mid_stream_log_no_error_and_no_traceback(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(journal_config(tmp_path / "journal"))
    await server.start()
    connector = aiohttp.TCPConnector(limit=0)  # 200 websockets at once, not 100
    async with aiohttp.ClientSession(connector=connector) as http:
        tvs = [await http.ws_connect(f"{server.url}/ws?board=overview", compress=15 * (i % 2))
               for i in range(TVS)]
        for ws in tvs:
            assert (await ws.receive_json())["type"] == "snapshot"
        poster = asyncio.create_task(post_forever(server, http))
        try:
            # Half the TVs read their deltas, half stop reading: the server is mid-frame,
            # mid-drain or holding unsent bytes for many of them when they all vanish.
            for ws in tvs[::2]:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.receive(), 1.0)
            await asyncio.sleep(0.5)
            for ws in tvs:
                reset(ws)
            deadline = time.monotonic() + 15
            while await websocket_clients(server.url) > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert await websocket_clients(server.url) == 0  # the hub let go of every one
            await asyncio.sleep(1.0)  # events keep flowing to nobody
        finally:
            poster.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poster
    server.stop()  # an orderly stop: tasks never awaited would be reported now, at the latest
    log = server.log.read_text()
    assert "Traceback" not in log and "never retrieved" not in log, log[-4000:]
    errors = [line for line in log.splitlines() if re.search(r"\bERROR\b|\bCRITICAL\b", line)]
    assert errors == [], "\n".join(errors[:20])
    # At most one line per TV, none louder than INFO (a TV going away is routine).
    warnings = [line for line in log.splitlines() if re.search(r"\bWARNING\b", line)
                and ("websocket" in line.lower() or "client" in line.lower())]
    assert warnings == [], "\n".join(warnings[:20])
