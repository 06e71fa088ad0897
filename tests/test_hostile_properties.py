"""Near-valid hostile events through the real webhook to a real server with a journal.

Issue 17, point 9: after every batch the server answers /healthz within a second, /api/snapshot
and /metrics parse, no answer is a 5xx, the answer adds up, the valid events are counted
(checked against the strategy's own expectation), a board client keeps receiving, and a
SIGKILL and restart on the same journal brings back the same numbers. Each property fails on
its own line, so hypothesis reports a shrunk batch per broken property.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from yarl import URL

from tests.hostile_events import QUEUES, Batch, Blob, Text, batches, short
from tests.hostile_server import (
    HEALTH_TIMEOUT_S,
    Expected,
    HostileServer,
    LoopThread,
    counts,
    encode,
    materialize,
)

pytestmark = pytest.mark.timeout(600)  # a failing run shrinks; a passing one takes ~60 s
SETTINGS = settings(deadline=None, report_multiple_bugs=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


class Run:
    """The module's server and what the checks remember between examples."""

    def __init__(self, workdir: Path) -> None:
        self.loop = LoopThread()
        self.server = HostileServer(workdir)
        self.run_id = f"h{int(time.time())}"
        self.before: Counter[str] | None = None  # offered today after the last example
        self.poisoned = True  # a failed example may leave the server broken: start afresh

    def check(self, coro_fn: Any, *args: Any) -> None:
        """Run one example's checks; start afresh when the last one left the server broken."""
        if self.poisoned:
            self.loop.run(self.server.open())
            self.before, self.poisoned = None, False
        try:
            self.loop.run(coro_fn(*args))
        except BaseException:
            self.before = None
            # A wrong count leaves a working server for the next example (and shrinking stays
            # cheap); a server that stopped answering is replaced.
            self.poisoned = self.loop.run(self.server.broken())
            if not self.poisoned and self.server.board_error:
                self.loop.run(self.server.connect_board())
            raise

    def batch(self, batch: Batch) -> None:
        """Post one batch: fresh ids and times, noted for hypothesis' report, then checked."""
        if batch.restart and self.server.tainted:
            self.poisoned = True  # a restart must replay this example's events, not older ones
        if self.poisoned:
            self.loop.run(self.server.open())
            self.before, self.poisoned = None, False
        server = self.server
        sent, expected = materialize(batch, time.time(), server.ids, self.run_id, server.history)
        note(f"batch of {expected.size} events:\n{expected.describe()}")
        self.check(one_batch, self, batch, sent, expected)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One server process (and journal) for the module's examples."""
    state = Run(tmp_path_factory.mktemp("hostile"))
    yield state
    state.loop.run(state.server.close())
    state.loop.close()


async def healthy(server: HostileServer, context: str) -> Counter[str]:
    """/healthz within a second, /api/snapshot and /metrics answer 200 and parse; the
    contacts offered by queue (lifetime counter) from /metrics."""
    try:
        health = await server.health()
    except TimeoutError:
        raise AssertionError(f"/healthz did not answer within {HEALTH_TIMEOUT_S} s\n"
                             f"{context}") from None
    assert health.status == 200, f"/healthz answered {health.status}\n{context}"
    await server.snapshot()
    return await server.metrics()


async def one_batch(run: Run, batch: Batch, sent: list[Any], expected: Expected) -> None:
    """Post one batch and check every property of issue 17 on the answer and the server."""
    server = run.server
    if run.before is None:
        run.before = await server.metrics()
    context = f"batch of {expected.size} events:\n{expected.describe()}"
    messages = server.board.messages if server.board else 0
    reply = await server.post(encode(sent))
    context = f"answer {reply.status}: {short(reply.body, 800)}\n{context}"
    assert reply.status < 500, f"5xx from POST /api/events\n{context}"
    assert reply.status in expected.status_allowed(), (
        f"status {reply.status}; the contract says {sorted(expected.status_allowed())}\n"
        f"{context}")
    body = reply.body
    assert isinstance(body, dict), f"the answer is not a JSON object\n{context}"
    rejected = body.get("rejected_total", len(body.get("rejected", ())))
    # failed: stored but not counted (a fold that raised); the four parts make the batch.
    assert (body.get("accepted", 0) + body.get("duplicates", 0) + body.get("failed", 0)
            + rejected == expected.size), (
        f"accepted + duplicates + failed + rejected != {expected.size} events sent\n{context}")
    server.tainted |= body.get("accepted", 0) > expected.accepted
    assert expected.accepted <= body["accepted"] <= expected.accepted + expected.either, (
        f"stored {body['accepted']}, expected {expected.accepted} (+ up to {expected.either} "
        f"the contract leaves open)\n{context}")
    assert expected.duplicates <= body["duplicates"] <= expected.duplicates + expected.either, (
        f"duplicates {body['duplicates']}, expected {expected.duplicates}\n{context}")
    assert body.get("late") == expected.late, (
        f"late {body.get('late')}, expected {expected.late}\n{context}")
    seen = await healthy(server, context)
    low = run.before + expected.offered
    high = low + expected.offered_either
    assert all(low[q] <= seen[q] <= high[q] for q in QUEUES), (
        f"wallboard_contacts_offered_total {dict(seen)}; expected {dict(low)}"
        f"{f' to {dict(high)}' if expected.offered_either else ''} (before: {dict(run.before)})"
        f"\n{context}")
    run.before = seen
    if expected.accepted:
        assert await server.board_messages_after(messages), (
            f"the board client received nothing after the batch ({server.board_error})\n"
            f"{context}")
    if batch.restart:
        await restart_keeps_counts(run, context)


async def restart_keeps_counts(run: Run, context: str) -> None:
    """SIGKILL, start on the same journal: healthy within the limit and the same counts."""
    server = run.server
    before = counts(await server.fresh_snapshot(time.time()))
    try:
        await server.restart()
    except AssertionError as exc:
        raise AssertionError(f"restart on the same journal failed: {short(str(exc), 1500)}\n"
                             f"{context}") from None
    after = counts(await server.fresh_snapshot(time.time()))
    differ = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
              if before.get(k) != after.get(k)}
    assert not differ, f"after a restart (before, after): {short(differ, 1500)}\n{context}"
    run.before = await healthy(server, context)


@settings(SETTINGS, max_examples=30)
@given(batch=batches())
def test_near_valid_batches_keep_the_server_whole_and_counting(run: Run, batch: Batch) -> None:
    run.batch(batch)


def test_a_restart_at_the_end_brings_back_the_same_numbers(run: Run) -> None:
    """Whatever the run stored, a SIGKILL and restart come back with the same counts."""
    run.check(restart_keeps_counts, run, "end of the run")


# -- hostile clients -------------------------------------------------------------------------

frames = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=200).map(Text), st.binary(max_size=200),
    st.sampled_from([Blob(b"\x00" * 70_000), Text("x" * 70_000), Text("[" * 50_000),
                     '{"type": "resync"}' * 3, Text('{"type": "resync", "board": "' + "x" * 10_000
                                                    + '"}'), "null", "[]", '{"type": null}',
                     '{"type": ["resync"]}', "\ud800".encode("utf-8", "surrogatepass")]),
)


async def hostile_frames(run: Run, sent: list[Any]) -> None:
    """Send frames on a board socket; the server stays healthy and boards keep receiving."""
    server = run.server
    context = f"frames: {short(sent, 300)}"
    async with connect(f"ws://127.0.0.1:{server.server.port}/ws?board=overview",
                       max_size=None) as ws:
        orjson.loads(await asyncio.wait_for(ws.recv(), 5))  # the snapshot comes first
        for frame in sent:
            try:
                await ws.send(frame)
            except ConnectionClosed:
                break  # refusing an oversized frame by closing is fine
        await asyncio.sleep(0.05)
    await healthy(server, context)
    async with connect(f"ws://127.0.0.1:{server.server.port}/ws?board=overview") as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "snapshot", f"a new board got {short(first)}\n{context}"


@settings(SETTINGS, max_examples=15)
@given(sent=st.lists(frames, min_size=1, max_size=4))
def test_hostile_websocket_frames_never_hurt_the_server(run: Run, sent: list[Any]) -> None:
    run.check(hostile_frames, run, sent)


QUERY_VALUES = ["x" * 10_000, "\x00\x01\x02", "a\u202eb", "../../etc/passwd", "%00", "דני",
                "overview\r\nX-Injected: 1", "overview", "", "\ud7ff" * 100, "\x7f"]


async def hostile_query(run: Run, name: str, value: str, raw: bool) -> None:
    """Odd ?board=/?token= values on /api/snapshot and /ws: never a 5xx, server healthy."""
    server = run.server
    context = f"?{name}={short(value)} (raw bytes: {raw})"
    port = server.server.port
    for path in ("/api/snapshot", "/ws", "/"):
        if raw:  # unencoded bytes straight onto the socket
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path}?{name}=".encode() + value.encode(errors="replace")
                         + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            parts = status_line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        else:
            url = URL(server.url).with_path(path).with_query({name: value})
            async with server.http.get(url) as resp:
                status = resp.status
        assert status < 500, f"GET {path} answered {status}\n{context}"
    url = URL(f"ws://127.0.0.1:{port}/ws").with_query({name: value})
    try:
        async with connect(str(url)) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    except InvalidStatus as exc:
        assert exc.response.status_code < 500, (
            f"websocket handshake answered {exc.response.status_code}\n{context}")
    except InvalidMessage:
        pass  # aiohttp's own 400 to an overlong request line is HTTP/1.0 (status checked above)
    await healthy(server, context)


@settings(SETTINGS, max_examples=15)
@given(name=st.sampled_from(["board", "token", "embed"]),
       value=st.one_of(st.sampled_from(QUERY_VALUES),
                       st.text(st.characters(codec="utf-8"), max_size=50)).map(Text),
       raw=st.booleans())
def test_hostile_query_strings_never_give_a_5xx(run: Run, name: str, value: str,
                                                raw: bool) -> None:
    run.check(hostile_query, run, name, value, raw)
