"""The board editor in Debian's chromium against the real server (a subprocess).

A supervisor with an editor token builds a board by drag and drop and inspector choices,
publishes it, and a TV (a second browser context) redraws within about a second on the same
page and socket; the YAML written passes check-config; a rollback brings the old layout back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.serverproc import midday_zone
from tests.test_board_browser import Server, _free_port, launched

ADMIN = "admin-token-0123456789"
EDITOR = "editor-token-0123456789"
TV = "tv-edited-token-0123456789"
OPS_TV = "tv-ops-token-0123456789"
HOOK = "secret-token"
# Counts the sockets a page opens and marks the document: a reload loses the mark.
TV_INIT = """
window.__sockets = 0;
const Native = window.WebSocket;
window.WebSocket = function (url, protocols) {
  window.__sockets++;
  return new Native(url, protocols);
};
window.WebSocket.prototype = Native.prototype;
"""
JS_TILES = """() => [...document.querySelectorAll('#wb-grid .tile')].map(el => ({
  type: el.dataset.type, cols: el.dataset.cols, rows: el.dataset.rows, level: el.dataset.level,
  label: el.querySelector('.tile__label').textContent}))"""


def _config(data_dir: Path) -> dict[str, Any]:
    return {
        "site": {"name": "Edit site", "timezone": midday_zone(), "locale": "en"},
        "server": {"push_interval_ms": 100},
        "queues": {"sales": {"label": "Sales", "channel": "voice"},
                   "support": {"channel": "chat"}},
        "sources": {"hook": {"type": "webhook", "token": HOOK}},
        "journal": {"data_dir": str(data_dir), "retry_s": 0.5},
        "access": {"enabled": True, "admin_token": ADMIN, "editors": {"sam": [EDITOR]},
                   "edited_boards": [TV], "boards": {"ops": [OPS_TV]}},
        "boards": {"ops": {"title": "Ops", "tiles": [{"kpi": "waiting"}]}},
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    path = tmp_path / "wallboard.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path / "data")), encoding="utf-8")
    srv = Server(path, _free_port(), tmp_path / "server.log")
    srv.data_dir = tmp_path / "data"
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def _page(browser: Any, errors: list[str], init: str | None = None) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if init:
        page.add_init_script(init)
    return page


def _login(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/edit")
    page.fill("#ed-token", EDITOR)
    page.click("#ed-login button[type=submit]")
    page.wait_for_selector("[data-board='ops']", timeout=10_000)


def _drag(page: Any, source: str, target: str, *, where: float = 0.75) -> None:
    """Press on `source`, move in steps, release over `target` at `where` of its width."""
    a = page.locator(source).bounding_box()
    b = page.locator(target).bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] * where, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()


def _choose(page: Any, field: str, value: str) -> None:
    page.select_option(f"#ed-tile-fields [data-path$='].{field}']", value)


def _post(server: Server, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{server.url}/api/events", data=json.dumps(events).encode(), method="POST",
        headers={"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert json.load(resp)["rejected"] == []


def _queued(n: int) -> list[dict[str, Any]]:
    now = time.time()
    return [{"type": "contact.queued", "id": f"q{i}", "ts": now, "queue": "sales",
             "channel": "voice", "contact_id": f"c{i}"} for i in range(n)]


def _tv_shows(tv: Any, predicate: Callable[[list[dict[str, str]]], bool],
              timeout: float = 15.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    tiles: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        tiles = tv.evaluate(JS_TILES)
        if predicate(tiles):
            return tiles
        time.sleep(0.05)
    raise AssertionError(f"the TV did not update; it shows {tiles}")


def test_build_publish_update_and_roll_back_a_board(browser: Any, server: Server) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    _login(page, server)
    # The config's board: shown with a lock, nothing to save.
    page.click("[data-board='ops']")
    page.wait_for_selector("#ed-lock:not([hidden])")
    assert page.is_disabled("#ed-save")

    page.once("dialog", lambda dialog: dialog.accept("floor"))
    page.click("#ed-new")
    page.wait_for_function("document.querySelector('#ed-name').textContent === 'floor'")
    # Four tiles by drag and drop: onto the empty grid, after it, and one before the first.
    _drag(page, "#ed-palette [data-type='number']", "#ed-grid")
    _drag(page, "#ed-palette [data-type='ring']", ".etile[data-index='0']")
    _drag(page, "#ed-palette [data-type='sparkline']", ".etile[data-index='0']", where=0.2)
    _drag(page, "#ed-palette [data-type='clock']", ".etile[data-index='2']")
    types = page.eval_on_selector_all(".etile", "els => els.map(e => e.dataset.type)")
    assert types == ["sparkline", "number", "ring", "clock"]

    # Inspector choices: the number tile shows the sales queue's waiting contacts.
    page.click(".etile[data-index='1']")
    _choose(page, "kpi", "waiting")
    _choose(page, "queue", "sales")
    page.fill("#ed-tile-fields [data-path$='thresholds.warn']", "2")
    page.press("#ed-tile-fields [data-path$='thresholds.warn']", "Tab")
    page.fill("#ed-tile-fields [data-path$='thresholds.crit']", "5")
    page.press("#ed-tile-fields [data-path$='thresholds.crit']", "Tab")
    page.click(".etile[data-index='0']")
    _choose(page, "kpi", "answered")
    _choose(page, "window", "1h")
    page.click(".etile[data-index='2']")
    _choose(page, "queue", "sales")
    page.click("#ed-save")
    page.wait_for_function("document.querySelector('#ed-status').textContent.includes('1')")
    # The number is bidi-isolated (U+2068 … U+2069), as every placeholder of the catalogues.
    assert page.text_content("#ed-status") == "Published version \u20681\u2069"

    written = server.data_dir / "boards.d" / "floor.yaml"
    stored = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert stored["version"] == 1 and stored["saved_by"] == "editor:sam"
    tiles = stored["board"]["tiles"]
    assert [t.get("type", "number") for t in tiles] == ["sparkline", "number", "ring", "clock"]
    assert tiles[1]["thresholds"] == {"warn": 2, "crit": 5}
    assert (tiles[1]["kpi"], tiles[1]["queue"], tiles[0]["window"]) == ("waiting", "sales", "1h")
    check = subprocess.run([sys.executable, "-m", "wallboard", "check-config",
                            str(server.config), "--boards", str(written.parent)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "1 in" in check.stdout

    # A TV shows the board; three waiting are amber against the new thresholds.
    tv = _page(browser, errors, TV_INIT)
    tv.goto(f"{server.url}/board/floor?token={TV}")
    tv.wait_for_function("window.wallboard && window.wallboard.connected", timeout=10_000)
    tv.evaluate("window.__mark = 'same page'")
    _post(server, _queued(3))
    first = _tv_shows(tv, lambda ts: len(ts) == 4 and ts[1]["level"] == "warn")
    assert [t["type"] for t in first] == ["sparkline", "number", "ring", "clock"]

    # Edit: red at 3, set on the slider against the live preview (3 waiting: amber, then red
    # before anything is saved), the number tile two columns wide (its corner handle), the
    # clock moved first.
    page.click(".etile[data-index='1']")
    page.wait_for_function("document.querySelector('.ed-preview').textContent === '3'",
                           timeout=15_000)
    assert page.get_attribute(".ed-preview", "data-level") == "warn"
    page.focus(".ed-range--crit")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute(".ed-preview", "data-level") == "crit"
    crit = "#ed-tile-fields input[type=number][data-path$='thresholds.crit']"
    assert page.input_value(crit) == "3"
    handle = page.locator(".etile[data-index='1'] .etile__resize").bounding_box()
    cell = page.locator(".etile[data-index='1']").bounding_box()["width"]
    page.mouse.move(handle["x"] + 4, handle["y"] + 4)
    page.mouse.down()
    page.mouse.move(handle["x"] + 4 + cell, handle["y"] + 4, steps=6)
    page.mouse.up()
    # The keyboard: arrows go from tile to tile, Ctrl+arrows carry the selected one along.
    page.focus(".etile[data-index='1']")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.type") == "clock"
    for _ in range(3):
        page.keyboard.press("Control+ArrowLeft")
    types = page.eval_on_selector_all(".etile", "els => els.map(e => e.dataset.type)")
    assert types == ["clock", "sparkline", "number", "ring"]
    saved_at = time.perf_counter()
    page.click("#ed-save")
    second = _tv_shows(tv, lambda ts: bool(ts) and ts[0]["type"] == "clock"
                       and ts[2]["level"] == "crit")
    print(f"\nsave clicked -> TV redrawn in {(time.perf_counter() - saved_at) * 1000:.0f} ms "
          "(polled every 50 ms by the test)")
    assert "Published version \u20682\u2069" in page.text_content("#ed-status")
    assert second[2]["cols"] == "2"
    assert tv.evaluate("window.__mark") == "same page", "the TV reloaded"
    assert tv.evaluate("window.__sockets") == 1, "the TV opened another socket"

    # Roll back to version 1: the TV shows the first layout again, still on the same page.
    page.select_option("#ed-versions", "1")
    page.click("#ed-rollback")
    page.wait_for_function("document.querySelector('#ed-status').textContent.includes('back')")
    again = _tv_shows(tv, lambda ts: bool(ts) and ts[0]["type"] == "sparkline")
    assert again == _tv_shows(tv, lambda ts: ts[1]["level"] == "warn")
    assert [(t["type"], t["cols"]) for t in again] == [(t["type"], t["cols"]) for t in first]
    assert tv.evaluate("window.__mark") == "same page"
    assert tv.evaluate("window.__sockets") == 1
    assert yaml.safe_load(written.read_text(encoding="utf-8"))["version"] == 3
    assert errors == []


def test_the_inspector_offers_exactly_the_schemas_choices(browser: Any, server: Server) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    _login(page, server)
    request = urllib.request.Request(f"{server.url}/api/editor/schema",
                                     headers={"Authorization": f"Bearer {EDITOR}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        schema = json.load(resp)
    page.once("dialog", lambda dialog: dialog.accept("probe"))
    page.click("#ed-new")
    palette = page.eval_on_selector_all("#ed-palette [data-type]",
                                        "els => els.map(e => e.dataset.type)")
    assert palette == schema["tile_types"]
    page.click("#ed-palette [data-type='number']")
    assert page.locator(".etile").count() == 1
    page.focus("#ed-palette [data-type='clock']")
    page.keyboard.press("Enter")  # the keyboard adds tiles too
    assert page.eval_on_selector_all(".etile", "els => els.map(e => e.dataset.type)") == [
        "number", "clock"]

    def options(field: str) -> list[str]:
        return page.eval_on_selector_all(
            f"#ed-tile-fields [data-path$='].{field}'] option", "os => os.map(o => o.value)")

    page.click(".etile[data-index='0']")
    for tile_type in schema["tile_types"]:
        _choose(page, "type", tile_type)
        assert options("type") == schema["tile_types"]
        kpis = schema["kpis"][tile_type]
        assert options("kpi") == kpis, tile_type
        if tile_type in ("clock", "announcements", "team_table"):  # every team: no queue
            assert options("queue") == []
            if tile_type == "team_table":
                assert options("window") == schema["windows"]
            continue
        if tile_type in ("agent_grid", "agent_table"):
            assert options("team") == ["", *schema["teams"]]
            assert options("channel") == []
            assert options("window") == ([] if tile_type == "agent_grid" else schema["windows"])
        queues = [q for q, v in schema["queues"].items()
                  if tile_type != "legal" or v["legal_rules"]]
        site = [] if tile_type in ("legal", "staffing") else [""]
        assert options("queue") == [*site, *queues], tile_type
        for kpi in kpis[:3] if tile_type != "number" else ["waiting", "answered"]:
            _choose(page, "kpi", kpi)
            live = kpi in schema["live_kpis"] and tile_type != "queue_table"
            expected = ["live"] if live else schema["windows"]
            assert options("window") == expected, (tile_type, kpi)
    assert schema["windows"] == ["15m", "1h", "today"]
    assert schema["queues"].keys() == {"sales", "support"}

    # What the lists cannot prevent (a typed value) is refused by the server and shown beside
    # its field with check-config's message; nothing is written.
    _choose(page, "type", "clock")
    page.fill("[data-path='alert.quiet_hours']", "25:00-26:00")
    page.press("[data-path='alert.quiet_hours']", "Tab")
    page.click("#ed-save")
    page.wait_for_selector(".ed-field--error [data-path='alert.quiet_hours']")
    beside = page.text_content(".ed-field--error .ed-field__error")
    assert beside == "'25:00-26:00' is not a HH:MM-HH:MM range"
    assert page.get_attribute("[data-path='alert.quiet_hours']", "aria-invalid") == "true"
    assert not (server.data_dir / "boards.d" / "probe.yaml").exists()
    assert errors == []


@pytest.mark.parametrize(("lang", "direction", "save"), [
    ("he", "rtl", "שמירה ופרסום"), ("ar", "rtl", "حفظ ونشر"), ("en", "ltr", "Save and publish")])
def test_the_editor_in_each_language_fits_1280x720(browser: Any, server: Server, lang: str,
                                                   direction: str, save: str) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(f"{server.url}/edit?lang={lang}")
    page.fill("#ed-token", EDITOR)
    page.click("#ed-login button[type=submit]")
    page.wait_for_selector("[data-board='ops']", timeout=10_000)
    page.click("[data-board='ops']")
    page.wait_for_selector(".etile")
    assert page.evaluate("document.documentElement.dir") == direction
    assert page.text_content("#ed-save").strip() == save
    # The page itself never scrolls at 1280×720: each pane scrolls on its own.
    size = page.evaluate("[document.documentElement.scrollWidth, "
                         "document.documentElement.scrollHeight]")
    assert size == [1280, 720]
    # The list is at the start of the line: the right edge in RTL, the left in LTR.
    box = page.locator(".ed-list").bounding_box()
    assert (box["x"] > 640) == (direction == "rtl")
    assert errors == []


def _api(server: Server, method: str, path: str, body: Any, csrf: str) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {EDITOR}", "X-CSRF-Token": csrf,
                 "Cookie": f"wb_csrf={csrf}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


def test_a_playlist_edited_in_the_browser_reaches_its_tv_without_reload(
        browser: Any, server: Server) -> None:
    csrf = "csrf-token-for-the-test"
    for name in ("floor", "hall"):
        _api(server, "PUT", f"/api/editor/boards/{name}", {"version": 0, "board": {
            "title": name.title(), "tiles": [{"kpi": "waiting"}]}}, csrf)
    errors: list[str] = []
    page = _page(browser, errors)
    _login(page, server)
    page.once("dialog", lambda dialog: dialog.accept("lobby"))
    page.click("#ed-new-playlist")
    page.wait_for_selector("#ed-playlist:not([hidden])")
    assert page.is_hidden("#ed-grid")
    page.select_option("#ed-add-board", "floor")
    page.click("#ed-add-board-button")
    page.click("#ed-save")
    page.wait_for_function("document.querySelector('#ed-status').textContent.includes('1')")

    tv = _page(browser, errors)
    tv.goto(f"{server.url}/play/lobby?token={TV}")
    frame = tv.frame_locator(".play__frame[data-board='floor']")
    frame.locator(".tile").first.wait_for(timeout=10_000)
    tv.evaluate("window.__mark = 'same page'")
    tv.eval_on_selector(".play__frame[data-board='floor']",
                        "f => { f.contentWindow.__mark = 'same frame'; }")

    # Add hall, move it first, shorter turns; publish.
    page.select_option("#ed-add-board", "hall")
    page.click("#ed-add-board-button")
    page.click("#ed-playlist li[data-board='hall'] button[aria-label='Move up']")
    page.fill("#ed-f-interval", "5")
    page.press("#ed-f-interval", "Tab")
    page.click("#ed-save")
    page.wait_for_function("document.querySelector('#ed-status').textContent.includes('2')")
    stored = yaml.safe_load((server.data_dir / "boards.d" / "playlists" / "lobby.yaml")
                            .read_text(encoding="utf-8"))
    assert stored["playlist"] == {"boards": ["hall", "floor"], "interval_s": 5.0}

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and tv.evaluate("window.wallboardPlay.revision") != 2:
        time.sleep(0.05)
    assert tv.evaluate("window.wallboardPlay.revision") == 2
    boards = tv.eval_on_selector_all(".play__frame", "fs => fs.map(f => f.dataset.board)")
    assert sorted(boards) == ["floor", "hall"]
    assert tv.evaluate("window.__mark") == "same page", "the TV reloaded"
    assert tv.eval_on_selector(".play__frame[data-board='floor']",
                               "f => f.contentWindow.__mark") == "same frame"
    # The rotation follows the new order: hall shows, then floor, every 5 s.
    tv.wait_for_function("window.wallboardPlay.shown === 'hall'", timeout=15_000)
    assert errors == []
