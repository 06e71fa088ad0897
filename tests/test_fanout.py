"""Fan-out: coalescing outboxes, sequence numbers, and a stalled client that hurts nobody."""

from __future__ import annotations

import asyncio
import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_config, now
from tests.wsclient import BoardClient
from wallboard.server.hub import Hub, flatten


def test_flatten_uses_dotted_paths() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": "x"}) == {"a.b": 1, "a.c.d": None,
                                                                    "e": "x"}


def test_hub_publishes_only_changes_with_increasing_sequence() -> None:
    state = {"queues": {"sales": {"waiting": 1, "label": "Sales"}}}
    hub = Hub(lambda: state)
    hub.flush()
    assert hub.seq == 1
    state["queues"]["sales"]["waiting"] = 2
    hub.flush()
    assert hub.seq == 2
    hub.flush()  # nothing changed: no message, same sequence
    assert hub.seq == 2
    assert '"seq":2' in hub.snapshot_message() and '"queues.sales.waiting":2' in \
        hub.snapshot_message()


class _FakeWS:
    closed = False


class _FakeTransport:
    """Records writes; its buffer holds whatever size the test sets."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)


def test_outbox_keeps_latest_state_for_a_client_that_is_behind() -> None:
    from wallboard.server.hub import Client

    async def scenario() -> None:
        hub = Hub(lambda: {})
        transport = _FakeTransport()
        client = Client(hub, _FakeWS(), "b", transport)  # type: ignore[arg-type]
        assert client.pending  # a new client starts with a snapshot
        client.offer(b"delta-0")  # not before its snapshot: that would leave a gap
        assert transport.written == [] and client.pending
        client.pending = False
        client.offer(b"delta-1")  # keeping up: written at once, the very bytes
        assert transport.written == [b"delta-1"] and not client.pending
        transport.buffered = hub.buffer_limit + 1  # it stopped reading
        client.offer(b"delta-2")  # its backlog is bounded: a snapshot replaces the deltas
        assert transport.written == [b"delta-1"] and client.pending
        transport.buffered = 0
        client.pending, client.busy = False, True  # its sender is writing a snapshot
        client.offer(b"delta-3")
        assert transport.written == [b"delta-1"] and client.pending

    asyncio.run(scenario())


def stalled_client(port: int) -> socket.socket:
    """Open a websocket by hand with a tiny receive buffer, and never read from it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall((f"GET /ws?board=one HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def metric(text: str, name: str) -> float:
    """One unlabelled sample from a metrics page."""
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == name)


async def test_stalled_client_does_not_delay_the_others_and_is_dropped(live_server) -> None:
    # 150 queues make the snapshot large (~0.5 MB) so a client that never reads blocks fast.
    queues = {f"q{i:03d}": {"label": f"Queue {i}"} for i in range(150)}
    queues["sales"] = {"label": "Sales"}
    config = base_config(queues=queues,
                         boards={"one": {"tiles": [{"kpi": "waiting", "queue": "sales"}]}})
    config["server"] = {"push_interval_ms": 50, "send_timeout_s": 1.0}
    live = await live_server(config)
    stalled = stalled_client(live.server.port)
    try:
        boards = [BoardClient(f"{live.ws_url}/ws?board=one") for _ in range(5)]
        for board in boards:
            await board.__aenter__()
            await board.receive()
        latencies: list[float] = []
        for k in range(1, 16):
            sent = time.monotonic()
            status, _ = await live.post({"type": "contact.queued", "id": f"s{k}", "ts": now(),
                                         "queue": "sales", "contact_id": f"s{k}"})
            assert status == 202
            for board in boards:
                seen = await board.wait_for(
                    lambda s, k=k: s["queues.sales.live.waiting"] == k, timeout=3)
                latencies.append(seen - sent)
            await asyncio.sleep(0.1)
        # "On time": every update reached every healthy client within a few push intervals.
        assert max(latencies) < 1.0, max(latencies)
        assert all(b.gaps == 0 for b in boards)
        deadline = time.monotonic() + 10
        while True:
            _, text = await live.get_text("/metrics")
            if metric(text, "wallboard_websocket_clients_dropped_total") == 1:
                break
            assert time.monotonic() < deadline, "stalled client was never dropped"
            await asyncio.sleep(0.2)
        assert metric(text, "wallboard_websocket_clients") == 5
        for board in boards:
            await board.__aexit__(None, None, None)
    finally:
        stalled.close()


async def test_client_asking_for_resync_gets_a_full_snapshot(live_server) -> None:
    live = await live_server(base_config())
    async with BoardClient(f"{live.ws_url}/ws?board=overview") as board:
        first = await board.receive()
        assert first["type"] == "snapshot" and "queues.sales.live.waiting" in first["data"]
        assert board.conn is not None
        await board.conn.send('{"type": "resync"}')
        for _ in range(20):
            if (await board.receive())["type"] == "snapshot":
                break
        else:
            raise AssertionError("no snapshot after resync")
        assert board.state["queues.sales.label"] == "Sales"


async def test_unknown_board_is_404_for_page_and_websocket(live_server) -> None:
    live = await live_server(base_config())
    assert (await live.get_text("/board/nope"))[0] == 404
    assert (await live.get_text("/ws?board=nope"))[0] == 404
    status, page = await live.get_text("/")
    assert status == 200 and "/board/overview" in page
