"""A local TCP or HTTP peer that replays recorded bytes, and can drop and come back."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import ClassVar, Self

PEER_TASK = "replay-peer"  # name of the peer's own tasks, so leak checks can tell them apart


def _read(data: bytes | str | Path) -> bytes:
    return Path(data).read_bytes() if isinstance(data, str | Path) else data


@dataclass(frozen=True)
class HttpReplay:
    """An HTTP peer that answers every request with a recorded body (a poll source's API)."""

    body: bytes | str | Path
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    kind: ClassVar[str] = "http"

    def recording(self) -> bytes:
        """The recorded bytes (read from the file when given a path)."""
        return _read(self.body)


@dataclass(frozen=True)
class TcpReplay:
    """A TCP peer that sends recorded bytes on every connection, then holds it open."""

    data: bytes | str | Path
    kind: ClassVar[str] = "tcp"

    def recording(self) -> bytes:
        """The recorded bytes (read from the file when given a path)."""
        return _read(self.data)


@dataclass
class Reply:
    """One HTTP answer queued with `ReplayPeer.reply_next`."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """A listening socket on 127.0.0.1 that can stop and come back on the same port.

    The base of the replaying peer and of hand-written protocol peers: a subclass serves each
    connection in `_serve` and adds the writers it may cut to `_writers`.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = 0
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def host(self) -> str:
        """Always the loopback address."""
        return "127.0.0.1"

    async def start(self) -> Self:
        """Listen (on a free port the first time, on the same port after a stop)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and cut every connection: the peer is gone."""
        if self._server is not None:
            self._server.close()
            self.hang_up()
            await self._server.wait_closed()
            self._server = None

    def hang_up(self) -> None:
        """Cut the open connections but keep listening (a push source reconnects)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class ReplayPeer(LoopbackServer):
    """A live peer on 127.0.0.1 for one recording; `drop()` and `restore()` keep the port."""

    def __init__(self, spec: HttpReplay | TcpReplay) -> None:
        super().__init__()
        self.spec = spec
        self.recording = spec.recording()
        self.served = 0  # connections (TCP) or requests (HTTP) answered
        self.requests: list[bytes] = []  # HTTP request heads, for assertions on auth headers
        self._next: deque[Reply] = deque()

    @property
    def url(self) -> str:
        """Base URL (HTTP peers) or tcp://host:port."""
        scheme = "http" if self.spec.kind == "http" else "tcp"
        return f"{scheme}://{self.host}:{self.port}"

    async def __aenter__(self) -> ReplayPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drop()

    restore = LoopbackServer.start
    drop = LoopbackServer.stop

    def send_next(self, payload: bytes) -> None:
        """Send `payload` instead of the recording on the next connection or request."""
        self._next.append(Reply(payload, self._status(), dict(self._headers())))

    def reply_next(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                   ) -> None:
        """Answer the next HTTP request with this status (e.g. 429 with Retry-After)."""
        self._next.append(Reply(body, status, headers or {}))

    def _status(self) -> int:
        return self.spec.status if isinstance(self.spec, HttpReplay) else 200

    def _headers(self) -> dict[str, str]:
        if isinstance(self.spec, HttpReplay):
            return {"Content-Type": self.spec.content_type, **self.spec.headers}
        return {}

    def _reply(self) -> Reply:
        if self._next:
            return self._next.popleft()
        return Reply(self.recording, self._status(), self._headers())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.set_name(PEER_TASK)
        self._writers.add(writer)
        try:
            if self.spec.kind == "http":
                await self._http(reader, writer)
            else:
                writer.write(self._reply().body)
                self.served += 1
                await writer.drain()
                while await reader.read(65536):  # hold the line until either side hangs up
                    pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or 0)
        if length:
            await reader.readexactly(length)
        reply = self._reply()
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = "Status"
        headers = {**reply.headers, "Content-Length": str(len(reply.body)),
                   "Connection": "close"}
        lines = [f"HTTP/1.1 {reply.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
        self.served += 1
        await writer.drain()
