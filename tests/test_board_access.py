"""TV tokens, the admin token, announcements and board config errors, on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
import yaml
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import TOKEN as WEBHOOK_TOKEN
from tests.conftest import base_config
from wallboard.config.settings import ConfigError, load_settings
from wallboard.server import keys
from wallboard.server.app import create_app
from wallboard.server.boards import board_scope, scoped_tree
from wallboard.server.hub import flatten

TV = "tv-token-for-board-a-0001"
TV2 = "tv-token-for-board-a-0002"
ADMIN = "admin-token-0123456789"


def config(tmp_path: Path, **access: Any) -> dict[str, Any]:
    return base_config(
        journal={"data_dir": str(tmp_path / "journal")},
        boards={"a": {"tiles": [{"kpi": "waiting"}, {"type": "announcements"}]},
                "b": {"tiles": [{"kpi": "waiting", "queue": "sales"}]}},
        playlists={"p": {"boards": ["a", "b"], "interval_s": 5}},
        access={"enabled": True, "admin_token": ADMIN, "boards": {"a": [TV, TV2]}, **access},
    )


class Board:
    """A server started from a config file, so that editing the file can be observed."""

    def __init__(self, path: Path, server: TestServer, session: ClientSession) -> None:
        self.path, self.server, self.session = path, server, session
        self.url = f"http://127.0.0.1:{server.port}"
        self.ws_url = f"ws://127.0.0.1:{server.port}"

    def rewrite(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        data = yaml.safe_load(self.path.read_text())
        mutate(data)
        self.path.write_text(yaml.safe_dump(data))
        stamp = time.time() + 1  # a distinct mtime even on coarse file systems
        os.utime(self.path, (stamp, stamp))

    async def status(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.session.request(method, self.url + path, **kwargs) as resp:
            return resp.status, await resp.text()

    async def metric(self, line_start: str) -> float:
        _, text = await self.status("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
async def board_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[TestServer, ClientSession]] = []

    async def start(data: dict[str, Any]) -> Board:
        path = tmp_path / "wallboard.yaml"
        path.write_text(yaml.safe_dump(data))
        app = create_app(load_settings(path), config_path=str(path))
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        session = ClientSession()
        started.append((server, session))
        return Board(path, server, session)

    yield start
    for server, session in started:
        await session.close()
        await server.close()


async def test_board_page_and_socket_need_the_boards_token_and_refusals_are_counted(
        board_server, tmp_path: Path) -> None:
    board = await board_server(config(tmp_path))
    assert (await board.status("GET", "/board/a"))[0] == 401
    assert (await board.status("GET", f"/board/a?token={TV}x"))[0] == 403
    assert (await board.status("GET", f"/board/b?token={TV}"))[0] == 403  # another board's
    status, html = await board.status("GET", f"/board/a?token={TV}")
    assert status == 200 and f"token={TV}" in html  # the page's socket carries it on
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{board.ws_url}/ws?board=a")
    assert refused.value.response.status_code == 401
    async with websockets.connect(f"{board.ws_url}/ws?board=a&token={TV}") as ws:
        assert '"type":"snapshot"' in await ws.recv()
    assert await board.metric('wallboard_http_rejected_total{code="401",endpoint="board"}') == 1
    assert await board.metric('wallboard_http_rejected_total{code="403",endpoint="board"}') == 2
    assert await board.metric('wallboard_http_rejected_total{code="401",endpoint="ws"}') == 1


async def test_editing_the_config_revokes_a_token_without_restart(board_server,
                                                                   tmp_path: Path) -> None:
    board = await board_server(config(tmp_path))
    async with websockets.connect(f"{board.ws_url}/ws?board=a&token={TV}") as kept, \
            websockets.connect(f"{board.ws_url}/ws?board=a&token={TV2}") as revoked:
        await kept.recv()
        await revoked.recv()
        board.rewrite(lambda d: d["access"]["boards"].update(a=[TV]))
        # The TV holding the removed token is cut off within a couple of watcher ticks.
        async with asyncio.timeout(5):
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await revoked.recv()
        assert closed.value.rcvd.code == 4403
        assert (await board.status("GET", f"/board/a?token={TV2}"))[0] == 403
        assert (await board.status("GET", f"/board/a?token={TV}"))[0] == 200
        await kept.recv()  # the other TV stays connected
    # Turning access off opens the boards again, still without a restart.
    board.rewrite(lambda d: d["access"].update(enabled=False))
    for _ in range(50):
        if (await board.status("GET", "/board/a"))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await board.status("GET", "/board/a"))[0] == 200


async def test_a_broken_access_edit_keeps_the_old_tokens_and_names_file_and_key(
        board_server, tmp_path: Path) -> None:
    board = await board_server(config(tmp_path))
    board.rewrite(lambda d: d["access"]["boards"].update(a=["short"]))
    for _ in range(50):
        if await board.metric('wallboard_access_reloads_total{result="error"}') == 1:
            break
        await asyncio.sleep(0.1)
    assert await board.metric('wallboard_access_reloads_total{result="error"}') == 1
    status, body = await board.status("GET", "/api/admin/access",
                                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert status == 200
    assert f"{board.path}: access.boards: " in body and "16 characters" in body
    assert (await board.status("GET", f"/board/a?token={TV}"))[0] == 200  # still in force
    assert (await board.status("GET", "/board/a?token=short"))[0] == 403


async def test_playlist_needs_its_token_or_one_valid_for_every_board(board_server,
                                                                     tmp_path: Path) -> None:
    play = "playlist-token-000001"
    board = await board_server(config(tmp_path, playlists={"p": [play]}))
    assert (await board.status("GET", "/play/p"))[0] == 401
    assert (await board.status("GET", f"/play/p?token={TV}"))[0] == 403  # opens only board a
    status, html = await board.status("GET", f"/play/p?token={play}")
    assert status == 200
    assert html.count("<iframe") == 2 and f"/board/b?embed=1&amp;token={play}" in html
    assert (await board.status("GET", f"/board/b?token={play}"))[0] == 200


async def test_announcements_need_the_admin_token_and_expire(board_server,
                                                             tmp_path: Path) -> None:
    board = await board_server(config(tmp_path))
    body = {"text": "<b>Fire drill</b>  at 15:00", "ttl_s": 1.0, "boards": ["a"]}
    assert (await board.status("POST", "/api/announcements", json=body))[0] == 401
    assert (await board.status("POST", "/api/announcements", json=body,
                               headers={"Authorization": f"Bearer {TV}"}))[0] == 401
    admin = {"Authorization": f"Bearer {ADMIN}"}
    status, text = await board.status("POST", "/api/announcements", json=body, headers=admin)
    assert status == 201, text
    async with board.session.get(f"{board.url}/api/snapshot", headers=admin) as resp:
        shown = (await resp.json())["announcements"]
    # Stored as plain text (whitespace folded); the page renders it with textContent.
    assert {b: [a["text"] for a in items] for b, items in shown.items()} == {
        "a": ["<b>Fire drill</b> at 15:00"], "b": []}
    for bad, field in [({"text": "", "ttl_s": 5}, "text:"), ({"text": "x"}, "ttl_s:"),
                       ({"text": "x", "ttl_s": 5, "boards": ["zz"]}, "boards:")]:
        status, text = await board.status("POST", "/api/announcements", json=bad, headers=admin)
        assert status == 400 and text.startswith(field), text
    assert (await board.status("POST", "/api/announcements", data=b"{", headers=admin))[0] == 400
    assert await board.metric(
        'wallboard_http_rejected_total{code="400",endpoint="announcements"}') == 4
    assert await board.metric(
        'wallboard_http_rejected_total{code="401",endpoint="announcements"}') == 2
    # Gone once expired: the hub rebuilds the snapshot every second, so within ttl + 1 s.
    posted = time.monotonic()
    while True:
        async with board.session.get(f"{board.url}/api/snapshot", headers=admin) as resp:
            if (await resp.json())["announcements"] == {"a": [], "b": []}:
                break
        assert time.monotonic() - posted < 3, "the announcement did not expire"
        await asyncio.sleep(0.1)


async def test_admin_api_is_off_without_an_admin_token(board_server, tmp_path: Path) -> None:
    data = config(tmp_path)
    del data["access"]["admin_token"]
    board = await board_server(data)
    status, text = await board.status("GET", "/api/admin/boards",
                                      headers={"Authorization": "Bearer anything"})
    assert status == 403 and "access.admin_token" in text


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["playlists"]["p"]["boards"].append("zz"),
     "playlists.p.boards[2]: unknown board 'zz'"),
    (lambda d: d["access"]["boards"].update(zz=["x" * 16]), "access.boards.zz: unknown board"),
    (lambda d: d["boards"]["a"]["tiles"].append({"type": "legal", "queue": "sales"}),
     "boards.a.tiles[2].queue: queue 'sales' has no legal_rules"),
    (lambda d: d["boards"]["a"]["tiles"].append({"type": "survey", "kpi": "waiting"}),
     "boards.a.tiles[2]: a survey tile shows csat, nps or ces"),
    (lambda d: d["boards"]["a"]["tiles"].append({"kpi": "waiting", "cols": 13}),
     "boards.a.tiles[2].cols: Input should be less than or equal to 12"),
    (lambda d: d["boards"]["a"].update(alert={"quiet_hours": "22-7"}),
     "boards.a.alert.quiet_hours: '22-7' is not a HH:MM-HH:MM range"),
    (lambda d: d["boards"]["a"]["tiles"].append(
        {"kpi": "waiting", "thresholds": {"direction": "low_bad", "warn": 1, "crit": 3}}),
     "boards.a.tiles[2].thresholds: low_bad: crit must be at most warn"),
])
def test_board_config_errors_name_the_file_and_key(tmp_path: Path, change: Any,
                                                   message: str) -> None:
    data = config(tmp_path)
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert any(p.startswith(f"{path}: ") and message in p for p in error.value.problems), \
        error.value.problems


async def test_with_access_on_the_snapshot_api_needs_a_tv_or_the_admin_token(
        board_server, tmp_path: Path) -> None:
    board = await board_server(config(tmp_path))
    assert (await board.status("GET", "/api/snapshot"))[0] == 401
    assert (await board.status("GET", "/api/snapshot?token=not-a-token-at-all"))[0] == 403
    assert (await board.status("GET", f"/api/snapshot?token={TV}"))[0] == 200
    status, body = await board.status("GET", "/api/snapshot",
                                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert status == 200 and '"total"' in body
    assert await board.metric('wallboard_http_rejected_total{code="401",endpoint="snapshot"}') == 1
    assert await board.metric('wallboard_http_rejected_total{code="403",endpoint="snapshot"}') == 1


async def test_with_access_on_a_tv_receives_only_its_boards_numbers(board_server,
                                                                    tmp_path: Path) -> None:
    """Board `a` shows site totals: no queue's own keys and no agent names reach its TV."""
    board = await board_server(config(tmp_path, boards={"a": [TV], "b": [TV2]}))
    async with websockets.connect(f"{board.ws_url}/ws?board=a&token={TV}") as tv_a, \
            websockets.connect(f"{board.ws_url}/ws?board=b&token={TV2}") as tv_b:
        snap_a = orjson.loads(await tv_a.recv())
        snap_b = orjson.loads(await tv_b.recv())
        assert snap_a["type"] == snap_b["type"] == "snapshot"
        keys_a, keys_b = set(snap_a["data"]), set(snap_b["data"])
        assert "total.live.waiting" in keys_a and "meta.site" in keys_a
        assert not {k for k in keys_a if k.startswith(("queues.", "agents.", "teams."))}
        # Board b shows the sales queue: its keys, not chat's, not the agents'.
        assert "queues.sales.live.waiting" in keys_b and "queues.sales.label" in keys_b
        assert not {k for k in keys_b if k.startswith(("queues.chat.", "agents.", "total."))}
        status = await board.status("POST", "/api/events", json=[
            {"type": "contact.queued", "id": "c1", "ts": time.time(), "queue": "sales",
             "contact_id": "call-1"},
            {"type": "agent.state", "id": "s1", "ts": time.time(), "agent": "mallory",
             "state": "available", "queues": ["sales"]}],
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
        assert status[0] == 202
        seq = snap_a["seq"]
        seen_a: dict[str, Any] = {}
        while seen_a.get("total.live.waiting") != 1:  # deltas, in order, no gap
            delta = orjson.loads(await asyncio.wait_for(tv_a.recv(), 5))
            assert delta["type"] == "delta" and delta["seq"] == seq + 1
            seq = delta["seq"]
            assert all(k.startswith(("meta.", "sources.", "total.", "announcements", "trend."))
                       for k in delta["changes"]), delta["changes"]
            seen_a.update(delta["changes"])
        text_b = ""
        while '"queues.sales.live.waiting":1' not in text_b:
            text_b = await asyncio.wait_for(tv_b.recv(), 5)
            assert "mallory" not in text_b
        # The snapshot API answers a TV token with its board's numbers, the admin with all.
        status_a, text_a = await board.status("GET", f"/api/snapshot?token={TV}")
        _, text_admin = await board.status("GET", "/api/snapshot",
                                           headers={"Authorization": f"Bearer {ADMIN}"})
        api_a, api_admin = orjson.loads(text_a), orjson.loads(text_admin)
        assert status_a == 200 and api_a["total"]["live"]["waiting"] == 1
        assert "queues" not in api_a and "agents" not in api_a and "meta" in api_a
        assert api_admin["agents"]["mallory"]["state"] == "available"
        # The pruned tree is exactly the board's flat keys, nested again.
        paths = board_scope(board.server.app[keys.BOARDS]["b"])
        starts = tuple(".".join(p) + "." for p in paths)  # no queue name here has a dot
        full = flatten(api_admin)
        assert flatten(scoped_tree(api_admin, paths)) == {
            k: v for k, v in full.items() if k.startswith(starts) or k in {
                ".".join(p) for p in paths}}
    # Without access, a TV gets everything (the API is public then anyway).
    board.rewrite(lambda d: d["access"].update(enabled=False))
    await asyncio.sleep(1.5)  # the file is re-read when its mtime changes
    async with websockets.connect(f"{board.ws_url}/ws?board=a&token={TV}") as tv:
        data = orjson.loads(await tv.recv())["data"]
        assert "queues.sales.live.waiting" in data and "agents.mallory.state" in data
        # Access switched on again: this TV's token is valid, so it stays, now scoped.
        board.rewrite(lambda d: d["access"].update(enabled=True))
        while True:
            message = orjson.loads(await asyncio.wait_for(tv.recv(), 5))
            if message["type"] == "snapshot":
                break
        assert "total.live.waiting" in message["data"]
        assert not [k for k in message["data"] if k.startswith(("queues.", "agents."))]


async def test_switching_access_on_rescopes_every_tv_before_any_revoked_one_is_closed(
        board_server, tmp_path: Path) -> None:
    """Revoked TVs slow to close do not hold back the kept TVs' new scope."""
    board = await board_server(config(tmp_path, enabled=False, boards={"a": [TV]}))
    kept = [await websockets.connect(f"{board.ws_url}/ws?board=a&token={TV}")
            for _ in range(4)]
    revoked = [await websockets.connect(f"{board.ws_url}/ws?board=a&token=wrong-token-0001")
               for _ in range(4)]
    for client in board.server.app[keys.HUB].clients:
        if client.token != TV:
            # A TV that stopped reading: its close frame waits for room in a full buffer.
            close = client.ws.close

            async def slow_close(close: Any = close, **kwargs: Any) -> bool:
                await asyncio.sleep(3)
                return await close(**kwargs)
            client.ws.close = slow_close  # type: ignore[method-assign]
    try:
        for tv in kept:
            assert "queues.sales.live.waiting" in await tv.recv()  # unscoped while off
        board.rewrite(lambda d: d["access"].update(enabled=True))
        await asyncio.sleep(1.5)  # the watcher's tick: the reload is applied
        status, _ = await board.status("POST", "/api/events", json=[
            {"type": "contact.queued", "id": "c1", "ts": time.time(), "queue": "sales",
             "contact_id": "call-1"}], headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
        assert status == 202
        for tv in kept:
            scoped = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.5):
                    while True:
                        message = orjson.loads(await tv.recv())
                        data = message.get("data") or message.get("changes") or {}
                        scoped = scoped or message["type"] == "snapshot"
                        if scoped:  # after its rescope, nothing outside board a's keys
                            assert not [k for k in data if k.startswith("queues.")], message
            assert scoped, "the kept TV was not resynced with its board's scope"
    finally:
        for tv in kept:
            await tv.close()
        for ws in revoked:
            await ws.close()
