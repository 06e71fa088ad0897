"""What a board's audience may reach: exact board scope, the websocket Origin, the index."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.typing import Origin

from tests.conftest import TOKEN as WEBHOOK_TOKEN
from tests.conftest import base_config
from tests.wsclient import BoardClient, unframe
from wallboard.server import keys
from wallboard.server.boards import scoped_tree
from wallboard.server.connections import origin_ok
from wallboard.server.hub import Hub, flatten

TV_B = "tv-token-for-board-b-0001"
TV_A = "tv-token-for-board-a-0001"
ADMIN = "admin-token-0123456789"
SECRET = "sales.tenant-b-secret"  # queue names may contain dots; flat keys join with dots


def access_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Queues `sales` and `sales.tenant-b-secret`; board b shows only `sales`."""
    config = base_config(
        journal={"data_dir": str(tmp_path / "journal")},
        boards={"a": {"tiles": [{"kpi": "waiting"}]},
                "b": {"tiles": [{"kpi": "waiting", "queue": "sales"},
                                {"type": "queue_table", "window": "today",
                                 "queues": ["sales"]}]}},
        playlists={"p": {"boards": ["a", "b"], "interval_s": 5}},
        access={"enabled": True, "admin_token": ADMIN, "boards": {"a": [TV_A], "b": [TV_B]}},
        **extra)
    config["queues"][SECRET] = {"label": "Tenant B", "channel": "voice"}
    return config


def queued(event_id: str, queue: str) -> dict[str, Any]:
    return {"type": "contact.queued", "id": event_id, "ts": time.time(), "queue": queue,
            "contact_id": f"call-{event_id}"}


async def test_a_board_never_receives_a_queue_whose_name_starts_with_its_queue(
        live_server, tmp_path: Path) -> None:
    live = await live_server(access_config(tmp_path))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with BoardClient(f"{live.ws_url}/ws?board=b&token={TV_B}") as tv:
        first = await tv.receive()
        assert first["type"] == "snapshot"
        assert "queues.sales.live.waiting" in first["data"]
        assert not [k for k in first["data"] if "tenant-b" in k], first["data"].keys()
        # An event of the secret queue: the admin sees it, the TV of board b gets no key of it.
        status, body = await live.post([queued("s1", SECRET)])
        assert status == 202, body
        for _ in range(100):
            async with live.session.get(f"{live.url}/api/snapshot", headers=admin) as resp:
                if (await resp.json())["queues"][SECRET]["live"]["waiting"] == 1:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the secret queue's event was not counted")
        status, body = await live.post([queued("p1", "sales")])
        assert status == 202, body
        texts: list[str] = []
        assert tv.conn is not None
        while '"queues.sales.live.waiting":1' not in (texts[-1] if texts else ""):
            texts.append(await asyncio.wait_for(tv.conn.recv(), 5))  # type: ignore[arg-type]
        assert all(orjson.loads(t)["type"] == "delta" for t in texts)
        assert not [t for t in texts if "tenant-b" in t], texts
        # A later full snapshot (a resync) is scoped the same way.
        await tv.conn.send(orjson.dumps({"type": "resync"}).decode())
        while (message := await tv.receive())["type"] != "snapshot":
            pass
        assert message["data"]["queues.sales.live.waiting"] == 1
        assert not [k for k in message["data"] if "tenant-b" in k]
    async with live.session.get(f"{live.url}/api/snapshot?token={TV_B}") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "tenant-b" not in text and "Tenant B" not in text
    assert orjson.loads(text)["queues"]["sales"]["live"]["waiting"] == 1


async def test_websocket_origin_must_be_this_servers_else_403_counted(live_server) -> None:
    live = await live_server(base_config())
    url = f"{live.ws_url}/ws?board=overview"
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{live.server.port}.evil",
                   f"https://127.0.0.1:{live.server.port + 1}"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, origin=Origin(origin))
        assert refused.value.response.status_code == 403, origin
    # No Origin (kiosk tools, server-side clients) and the page's own origin: accepted.
    for origin in (None, f"http://127.0.0.1:{live.server.port}"):
        async with websockets.connect(url, origin=Origin(origin) if origin else None) as ws:
            assert orjson.loads(await ws.recv())["type"] == "snapshot", origin
    _, metrics = await live.get_text("/metrics")
    assert 'wallboard_websocket_origin_refused_total{reason="null"} 1.0' in metrics
    assert 'wallboard_websocket_origin_refused_total{reason="foreign"} 3.0' in metrics


async def test_websocket_origin_listed_in_allowed_origins_is_accepted(live_server) -> None:
    live = await live_server(base_config(server={
        "push_interval_ms": 50, "allowed_origins": ["https://Wallboard.example.com/"]}))
    url = f"{live.ws_url}/ws?board=overview"
    async with websockets.connect(url, origin=Origin("https://wallboard.example.com")) as ws:
        assert orjson.loads(await ws.recv())["type"] == "snapshot"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, origin=Origin("https://other.example.com"))
    assert refused.value.response.status_code == 403


def links(html: str) -> set[str]:
    return set(re.findall(r'href="(/(?:board|play)/[^"]*)"', html))


async def test_with_access_on_the_index_lists_only_what_the_token_opens(
        live_server, tmp_path: Path) -> None:
    live = await live_server(access_config(tmp_path))
    status, html = await live.get_text("/")
    assert status == 200 and links(html) == set() and "?token=" in html
    _, html = await live.get_text(f"/?token={TV_B}")
    assert links(html) == {f"/board/b?token={TV_B}"}
    _, html = await live.get_text("/?token=not-a-token-of-any-board")
    assert links(html) == set()
    async with live.session.get(f"{live.url}/",
                                headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert links(await resp.text()) == {"/board/a", "/board/b", "/play/p"}


async def test_with_access_off_the_index_lists_everything(live_server, tmp_path: Path) -> None:
    config = access_config(tmp_path)
    config["access"]["enabled"] = False
    live = await live_server(config)
    _, html = await live.get_text("/")
    assert links(html) == {"/board/a", "/board/b", "/play/p"}


async def test_the_index_offers_a_playlist_to_its_token(live_server, tmp_path: Path) -> None:
    config = access_config(tmp_path)
    config["access"]["playlists"] = {"p": ["playlist-token-000001"]}
    live = await live_server(config)
    _, html = await live.get_text("/?token=playlist-token-000001")
    # A playlist's token opens the playlist and the boards it rotates through.
    assert links(html) == {f"/{kind}?token=playlist-token-000001"
                           for kind in ("board/a", "board/b", "play/p")}
    assert WEBHOOK_TOKEN not in html


def test_hub_deltas_of_a_scope_rebuild_exactly_its_subtrees() -> None:
    """Applying a scoped client's deltas to its snapshot gives the scoped tree, flattened."""
    tree: dict[str, Any] = {"meta": {"ts": 0}, "queues": {
        "sales": {"live": {"waiting": 0}, "label": "Sales"},
        SECRET: {"live": {"waiting": 0}, "label": "Tenant B"}}}
    hub = Hub(lambda: copy.deepcopy(tree))
    scope = (("meta",), ("queues", "sales"))
    hub.flush()
    state = dict(orjson.loads(hub.snapshot_message(scope))["data"])
    messages = []

    class Outbox:
        board, scope = "b", (("meta",), ("queues", "sales"))

        def offer(self, frame: bytes) -> None:
            messages.append(unframe(frame).decode())

    hub.clients.add(Outbox())  # type: ignore[arg-type]
    steps: list[Callable[[], None]] = [
        lambda: tree["queues"][SECRET]["live"].update(waiting=5),  # another queue: no key
        lambda: tree["queues"]["sales"]["live"].update(waiting=2),
        lambda: tree["queues"]["sales"].pop("label"),  # removed within the scope
        lambda: tree["meta"].update(ts=1),
        lambda: tree["queues"].pop(SECRET),
    ]
    for step in steps:
        step()
        hub.flush()
        delta = orjson.loads(messages[-1])
        assert delta["seq"] == hub.seq
        state.update(delta["changes"])
        for key in delta["removed"]:
            del state[key]
        assert state == flatten(scoped_tree(tree, scope))
        assert "tenant-b" not in messages[-1] and "Tenant B" not in messages[-1]
    assert orjson.loads(messages[0])["changes"] == {}  # the secret queue's change: nothing


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, "board.example:8080", True),  # not a browser
    ("http://board.example:8080", "board.example:8080", True),
    ("HTTP://Board.Example:8080", "board.example:8080", True),
    ("https://board.example", "board.example", True),  # both on the default port
    ("https://board.example", "board.example:443", True),
    ("http://board.example", "board.example:443", False),  # port 80 is not 443
    ("https://board.example:8443", "board.example", False),  # a proxy that dropped the port
    ("http://[::1]:8080", "[::1]:8080", True),
    ("http://board.example.evil:8080", "board.example:8080", False),
    ("null", "board.example", False),
    ("file://", "board.example", False),
    ("http://board.example:99999", "board.example", False),  # malformed port
    ("https://listed.example", "board.example", True),
])
def test_origin_rules(origin: str | None, host: str, ok: bool) -> None:
    assert origin_ok(origin, host, ["https://listed.example"]) is ok


async def test_an_announcement_for_one_board_never_reaches_another_boards_tv(
        live_server, tmp_path: Path) -> None:
    """Posted for board a only: a's TV and token see it, b's get neither its text nor a's id."""
    live = await live_server(access_config(tmp_path))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    secret = "Board A only: fire drill at 15:00"
    async with BoardClient(f"{live.ws_url}/ws?board=a&token={TV_A}") as tv_a, \
            BoardClient(f"{live.ws_url}/ws?board=b&token={TV_B}") as tv_b:
        await tv_a.receive()
        await tv_b.receive()
        async with live.session.post(f"{live.url}/api/announcements", headers=admin,
                                     json={"text": secret, "ttl_s": 60, "boards": ["a"]}) as r:
            assert r.status == 201, await r.text()
        async with live.session.post(f"{live.url}/api/announcements", headers=admin,
                                     json={"text": "Everyone: lunch", "ttl_s": 60}) as r:
            assert r.status == 201, await r.text()
        await tv_a.wait_for(lambda s: len(s.get("announcements.a") or []) == 2)
        assert [a["text"] for a in tv_a.state["announcements.a"]] == [secret, "Everyone: lunch"]
        assert tv_b.conn is not None
        texts: list[str] = []
        while "Everyone: lunch" not in (texts[-1] if texts else ""):
            texts.append(await asyncio.wait_for(tv_b.conn.recv(), 5))  # type: ignore[arg-type]
        await tv_b.conn.send(orjson.dumps({"type": "resync"}).decode())
        while orjson.loads(texts[-1])["type"] != "snapshot":
            texts.append(await asyncio.wait_for(tv_b.conn.recv(), 5))  # type: ignore[arg-type]
        snapshot = orjson.loads(texts[-1])["data"]
        assert [a["text"] for a in snapshot["announcements.b"]] == ["Everyone: lunch"]
        assert not [k for k in snapshot if k.startswith("announcements.a")]
        assert not [t for t in texts if "Board A only" in t or "announcements.a" in t], texts
    async with live.session.get(f"{live.url}/api/snapshot?token={TV_B}") as resp:
        body = await resp.text()
    assert resp.status == 200 and "Board A only" not in body
    shown = orjson.loads(body)["announcements"]
    assert list(shown) == ["b"] and [a["text"] for a in shown["b"]] == ["Everyone: lunch"]
    async with live.session.get(f"{live.url}/api/snapshot?token={TV_A}") as resp:
        assert secret in await resp.text()


async def test_a_boards_tv_gets_each_sources_status_but_not_its_error(
        live_server, tmp_path: Path) -> None:
    """Source badges need status, last event and lag; the error text is the admin's."""
    live = await live_server(access_config(tmp_path))
    runner = next(iter(live.app[keys.RUNNERS].values()))
    runner.status.last_error = "connect to 10.1.2.3:5038: password rejected for user pbx"
    live.app[keys.HUB].mark_dirty()
    async with BoardClient(f"{live.ws_url}/ws?board=b&token={TV_B}") as tv:
        data = (await tv.receive())["data"]
    assert {k for k in data if k.startswith("sources.")} == {
        "sources.hook.status", "sources.hook.last_event_ts", "sources.hook.lag_s"}
    async with live.session.get(f"{live.url}/api/snapshot?token={TV_B}") as resp:
        assert "password rejected" not in await resp.text()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with live.session.get(f"{live.url}/api/snapshot", headers=admin) as resp:
        assert "password rejected" in await resp.text()
