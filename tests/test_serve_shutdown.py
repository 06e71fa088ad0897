"""`wallboard serve` on SIGTERM: requests in flight are answered, boards told we go away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson

from tests.conftest import TOKEN
from tests.serverproc import ServerProcess, journal_config


async def board_close(board: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The first close message the board receives (its snapshots and deltas skipped)."""
    while True:
        message = await board.receive()
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
            return message


async def test_sigterm_lets_a_webhook_post_in_flight_finish_and_closes_boards_with_1001(
        server_process: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_process(journal_config(tmp_path / "journal", batch_ms=100))
    await server.start()
    body = orjson.dumps([{"type": "contact.queued", "id": f"q{i}", "ts": time.time(),
                          "queue": "sales", "contact_id": f"c{i}"} for i in range(50)])
    async with aiohttp.ClientSession() as http:
        board = await http.ws_connect(f"{server.url}/ws?board=overview")
        # The whole request is in and its handler waits for the journal's commit (batch_ms
        # 100) when the signal arrives. (aiohttp stops reading bodies once it shuts down.)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        await asyncio.sleep(0.02)
        assert server.proc is not None
        server.proc.terminate()
        # Both at once: the server's close handshake waits for the board's reply.
        try:
            answer, closing = await asyncio.wait_for(
                asyncio.gather(reader.read(), board_close(board)), 20)
        except TimeoutError:
            raise AssertionError(server.log.read_text()) from None
        writer.close()
        assert answer.startswith(b"HTTP/1.1 202"), answer
        assert closing.type == aiohttp.WSMsgType.CLOSE, closing
        assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
    assert await asyncio.to_thread(server.wait, 15) == 0
    assert "Traceback" not in server.log.read_text()
