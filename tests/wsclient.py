"""A real websocket client that rebuilds the board's flat state from snapshot and deltas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect


def unframe(frame: bytes) -> bytes:
    """The payload of one final, unmasked text frame (RFC 6455 5.2), its lengths checked."""
    assert frame[0] == 0x81, f"not a final text frame: {frame[:2]!r}"
    assert not frame[1] & 0x80, "a server frame is never masked"
    n, start = frame[1], 2
    if n == 126:
        n, start = int.from_bytes(frame[2:4], "big"), 4
        assert n >= 126, "length not in its shortest form"
    elif n == 127:
        n, start = int.from_bytes(frame[2:10], "big"), 10
        assert n >= 65536, "length not in its shortest form"
    assert len(frame) == start + n, (len(frame), start, n)
    return frame[start:]


class BoardClient:
    """Connects to /ws, keeps the flat state and the sequence, checks for gaps."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.state: dict[str, Any] = {}
        self.seq = 0
        self.messages = 0
        self.gaps = 0
        self.conn: ClientConnection | None = None

    async def __aenter__(self) -> BoardClient:
        self.conn = await connect(self.url, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.conn is not None
        await self.conn.close()

    def apply(self, message: dict[str, Any]) -> None:
        """Apply one server message to the local state."""
        self.messages += 1
        if message["type"] == "snapshot":
            self.state = dict(message["data"])
        elif message["type"] == "delta":
            if message["seq"] != self.seq + 1:
                self.gaps += 1
            self.state.update(message["changes"])
            for key in message["removed"]:
                self.state.pop(key, None)
        self.seq = message["seq"]

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """Read and apply one message."""
        assert self.conn is not None
        message = orjson.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        self.apply(message)
        return message

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                       timeout: float = 5.0) -> float:
        """Read until `predicate(state)` holds; returns when (monotonic) it did."""
        deadline = time.monotonic() + timeout
        while not (self.state and predicate(self.state)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            await self.receive(remaining)
        return time.monotonic()
