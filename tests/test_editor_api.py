"""The board editor's API on a real port: who may write, CSRF, validation with field paths,
optimistic concurrency, read-only config boards, and what reaches a TV's socket."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, CookieJar

from tests.conftest import Live, base_config

ADMIN = "admin-token-0123456789"
EDITOR = "editor-token-0123456789"
TV = "tv-edited-token-0123456789"
OPS_TV = "tv-ops-token-0123456789"
BOARD = {"title": "Floor", "columns": 2,
         "tiles": [{"kpi": "waiting", "queue": "sales",
                    "thresholds": {"warn": 2, "crit": 4}},
                   {"kpi": "service_level", "window": "15m"}]}


def _config(tmp_path: Path) -> dict[str, Any]:
    return base_config(
        journal={"data_dir": str(tmp_path / "data")},
        access={"enabled": True, "admin_token": ADMIN, "editors": {"sam": [EDITOR]},
                "edited_boards": [TV], "boards": {"ops": [OPS_TV]}},
        boards={"ops": {"title": "Ops", "tiles": [{"kpi": "waiting"}]}})


class Editor:
    """A client with a cookie jar (the CSRF cookie) and a token."""

    def __init__(self, live: Live, session: ClientSession, token: str = EDITOR) -> None:
        self.live, self.session, self.token, self.csrf = live, session, token, ""

    async def start(self) -> Editor:
        status, body = await self.call("GET", "/api/editor/session")
        assert status == 200, body
        self.csrf = body["csrf"]
        return self

    async def call(self, method: str, path: str, body: Any = None, *,
                   csrf: bool = True, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        async with self.session.request(method, f"{self.live.url}{path}", headers=headers,
                                        data=None if body is None else orjson.dumps(body)) as r:
            text = await r.text()
            try:
                return r.status, orjson.loads(text)
            except orjson.JSONDecodeError:
                return r.status, text


@pytest.fixture
async def editor(live_server, tmp_path: Path):
    live = await live_server(_config(tmp_path))
    session = ClientSession(cookie_jar=CookieJar(unsafe=True))  # cookies for 127.0.0.1
    client = await Editor(live, session).start()
    yield client
    await session.close()


async def _refused(live: Live) -> dict[str, float]:
    _, text = await live.get_text("/metrics")
    return {m[0]: float(m[1]) for m in re.findall(
        r'wallboard_editor_refused_total\{reason="(\w+)"\} ([0-9.]+)', text)}


async def test_a_board_is_created_saved_and_stored_with_who_and_version(editor: Editor,
                                                                        tmp_path: Path) -> None:
    status, body = await editor.call("PUT", "/api/editor/boards/floor",
                                     {"version": 0, "board": BOARD})
    assert (status, body["version"], body["saved_by"]) == (200, 1, "editor:sam")
    status, body = await editor.call("GET", "/api/editor/boards/floor")
    assert body["board"]["tiles"][0]["thresholds"] == {"warn": 2.0, "crit": 4.0}
    assert [v["version"] for v in body["versions"]] == [1]
    stored = (tmp_path / "data" / "boards.d" / "floor.yaml").read_text()
    assert "saved_by: editor:sam" in stored and "version: 1" in stored
    _, text = await editor.live.get_text("/metrics")
    assert 'wallboard_editor_edits_total{action="create"} 1.0' in text
    assert "wallboard_editor_boards 1.0" in text


async def test_an_invalid_edit_is_refused_with_the_field_named(editor: Editor,
                                                               tmp_path: Path) -> None:
    crafted = {"tiles": [{"kpi": "answered", "window": "2h"},
                         {"kpi": "waiting", "queue": "nowhere"},
                         {"type": "clock", "cols": 40}]}
    status, body = await editor.call("PUT", "/api/editor/boards/floor",
                                     {"version": 0, "board": crafted})
    assert status == 422
    paths = {p["path"]: p["message"] for p in body["problems"]}
    assert "'2h' is not a configured window" in paths["tiles[0].window"]
    assert "unknown queue 'nowhere'" in paths["tiles[1].queue"]
    assert "less than or equal to 12" in paths["tiles[2].cols"]
    assert not (tmp_path / "data" / "boards.d" / "floor.yaml").exists()
    assert (await _refused(editor.live))["invalid"] == 1


async def test_writes_without_csrf_with_a_tv_token_or_a_token_in_the_url_are_refused(
        editor: Editor) -> None:
    path = "/api/editor/boards/floor"
    status, _ = await editor.call("PUT", path, {"version": 0, "board": BOARD}, csrf=False)
    assert status == 403
    status, _ = await editor.call("PUT", path, {"version": 0, "board": BOARD}, token=TV)
    assert status == 403
    status, _ = await editor.call("PUT", path, {"version": 0, "board": BOARD}, token=OPS_TV)
    assert status == 403
    status, _ = await editor.call("PUT", f"{path}?token={EDITOR}", {"version": 0, "board": BOARD})
    assert status == 400
    status, _ = await editor.call("PUT", path, {"version": 0, "board": BOARD}, token="x" * 20)
    assert status == 401
    # Another site's page: the cookie and the header are right, the Origin is not.
    async with editor.session.put(f"{editor.live.url}{path}", data=orjson.dumps(
            {"version": 0, "board": BOARD}), headers={
            "Authorization": f"Bearer {EDITOR}", "X-CSRF-Token": editor.csrf,
            "Origin": "http://evil.example"}) as resp:
        assert resp.status == 403
    refused = await _refused(editor.live)
    assert {k: refused[k] for k in ("csrf", "tv_token", "token_in_url", "bad_token",
                                    "origin")} == {"csrf": 1, "tv_token": 2, "token_in_url": 1,
                                                   "bad_token": 1, "origin": 1}
    status, body = await editor.call("GET", "/api/editor/boards")
    assert [b["name"] for b in body["boards"]] == ["ops"]  # nothing was written


async def test_config_boards_are_read_only_and_never_written(live_server,
                                                             tmp_path: Path) -> None:
    config_file = tmp_path / "wallboard.yaml"
    config_file.write_text(orjson.dumps(_config(tmp_path)).decode())  # JSON is YAML
    before = hashlib.sha256(config_file.read_bytes()).hexdigest()
    live = await live_server(_config(tmp_path))
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        client = await Editor(live, session).start()
        status, body = await client.call("GET", "/api/editor/boards")
        assert body["boards"][0] == {"name": "ops", "title": "Ops", "read_only": True,
                                     "version": None, "tiles": 1}
        for method, path, payload in [
                ("PUT", "/api/editor/boards/ops", {"version": 0, "board": BOARD}),
                ("PUT", "/api/editor/boards/ops", {"version": 1, "board": BOARD}),
                ("POST", "/api/editor/boards/ops/rename", {"to": "ops2", "version": 0}),
                ("POST", "/api/editor/boards/ops/rollback", {"to": 1, "version": 0}),
                ("DELETE", "/api/editor/boards/ops?version=0", None)]:
            status, body = await client.call(method, path, payload)
            assert (status, body["reason"]) == (403, "read_only"), (method, path)
        # A copy goes to the store, the original stays where it is.
        status, body = await client.call("POST", "/api/editor/boards/ops/duplicate",
                                         {"to": "ops-copy"})
        assert (status, body["version"]) == (200, 1)
        assert (await _refused(live))["read_only"] == 5
    store = tmp_path / "data" / "boards.d"
    assert sorted(p.name for p in store.glob("*.yaml")) == ["ops-copy.yaml"]
    assert hashlib.sha256(config_file.read_bytes()).hexdigest() == before


async def test_the_second_saver_is_told_and_shown_a_diff(editor: Editor) -> None:
    await editor.call("PUT", "/api/editor/boards/floor", {"version": 0, "board": BOARD})
    mine = {**BOARD, "title": "Mine"}
    theirs = {**BOARD, "title": "Theirs"}
    path = "/api/editor/boards/floor"
    status, _ = await editor.call("PUT", path, {"version": 1, "board": theirs})
    assert status == 200
    status, body = await editor.call("PUT", path, {"version": 1, "board": mine})
    assert (status, body["current_version"]) == (409, 2)
    assert "-title: Theirs" in body["diff"] and "+title: Mine" in body["diff"]
    status, body = await editor.call("GET", "/api/editor/boards/floor")
    assert body["board"]["title"] == "Theirs"


async def test_rename_duplicate_delete_and_rollback(editor: Editor, tmp_path: Path) -> None:
    await editor.call("PUT", "/api/editor/boards/floor", {"version": 0, "board": BOARD})
    await editor.call("PUT", "/api/editor/boards/floor",
                      {"version": 1, "board": {**BOARD, "columns": 3}})
    status, body = await editor.call("POST", "/api/editor/boards/floor/rollback",
                                     {"to": 1, "version": 2})
    assert (status, body["version"]) == (200, 3)
    status, body = await editor.call("GET", "/api/editor/boards/floor")
    assert body["board"]["columns"] == 2
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    status, _ = await editor.call("POST", "/api/editor/boards/floor/rename",
                                  {"to": "Bad Name!", "version": 3})
    assert status == 400
    status, body = await editor.call("POST", "/api/editor/boards/floor/rename",
                                     {"to": "hall", "version": 3})
    assert (status, body["name"]) == (200, "hall")
    status, _ = await editor.call("POST", "/api/editor/boards/hall/duplicate", {"to": "hall"})
    assert status == 409
    status, _ = await editor.call("DELETE", "/api/editor/boards/hall?version=9")
    assert status == 409
    status, _ = await editor.call("DELETE", "/api/editor/boards/hall?version=1")
    assert status == 200
    assert list((tmp_path / "data" / "boards.d").glob("*.yaml")) == []
    status, _ = await editor.call("GET", "/api/editor/boards/hall")
    assert status == 404


async def _messages(ws: Any, until: Any, timeout: float = 15.0) -> dict[str, Any]:
    """Apply messages to a flat state until `until(state)` holds."""
    state: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = await ws.receive_json(timeout=deadline - time.monotonic())
        if msg["type"] == "snapshot":
            state = dict(msg["data"])
        else:
            state.update(msg["changes"])
            for key in msg["removed"]:
                state.pop(key, None)
        if until(state):
            return state
    raise AssertionError(f"not seen within {timeout} s")


async def test_a_save_reaches_the_tvs_socket_with_its_new_scope(editor: Editor) -> None:
    await editor.call("PUT", "/api/editor/boards/floor", {"version": 0, "board": BOARD})
    live = editor.live
    async with live.session.ws_connect(f"{live.ws_url}/ws?board=floor&token={TV}") as ws:
        state = await _messages(ws, lambda s: s.get("layouts.floor") == 1)
        assert not any(k.startswith("queues.chat.") for k in state)  # not on the board yet
        board = {**BOARD, "tiles": [*BOARD["tiles"], {"kpi": "waiting", "queue": "chat"}]}
        status, _ = await editor.call("PUT", "/api/editor/boards/floor",
                                      {"version": 1, "board": board})
        assert status == 200
        state = await _messages(ws, lambda s: s.get("layouts.floor") == 2
                                and "queues.chat.live.waiting" in s)
        assert "layouts.ops" not in state  # a TV sees its own board's revision only
        async with live.session.get(f"{live.url}/board/floor/layout?token={TV}") as resp:
            layout = await resp.json()
        assert (layout["layout"], len(layout["tiles"])) == (2, 3)
        # Deleted: its TVs are closed rather than left on a board that is gone.
        await editor.call("DELETE", "/api/editor/boards/floor?version=2")
        msg = await ws.receive(timeout=15)
        while msg.type.name == "TEXT":
            msg = await ws.receive(timeout=15)
        assert ws.close_code == 4404


async def test_a_tv_token_of_edited_boards_opens_them_only(editor: Editor) -> None:
    await editor.call("PUT", "/api/editor/boards/floor", {"version": 0, "board": BOARD})
    live = editor.live
    status, _ = await live.get_text(f"/board/floor?token={TV}")
    assert status == 200
    status, _ = await live.get_text(f"/board/ops?token={TV}")
    assert status == 403
    status, _ = await live.get_text(f"/board/floor?token={OPS_TV}")
    assert status == 403


async def test_the_default_board_is_read_only_and_can_be_copied(live_server,
                                                                tmp_path: Path) -> None:
    config = base_config(journal={"data_dir": str(tmp_path / "data")},
                         access={"admin_token": ADMIN})
    live = await live_server(config)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        admin = await Editor(live, session, ADMIN).start()
        status, body = await admin.call("GET", "/api/editor/boards/overview")
        assert (status, body["read_only"]) == (200, True)
        tiles = body["board"]["tiles"]
        # The site's eight tiles, then four per configured queue (sales, chat).
        assert len(tiles) == 8 + 4 * 2
        status, body = await admin.call("POST", "/api/editor/boards/overview/duplicate",
                                        {"to": "mine"})
        assert (status, body["saved_by"]) == (200, "admin")
        status, body = await admin.call("GET", "/api/editor/boards/mine")
        assert body["board"]["tiles"] == tiles


async def test_at_start_invalid_files_are_left_out_and_config_boards_win(
        live_server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from wallboard.config.settings import parse_settings
    from wallboard.config.store import BoardStore, board_from

    config = _config(tmp_path)
    settings = parse_settings(config, "<test>")
    store = BoardStore(tmp_path / "data" / "boards.d")
    store.write("floor", board_from(BOARD, settings), 4, "editor:sam")
    store.write("ops", board_from(BOARD, settings), 1, "editor:sam")  # the config's name
    store.write("broken", board_from(BOARD, settings), 1, "editor:sam")
    broken = store.path("broken").read_text().replace("window: 15m", "window: 2h")
    store.path("broken").write_text(broken)
    live = await live_server(config)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        client = await Editor(live, session).start()
        _, body = await client.call("GET", "/api/editor/boards")
    assert [(b["name"], b["read_only"], b["version"]) for b in body["boards"]] == [
        ("ops", True, None), ("floor", False, 4)]
    errors = [r.getMessage() for r in caplog.records if r.name == "wallboard.server.editor"]
    assert any("broken.yaml: board.tiles[1].window: '2h' is not a configured window" in e
               for e in errors), errors
    assert any("board 'ops' is also in the config file" in e for e in errors), errors
    status, _ = await live.get_text(f"/board/floor?token={TV}")
    assert status == 200
    status, _ = await live.get_text(f"/board/broken?token={TV}")
    assert status == 404


async def test_playlists_are_edited_beside_boards(editor: Editor, tmp_path: Path) -> None:
    await editor.call("PUT", "/api/editor/boards/floor", {"version": 0, "board": BOARD})
    path = "/api/editor/playlists/lobby"
    status, body = await editor.call("PUT", path, {"version": 0, "playlist": {
        "boards": ["floor", "nowhere"], "interval_s": 0.5}})
    assert status == 422
    problems = {p["path"]: p["message"] for p in body["problems"]}
    assert problems["boards[1]"] == "unknown board 'nowhere'; known: floor"
    assert "greater than or equal to 1" in problems["interval_s"]
    await editor.call("PUT", "/api/editor/boards/hall", {"version": 0, "board": BOARD})
    status, body = await editor.call("PUT", path, {"version": 0, "playlist": {
        "boards": ["floor", "hall"], "interval_s": 20}})
    assert (status, body["version"]) == (200, 1)
    stored = (tmp_path / "data" / "boards.d" / "playlists" / "lobby.yaml").read_text()
    assert "playlist:" in stored and "- floor" in stored
    live = editor.live
    async with live.session.get(f"{live.url}/play/lobby/config?token={TV}") as resp:
        config = await resp.json()
    assert (config["revision"], [f["board"] for f in config["frames"]]) == (1, ["floor", "hall"])
    # The board a playlist shows stays until the playlist lets it go.
    status, body = await editor.call("DELETE", "/api/editor/boards/floor?version=1")
    assert (status, body["reason"]) == (409, "in_use")
    # A second saver sees what changed meanwhile.
    await editor.call("PUT", path, {"version": 1, "playlist": {"boards": ["hall"]}})
    status, body = await editor.call("PUT", path, {"version": 1, "playlist": {
        "boards": ["floor"]}})
    assert (status, body["current_version"]) == (409, 2)
    assert "-- hall" in body["diff"] and "+- floor" in body["diff"]
    async with live.session.get(f"{live.url}/play/lobby/config?token={TV}") as resp:
        assert (await resp.json())["revision"] == 2
    status, _ = await editor.call("DELETE", "/api/editor/boards/floor?version=1")
    assert status == 200
    status, body = await editor.call("GET", "/api/editor/playlists")
    assert [p["name"] for p in body["playlists"]] == ["lobby"]
    status, body = await editor.call("POST", f"{path}/rollback", {"to": 1, "version": 2})
    assert status == 422  # version 1 shows a board that is gone now: named, not restored
    assert body["problems"][0]["path"] == "boards[0]"


async def test_with_access_on_a_stored_playlist_shows_stored_boards_only(editor: Editor) -> None:
    await editor.call("PUT", "/api/editor/boards/floor", {"version": 0, "board": BOARD})
    _, schema = await editor.call("GET", "/api/editor/schema")
    assert schema["boards"] == ["floor"]  # not ops: its TVs have their own tokens
    status, body = await editor.call("PUT", "/api/editor/playlists/lobby", {
        "version": 0, "playlist": {"boards": ["floor", "ops"]}})
    assert status == 422
    assert body["problems"] == [{"path": "boards[1]",
                                 "message": "unknown board 'ops'; known: floor"}]


async def test_agent_tiles_can_be_edited_with_the_teams_that_exist(editor: Editor) -> None:
    board = {"agents": "initials", "tiles": [
        {"type": "agent_grid", "team": "blue"}, {"type": "agent_table", "window": "1h"},
        {"type": "team_table"}]}
    status, body = await editor.call("PUT", "/api/editor/boards/people",
                                     {"version": 0, "board": board})
    assert status == 200, body
    status, body = await editor.call("PUT", "/api/editor/boards/people", {"version": 1, "board": {
        "tiles": [{"type": "team_table", "queue": "sales"}]}})
    assert status == 422
    assert "remove team, queue and queues" in body["problems"][0]["message"]
    _, schema = await editor.call("GET", "/api/editor/schema")
    assert {"agent_grid", "agent_table", "team_table"} <= set(schema["tile_types"])
    assert schema["teams"] == []  # no roster, no agent event yet
