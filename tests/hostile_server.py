"""A real server with a journal for hostile runs: post batches, read counts, SIGKILL, restart.

Shared by tests/test_hostile_properties.py (through a loop in a thread, so that hypothesis
drives plain functions) and bench/hostile.py (through asyncio.run).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import faulthandler
import itertools
import json
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from threading import Thread
from typing import Any, TypeVar

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TOKEN
from tests.hostile_events import (
    DUPLICATE,
    EITHER,
    LATE,
    QUEUES,
    REJECT,
    RESEND,
    VALID,
    Age,
    Batch,
    short,
)
from tests.serverproc import ServerProcess, journal_config
from tests.wsclient import BoardClient

T = TypeVar("T")
HEALTH_TIMEOUT_S = 1.0
RESTART_LIMIT_S = 50.0
START_TIMEOUT_S = 30.0  # a loaded CI machine needs ~4 s; a start that replays poison never ends
# Time-based values (they move between two reads) left out of the before/after comparison.
# Service-level misses and legal breaches are also decided by timers as contacts keep waiting.
TIME_BASED = frozenset({"oldest_wait_s", "oldest_ticket_s", "tickets_at_risk", "tickets_overdue",
                        "forecast_sl", "forecast_wait_s", "forecast_abandon", "agents_needed",
                        "sl_missed", "callbacks_in_promise"})


# Every server process started, killed at interpreter exit too, so that a run ended by a
# timeout leaves no server behind. Not a preexec_fn (prctl PDEATHSIG): Python code between
# fork and exec in a process with threads (the loop thread) can deadlock the child, and
# Popen then waits for its exec forever.
_LIVE: list[ServerProcess] = []


@atexit.register
def _kill_left_over() -> None:
    for server in _LIVE:
        server.kill()


class LoopThread:
    """An event loop in a thread: plain (hypothesis) tests run coroutines on one shared loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = Thread(target=self.loop.run_forever, daemon=True, name="hostile-loop")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Expected:
    """What the contract says the answer to one batch must be, from the strategy alone."""

    size: int = 0
    accepted: int = 0  # valid + late, new
    duplicates: int = 0
    late: int = 0
    rejected: int = 0
    either: int = 0  # stored, refused, or (an odd id sent before) a duplicate: left open
    offered: Counter[str] = field(default_factory=Counter)
    offered_either: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)  # one per event sent, for messages

    def status_allowed(self) -> set[int]:
        """202 when something may be stored or was a duplicate, 422 when nothing can be."""
        some = self.accepted + self.duplicates
        if some:
            return {202}
        return {202, 422} if self.either else {422}

    def describe(self) -> str:
        """The batch as sent, one line per event."""
        return "\n".join(self.lines)


def materialize(batch: Batch, now: float, ids: itertools.count, run: str,
                history: list[dict[str, Any]]) -> tuple[list[Any], Expected]:
    """The events to send (fresh ids, times relative to `now`) and what must come of them."""
    sent: list[Any] = []
    expected = Expected()
    where: dict[int, int] = {}  # item's position in the batch -> its index in `sent`
    for position, item in enumerate(batch.items):
        if item.kind == DUPLICATE:
            raw = sent[where[item.of]] if item.of in where else None
            why = f"resend of [{where.get(item.of)}] of this batch"
        elif item.kind == RESEND:
            raw = history[item.of % len(history)] if history else None
            why = "resend of an event stored before"
        else:
            raw = _fill(item.template, now, f"{run}-{next(ids)}")
            why = item.why
        if raw is None:
            continue
        index = where[position] = len(sent)
        sent.append(raw)
        queue = item.offered_queue if item.kind not in (DUPLICATE, RESEND) else None
        expected.lines.append(f"  [{index}] {item.kind}: {why} {short(raw, 160)}")
        if item.kind in (DUPLICATE, RESEND):
            expected.duplicates += 1
        elif item.kind in (VALID, LATE):
            if item.kind == VALID:
                history.append(raw)
            expected.accepted += 1
            expected.late += item.kind == LATE
            if item.kind == VALID and queue:
                expected.offered[queue] += 1
        elif item.kind == EITHER:
            expected.either += 1
            if queue:
                expected.offered_either[queue] += 1
        else:
            assert item.kind == REJECT
            expected.rejected += 1
    expected.size = len(sent)
    return sent, expected


def _fill(template: dict[str, Any], now: float, event_id: str) -> Any:
    if template.get("type") == "not_object":
        return template["value"]
    raw = {"id": event_id, **template}
    for key, value in raw.items():
        if isinstance(value, Age):
            raw[key] = round(now - value.seconds, 3)
    return raw


def encode(events: list[Any]) -> bytes:
    """JSON text of a batch; the stdlib writes integers past 64 bits, which orjson refuses."""
    return json.dumps(events, ensure_ascii=False).encode()


def counts(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Every count of the snapshot that a restart must bring back (no time-based values)."""
    out: dict[str, Any] = {}
    for name, queue in snapshot.get("queues", {}).items():
        for part in ("live", "15m", "1h", "today"):
            for key, value in (queue.get(part) or {}).items():
                if isinstance(value, int) and not isinstance(value, bool) \
                        and key not in TIME_BASED and "legal" not in key:
                    out[f"queues.{name}.{part}.{key}"] = value
    for name, team in snapshot.get("teams", {}).items():
        for key, value in (team.get("live") or {}).items():
            if isinstance(value, int) and key not in TIME_BASED:
                out[f"teams.{name}.live.{key}"] = value
    return out


def offered_today(snapshot: dict[str, Any]) -> Counter[str]:
    """'Offered today' of each configured queue."""
    queues = snapshot.get("queues", {})
    return Counter({q: int(queues.get(q, {}).get("today", {}).get("offered", 0))
                    for q in QUEUES})


@dataclass
class Reply:
    """One HTTP answer: status, decoded body (or the text), and how long it took."""

    status: int
    body: Any
    elapsed_s: float


class HostileServer:
    """A `wallboard serve` process with a SQLite journal, a session and a board client."""

    def __init__(self, workdir: Path, start_timeout: float = START_TIMEOUT_S) -> None:
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.generation = 0
        self.server: ServerProcess | None = None
        self.http: aiohttp.ClientSession | None = None
        self.board: BoardClient | None = None
        self.reader: asyncio.Task[None] | None = None
        self.board_error: str | None = None
        self.history: list[dict[str, Any]] = []  # valid events posted, for resends
        self.ids = itertools.count()
        self.statuses: Counter[int] = Counter()
        self.tainted = False  # the journal may hold events the contract refuses
        self.started: list[ServerProcess] = []  # every process, all killed by close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def open(self) -> None:
        """Start a server on a fresh journal (a new directory), then the board client."""
        await self.close()
        self.generation += 1
        work = self.workdir / f"run-{self.generation}"
        work.mkdir(parents=True)
        self.server = ServerProcess(work, journal_config(work / "data"))
        self.started.append(self.server)
        _LIVE.append(self.server)
        self.history.clear()
        self.tainted = False
        await self._start()
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        await self.connect_board()

    async def _start(self) -> None:
        """Start the process; once more if something else SIGKILLed it while it started."""
        assert self.server is not None
        try:
            await self.server.start(self.start_timeout)
        except AssertionError as exc:
            if "exited with -9" not in str(exc):
                raise
            await self.server.start(self.start_timeout)

    async def connect_board(self) -> None:
        """(Re)connect the websocket client that reads through the whole run."""
        await self.stop_board()
        self.board_error = None
        self.board = BoardClient(f"ws://127.0.0.1:{self.server.port}/ws?board=overview")
        await self.board.__aenter__()
        self.reader = asyncio.create_task(self._read_board(self.board))

    async def _read_board(self, board: BoardClient) -> None:
        try:
            while True:
                await board.receive(timeout=3600)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the test reports it; the reader just stops
            self.board_error = f"{type(exc).__name__}: {exc}"

    async def stop_board(self) -> None:
        """Stop reading and close the board client."""
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        if self.board is not None and self.board.conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.board.conn.close(), 2)
        self.reader = self.board = None

    async def close(self) -> None:
        """Stop the board client, the session and the process (SIGKILL: nothing to keep)."""
        await self.stop_board()
        if self.http is not None:
            await self.http.close()
            self.http = None
        for server in self.started:
            server.kill()
            with contextlib.suppress(Exception):
                server.wait(10)
            if server in _LIVE:
                _LIVE.remove(server)
        self.started.clear()
        self.server = None

    async def request(self, method: str, path: str, data: bytes | None = None,
                      headers: dict[str, str] | None = None, timeout: float = 20.0) -> Reply:
        """One request; the body decoded as JSON when it is JSON."""
        assert self.http is not None
        started = time.monotonic()
        async with self.http.request(method, f"{self.url}{path}", data=data, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
        self.statuses[resp.status] += 1
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        return Reply(resp.status, body, time.monotonic() - started)

    async def post(self, body: bytes, content_type: str = "application/json") -> Reply:
        """POST /api/events with the webhook's token."""
        return await self.request("POST", "/api/events", body, {
            "Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})

    async def broken(self) -> bool:
        """Whether /healthz, /api/snapshot or /metrics fail (then start afresh)."""
        try:
            health = await self.health()
            await self.snapshot()
            await self.metrics()
        except Exception:
            return True
        return health.status != 200

    async def health(self) -> Reply:
        """GET /healthz within HEALTH_TIMEOUT_S (a TimeoutError otherwise)."""
        return await self.request("GET", "/healthz", timeout=HEALTH_TIMEOUT_S)

    async def snapshot(self) -> dict[str, Any]:
        """GET /api/snapshot: 200 and JSON, or AssertionError naming what came instead."""
        reply = await self.request("GET", "/api/snapshot")
        assert reply.status == 200 and isinstance(reply.body, dict), (
            f"/api/snapshot answered {reply.status}: {short(reply.body, 300)}")
        return reply.body

    async def metrics(self) -> Counter[str]:
        """GET /metrics: 200 and a parseable exposition; contacts offered by configured queue.

        The exporter reads the live state at each scrape, so unlike the hub's snapshot (rebuilt
        up to a second later) it shows a batch's events as soon as the answer came.
        """
        reply = await self.request("GET", "/metrics")
        assert reply.status == 200, f"/metrics answered {reply.status}: {short(reply.body, 300)}"
        text = reply.body if isinstance(reply.body, str) else orjson.dumps(reply.body).decode()
        offered: Counter[str] = Counter(dict.fromkeys(QUEUES, 0))
        samples = 0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples += 1
                if sample.name == "wallboard_contacts_offered_total" \
                        and sample.labels.get("queue") in QUEUES:
                    offered[sample.labels["queue"]] += int(sample.value)
        assert samples, "/metrics has no samples"
        return offered

    async def fresh_snapshot(self, after: float, timeout: float = 3.0) -> dict[str, Any]:
        """A snapshot the hub built after epoch `after` (it rebuilds at least every second)."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = await self.snapshot()
            built = snapshot.get("meta", {}).get("ts", 0.0)
            if built >= after:
                return snapshot
            assert time.monotonic() < deadline, (
                f"the hub built no snapshot for {timeout:.0f} s: meta.ts stuck {after - built:.1f}"
                f" s behind")
            await asyncio.sleep(0.03)

    async def restart(self) -> float:
        """SIGKILL and start again on the same journal; seconds until healthy.

        A restart that stalls past RESTART_LIMIT_S dumps every thread's stack (the harness
        has hung here now and then, cause not found yet) and is tried once more, warned.
        """
        for attempt in (1, 2):
            try:
                return await asyncio.wait_for(self._restart_once(), RESTART_LIMIT_S)
            except TimeoutError:
                if attempt == 2:
                    raise
                faulthandler.dump_traceback(all_threads=True)
                warnings.warn(f"restart stalled past {RESTART_LIMIT_S} s; tried once more",
                              stacklevel=1)
                assert self.server is not None
                self.server.kill()
        raise AssertionError("unreachable")

    async def _restart_once(self) -> float:
        assert self.server is not None
        await self.stop_board()
        self.server.kill()
        await asyncio.to_thread(self.server.wait, 10)
        started = time.monotonic()
        await self._start()
        elapsed = time.monotonic() - started
        await self.connect_board()
        return elapsed

    async def board_messages_after(self, before: int, timeout: float = 2.0) -> bool:
        """Whether the board client receives a message past `before` within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.board is not None and self.board.messages <= before:
            if time.monotonic() > deadline or self.board_error:
                return False
            await asyncio.sleep(0.02)
        return self.board is not None


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """Await with a time limit (asyncio.TimeoutError past it)."""
    return await asyncio.wait_for(awaitable, timeout)
