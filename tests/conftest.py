"""Shared fixtures: a real server on an ephemeral port, a webhook poster, a websocket reader."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from wallboard.config.settings import parse_settings
from wallboard.server.app import create_app

TOKEN = "test-token-123"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def no_journal_left_in_the_repository() -> Iterator[None]:
    """Tests keep journals in temporary directories; fail if one appears in the checkout."""
    places = {REPO / "wallboard-data", Path.cwd() / "wallboard-data"}
    before = {place for place in places if place.exists()}
    yield
    created = sorted(str(p) for p in places - before if p.exists())
    assert not created, f"a test wrote a journal into {created}"


def require_program(path: str, why: str) -> None:
    """Skip when a system program is absent, except under CI=true where that is a failure."""
    if shutil.which(path) or os.path.exists(path):
        return
    message = f"{path} is not installed: {why}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# Ports already handed out in this run: the kernel may offer a port again as soon as the probe
# socket closes, and two servers of one test given the same port answer as one.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """An unused loopback port, never one this run has handed out before."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def base_config(**extra: Any) -> dict[str, Any]:
    """A config with one voice queue and a webhook source."""
    config: dict[str, Any] = {
        "site": {"name": "Test site", "timezone": "UTC"},
        "server": {"push_interval_ms": 50},
        "queues": {"sales": {"label": "Sales", "channel": "voice"},
                   "chat": {"label": "Chat", "channel": "chat",
                            "service_level": {"threshold_s": 60}}},
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
    }
    config.update(extra)
    return config


class Live:
    """A running app: its base URL, the app, and helpers to talk to it."""

    def __init__(self, server: TestServer, session: ClientSession) -> None:
        self.server = server
        self.app: web.Application = server.app  # type: ignore[assignment]
        self.session = session
        self.url = f"http://127.0.0.1:{server.port}"
        self.ws_url = f"ws://127.0.0.1:{server.port}"

    async def post(self, events: Any, token: str = TOKEN, raw: bytes | None = None,
                   content_type: str = "application/json") -> tuple[int, Any]:
        """POST events to the webhook; returns (status, decoded body)."""
        body = raw if raw is not None else orjson.dumps(events)
        async with self.session.post(f"{self.url}/api/events", data=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": content_type}) as resp:
            return resp.status, await resp.json()

    async def get_json(self, path: str) -> Any:
        """GET a JSON endpoint."""
        async with self.session.get(f"{self.url}{path}") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def get_text(self, path: str) -> tuple[int, str]:
        """GET a text endpoint."""
        async with self.session.get(f"{self.url}{path}") as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Factory: start the app for a config dict on a real ephemeral port.

    Without a `journal` section the journal goes to a fresh temporary directory, never the
    working directory.
    """
    started: list[tuple[TestServer, ClientSession]] = []

    async def start(config: dict[str, Any] | None = None) -> Live:
        config = dict(config or base_config())
        config.setdefault("journal", {"data_dir": str(tmp_path / f"journal-{len(started)}")})
        settings = parse_settings(config, "<test>")
        server = TestServer(create_app(settings), host="127.0.0.1", port=0)
        await server.start_server()
        session = ClientSession()
        started.append((server, session))
        return Live(server, session)

    yield start
    for server, session in started:
        await session.close()
        await server.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory of `wallboard serve` subprocesses (tests/serverproc.py), all stopped at the end,
    also when the test fails."""
    from tests.serverproc import ServerProcess  # it imports this module

    started: list[ServerProcess] = []

    def start(config: dict[str, Any], **kwargs: Any) -> ServerProcess:
        server = ServerProcess(tmp_path, config, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def now() -> float:
    """Wall-clock now, for event timestamps."""
    return time.time()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    """A fresh redis-server for the test (tests/redisproc.py), stopped at the end."""
    from tests.redisproc import RedisServer  # it imports this module's helpers

    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
