"""Push at the floor: leading-edge flushes, coalesced bursts, one frame for every client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import base_config, now
from tests.wsclient import BoardClient, unframe
from wallboard.server import hub as hub_mod
from wallboard.server import keys

WAITING = "queues.sales.live.waiting"


def queued(k: int) -> dict[str, Any]:
    """One contact.queued event on sales."""
    return {"type": "contact.queued", "id": f"e{k}", "ts": now(), "queue": "sales",
            "contact_id": f"c{k}"}


def config(push_interval_ms: int) -> dict[str, Any]:
    """The base config with the push interval given."""
    out = base_config()
    out["server"] = {"push_interval_ms": push_interval_ms}
    return out


async def test_an_isolated_event_on_an_idle_server_goes_out_at_once(live_server) -> None:
    # A 1 s interval: a trailing-edge push (or one timed from the last refresh) would show
    # up as hundreds of milliseconds, the leading edge as a few.
    live = await live_server(config(1000))
    async with BoardClient(f"{live.ws_url}/ws?board=overview") as board:
        await board.receive()
        latencies = []
        for k in range(1, 6):
            await asyncio.sleep(1.2)  # quiet for longer than the interval
            sent = time.monotonic()
            status, _ = await live.post(queued(k))
            assert status == 202
            seen = await board.wait_for(lambda s, k=k: s[WAITING] == k, timeout=5)
            latencies.append(seen - sent)
        assert board.gaps == 0
    assert max(latencies) < 0.25, latencies


async def test_a_burst_is_coalesced_to_one_message_per_interval(live_server) -> None:
    live = await live_server(config(300))
    async with BoardClient(f"{live.ws_url}/ws?board=overview") as board:
        await board.receive()
        await asyncio.sleep(0.5)
        start = time.monotonic()
        posts = 60
        for k in range(1, posts + 1):  # one event every ~20 ms: far faster than the interval
            status, _ = await live.post(queued(k))
            assert status == 202
            await asyncio.sleep(0.02)
        span = time.monotonic() - start
        values: list[int] = []
        while board.state.get(WAITING) != posts:
            message = await board.receive(timeout=5)
            if message["type"] == "delta" and WAITING in message["changes"]:
                values.append(message["changes"][WAITING])
        assert board.gaps == 0
    # Every message carried the latest count, in order, and there were about span / interval
    # of them (one more for the leading edge, one for the final trailing push).
    assert values == sorted(values) and values[-1] == posts
    assert 2 <= len(values) <= span / 0.3 + 2, (len(values), span)


async def test_every_client_gets_the_same_frame_encoded_once(live_server,
                                                             monkeypatch) -> None:
    framed: list[bytes] = []
    original = hub_mod.text_frame

    def counting(payload: bytes) -> bytes:
        frame = original(payload)
        framed.append(frame)
        return frame

    monkeypatch.setattr(hub_mod, "text_frame", counting)
    live = await live_server(config(50))
    hub = live.server.app[keys.HUB]
    boards = [BoardClient(f"{live.ws_url}/ws?board=overview") for _ in range(12)]
    for board in boards:
        await board.__aenter__()
        await board.receive()
    try:
        for board in boards:  # asked for deflate (the default), offered none
            assert board.conn is not None
            assert "Sec-WebSocket-Extensions" not in board.conn.response.headers
        await asyncio.sleep(0.3)
        framed.clear()
        seq = hub.seq
        status, _ = await live.post(queued(1))
        assert status == 202
        carried: set[bytes] = set()  # the message that brought the event, per client
        for board in boards:
            assert board.conn is not None
            while True:
                data = await asyncio.wait_for(board.conn.recv(decode=False), 5)
                if b'"queues.sales.live.waiting":1' in data:
                    carried.add(data)
                    break
        # One frame per flush, whatever the number of clients; they all read the same bytes.
        assert 1 <= len(framed) <= hub.seq - seq
        assert len(carried) == 1 and carried <= {unframe(frame) for frame in framed}
    finally:
        for board in boards:
            await board.__aexit__(None, None, None)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_text_frame_lengths_round_trip(size: int) -> None:
    payload = b"x" * size
    assert unframe(hub_mod.text_frame(payload)) == payload


class _Transport:
    """Records what is written to one fake client."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written.append(data)


class _WS:
    closed = False


def test_a_fanout_in_slices_keeps_every_client_in_order() -> None:
    import orjson

    state = {"n": 0}
    slice_ = hub_mod.FANOUT_SLICE

    async def scenario() -> None:
        hub = hub_mod.Hub(lambda: dict(state))
        hub._loop = asyncio.get_running_loop()
        hub.flush()
        transports = [_Transport() for _ in range(2 * slice_ + 50)]
        clients = [hub_mod.Client(hub, _WS(), "b", t) for t in transports]  # type: ignore[arg-type]
        for client in clients:
            client.pending = False  # as if each had its snapshot at seq 1
            client.snapshot_seq = hub.seq
            hub.clients.add(client)
        state["n"] = 1
        hub.flush()  # seq 2: the first slice now, the others on the next turns of the loop
        assert sum(len(t.written) for t in transports) == slice_
        # One client's sender writes it a snapshot (seq 2) before its slice comes.
        late = next(c for c, t in zip(clients, transports, strict=True) if not t.written)
        late.snapshot_seq = hub.seq
        state["n"] = 2
        hub.flush()  # seq 3 before the slices of seq 2 ran: they are written first
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        for client, transport in zip(clients, transports, strict=True):
            seqs = [orjson.loads(unframe(frame))["seq"] for frame in transport.written]
            assert seqs == ([3] if client is late else [2, 3]), seqs

    asyncio.run(scenario())


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """One server text frame off a raw socket, parsed as JSON."""
    import orjson

    head = await reader.readexactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    assert head[0] == 0x81, head  # a final text frame, uncompressed (RSV1 clear)
    result: dict[str, Any] = orjson.loads(await reader.readexactly(n))
    return result


async def test_a_client_that_falls_behind_gets_one_snapshot_not_a_backlog(live_server) -> None:
    import socket

    # 150 queues: a ~0.5 MB snapshot, more than the kernel buffers and our 64 KiB hold.
    queues = {f"q{i:03d}": {"label": f"Queue {i}"} for i in range(150)}
    queues["sales"] = {"label": "Sales"}
    cfg = base_config(queues=queues)
    cfg["server"] = {"push_interval_ms": 50, "send_timeout_s": 10.0}
    live = await live_server(cfg)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", live.server.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    writer.write((f"GET /ws?board=overview HTTP/1.1\r\nHost: 127.0.0.1:{live.server.port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    try:
        posts = 10
        for k in range(1, posts + 1):  # changes while it reads nothing
            status, _ = await live.post(queued(k))
            assert status == 202
            await asyncio.sleep(0.06)
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        kinds: list[str] = []
        state: dict[str, Any] = {}
        seq = None
        while state.get(WAITING) != posts:
            message = await asyncio.wait_for(read_frame(reader), 10)
            kinds.append(message["type"])
            if message["type"] == "snapshot":
                state = dict(message["data"])
            else:
                assert message["seq"] == seq + 1, (seq, message["seq"])  # never a gap
                state.update(message["changes"])
            seq = message["seq"]
    finally:
        writer.close()
    # Its first snapshot was still unread when the changes came: they became one more
    # snapshot, not ten deltas queued behind it.
    assert kinds[0] == "snapshot" and kinds.count("snapshot") >= 2, kinds
    assert kinds.count("delta") < posts, kinds
