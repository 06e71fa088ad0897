"""The real server restarts from a checkpoint with exactly the numbers of a full fold.

`wallboard serve` takes checkpoints every second; it is killed with SIGKILL right after one
(nothing left to fold) or with events stored after the last one (a tail to fold), and started
again: its board is compared with the board of the same journal started without any
checkpoint (a full fold). A damaged or foreign checkpoint is passed over, logged, counted.
Both journal backends: SQLite, and Redis (a real redis-server).
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.journal_traffic import (
    Contact,
    approx_equal,
    contacts,
    expected_today,
    observed_today,
    windows_of,
)
from tests.serverproc import ServerProcess, journal_config
from wallboard.ingest import checkpoint

CONTACTS = 40


class Store:
    """The checkpoints a stopped server left, read and changed behind its back."""

    def __init__(self, backend: str, data: Path, url: str | None) -> None:
        self.backend, self.db, self.url = backend, data / "journal.sqlite3", url
        self.key = "{wallboard}:checkpoints"

    def read(self) -> dict[str, bytes]:
        if self.backend == "sqlite":
            with sqlite3.connect(self.db) as con:
                return {str(seq): data for seq, data in con.execute(
                    "SELECT seq, data FROM checkpoints")}
        import redis
        client = redis.Redis.from_url(self.url)
        return {k.decode(): v for k, v in client.hgetall(self.key).items()}

    def write(self, blobs: dict[str, bytes]) -> None:
        if self.backend == "sqlite":
            with sqlite3.connect(self.db) as con:
                con.executemany("UPDATE checkpoints SET data = ? WHERE seq = ?",
                                [(blob, int(seq)) for seq, blob in blobs.items()])
            return
        import redis
        redis.Redis.from_url(self.url).hset(self.key, mapping=blobs)

    def drop(self) -> None:
        if self.backend == "sqlite":
            with sqlite3.connect(self.db) as con:
                con.execute("DELETE FROM checkpoints")
            return
        import redis
        redis.Redis.from_url(self.url).delete(self.key)


def untimed(live: dict[str, Any]) -> dict[str, Any]:
    """Live state without what grows with the clock (read a few seconds apart)."""
    return {k: v for k, v in live.items() if k not in ("oldest_wait_s", "threshold_ratio")}


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def read(server: ServerProcess) -> tuple[dict[str, Any], str]:
    async with aiohttp.ClientSession() as http:
        snapshot = await server.snapshot(http)
        async with http.get(f"{server.url}/metrics") as resp:
            return snapshot, await resp.text()


async def saves(server: ServerProcess, http: aiohttp.ClientSession) -> float:
    async with http.get(f"{server.url}/metrics") as resp:
        return metric(await resp.text(), "wallboard_checkpoint_saves_total")


async def next_save(server: ServerProcess, http: aiohttp.ClientSession) -> None:
    """Wait until a checkpoint is written after this call."""
    before = await saves(server, http)
    deadline = time.monotonic() + 10
    while await saves(server, http) <= before:
        assert time.monotonic() < deadline, "no checkpoint within 10 s"
        await asyncio.sleep(0.05)


async def post(server: ServerProcess, http: aiohttp.ClientSession,
               group: list[Contact]) -> int:
    """Post the contacts' events, ten contacts a request, each request with a late event too
    (stored and in the checkpoint's position, counted in no window); the events posted."""
    posted = 0
    for i in range(0, len(group), 10):
        late = {"type": "contact.queued", "id": f"late-{group[i].events[0]['id']}",
                "ts": time.time() - 3600, "queue": "sales", "contact_id": "late"}
        events = [e for c in group[i:i + 10] for e in c.events] + [late]
        status, body, _ = await server.post(http, events)
        assert status == 202 and body["late"] == 1, body
        posted += len(events)
    return posted


async def run_until_killed(server: ServerProcess, sent: list[Contact], tail: bool,
                           more: Callable[[], list[Contact]]) -> tuple[int, int]:
    """Post, let a checkpoint happen, maybe post more, then SIGKILL; events before and after."""
    await server.start()
    after = 0
    async with aiohttp.ClientSession() as http:
        before = await post(server, http, sent)
        await next_save(server, http)  # it holds every acknowledged event
        if tail:
            extra = more()
            after = await post(server, http, extra)  # well within the second before the next
            sent += extra
    server.kill()
    assert server.wait() == -signal.SIGKILL
    return before, after


def config(backend: str, data: Path, url: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"checkpoint_every_s": 1}
    if backend == "redis":
        extra |= {"backend": "redis", "url": url}
    return journal_config(data, **extra)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "sqlite":
        return "sqlite", None
    server = request.getfixturevalue("redis_server")  # skipped without redis-server
    return "redis", server.url


@pytest.mark.parametrize("tail", [False, True], ids=["right-after", "events-after"])
async def test_a_restart_from_a_checkpoint_shows_the_numbers_of_a_full_fold(
        tmp_path: Path, backend: tuple[str, str | None], tail: bool, server_process) -> None:
    kind, url = backend
    data = tmp_path / "data"
    server = server_process(config(kind, data, url))
    stream = contacts(random.Random(7), "ck")
    sent = [next(stream) for _ in range(CONTACTS)]
    before, after = await run_until_killed(server, sent, tail,
                                           lambda: [next(stream) for _ in range(15)])
    store = Store(kind, data, url)
    assert store.read(), "no checkpoint was stored"

    await server.start()
    from_checkpoint, text = await read(server)
    server.kill()
    server.wait()
    assert metric(text, 'wallboard_checkpoint_loads_total{result="loaded"}') == 1
    assert metric(text, "wallboard_checkpoint_loaded_age_seconds") < 30
    # Only what the checkpoint did not hold was folded: its position is exactly its state's.
    assert metric(text, "wallboard_journal_replayed_events") == after
    assert "loaded the checkpoint at position" in server.log.read_text()

    store.drop()
    await server.start()
    full, text = await read(server)
    server.stop()
    assert metric(text, 'wallboard_checkpoint_loads_total{result="missing"}') == 1
    assert metric(text, "wallboard_journal_replayed_events") == before + after
    assert windows_of(from_checkpoint) == windows_of(full)
    assert untimed(from_checkpoint["total"]["live"]) == untimed(full["total"]["live"])
    assert approx_equal(observed_today(full["total"]["today"]), expected_today(sent))


@pytest.mark.parametrize("damage", ["corrupt", "version"])
async def test_a_damaged_or_foreign_checkpoint_falls_back_to_a_full_fold(
        tmp_path: Path, backend: tuple[str, str | None], damage: str, server_process,
        monkeypatch: pytest.MonkeyPatch) -> None:
    kind, url = backend
    data = tmp_path / "data"
    server = server_process(config(kind, data, url))
    stream = contacts(random.Random(3), "dmg")
    sent = [next(stream) for _ in range(CONTACTS)]
    before, _ = await run_until_killed(server, sent, False, list)
    store = Store(kind, data, url)
    blobs = store.read()
    assert blobs
    changed = {}
    for pos, blob in blobs.items():
        if damage == "corrupt":  # one bit of the body
            changed[pos] = blob[:-7] + bytes([blob[-7] ^ 1]) + blob[-6:]
            continue
        header, body = checkpoint.unframe(blob)
        with monkeypatch.context() as patch:  # as another wallboard version would write it
            patch.setattr(checkpoint, "VERSION", "0.0.1+elsewhere")
            changed[pos] = checkpoint.frame(body, header.fingerprint, header.at, position=pos)
    store.write(changed)

    await server.start()
    restored, text = await read(server)
    server.stop()
    log = server.log.read_text()
    assert metric(text, f'wallboard_checkpoint_loads_total{{result="{damage}"}}') == len(blobs)
    assert metric(text, 'wallboard_checkpoint_loads_total{result="loaded"}') == 0
    assert re.search(rf"checkpoint at position \S+ not used: {damage}", log), log
    assert metric(text, "wallboard_journal_replayed_events") == before
    assert approx_equal(observed_today(restored["total"]["today"]), expected_today(sent))
