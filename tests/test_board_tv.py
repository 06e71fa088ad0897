"""Acceptance of the TV board in Debian's chromium: tile types, languages, alerts, playlists,
reload on upgrade, trends, staleness and fit. The real server runs in a subprocess.

Skipped when the browser or playwright is missing, except when CI == "true" (then it fails).
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_board_browser import Server, _free_port, launched, recording_page

TOKEN = "secret-token"
ADMIN = "admin-token-for-the-tests"
HOSTILE = "<img src=x onerror=alert(1)>"
ALL_TILES: list[dict[str, Any]] = [
    {"kpi": "waiting", "thresholds": {"warn": 2, "crit": 3}},
    {"type": "ring", "queue": "sales", "window": "15m",
     "thresholds": {"direction": "low_bad", "warn": 0.8, "crit": 0.6}},
    {"type": "sparkline", "kpi": "waiting"},
    {"type": "queue_table", "window": "15m", "rows": 2},
    {"type": "agents"},
    {"type": "legal", "queue": "sales"},
    {"type": "staffing", "queue": "sales"},
    {"type": "tickets"},
    {"type": "survey", "kpi": "csat", "window": "15m"},
    {"type": "announcements", "cols": 2},
    {"type": "clock"},
]
WAITING_RED = [{"kpi": "waiting", "thresholds": {"warn": 2, "crit": 3}}]


def config(data_dir: Path, site: str, sales: str, support: str, quiet: str) -> dict[str, Any]:
    """A site with two queues, a webhook, and one board per behaviour under test."""
    return {
        "site": {"name": site, "timezone": "UTC", "locale": "en", "min_survey_sample": 1},
        "windows": ["10s", "15m", "today"],
        "server": {"push_interval_ms": 100, "history_step_s": 0.5},
        "queues": {
            "sales": {"label": sales, "legal_rules": [
                {"name": "six_minutes", "limit_s": 360, "warn_s": 300}]},
            "support": {"label": support},
        },
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        "journal": {"data_dir": str(data_dir)},
        "playlists": {"p": {"boards": ["a", "b"], "interval_s": 1}},
        "access": {"admin_token": ADMIN},
        "boards": {
            "all": {"columns": 4, "tiles": ALL_TILES},
            "he": {"locale": "he", "columns": 4, "tiles": ALL_TILES},
            "ar": {"locale": "ar", "columns": 4, "tiles": ALL_TILES},
            "muted": {"alert": {"mute": True}, "tiles": WAITING_RED},
            "quiet": {"alert": {"quiet_hours": quiet}, "tiles": WAITING_RED},
            "spoken": {"alert": {"sound": "speech"}, "tiles": WAITING_RED},
            "fresh": {"stale_after_s": 2, "tiles": [{"kpi": "waiting", "queue": "sales"}]},
            "a": {"title": "Board A", "tiles": [{"kpi": "waiting"}]},
            "b": {"title": "Board B", "tiles": [{"kpi": "answered"}]},
        },
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium allowed to play sound without a click, as a kiosk TV is set up."""
    with launched("--autoplay-policy=no-user-gesture-required") as browser:
        yield browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(site: str = "Test site", sales: str = "Sales", support: str = "Support",
              access: dict[str, Any] | None = None) -> Server:
        now = datetime.now(UTC)
        quiet = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
        path = tmp_path / "wallboard.yaml"
        data = config(tmp_path / "data", site, sales, support, quiet)
        data["access"].update(access or {})
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        srv = Server(path, _free_port(), tmp_path / f"server-{len(started)}.log")
        started.append(srv)
        srv.start()
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with recording_page(browser, 1920, 1080) as page:
        yield page


_ids = iter(range(1, 1_000_000))


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "id": f"tv{next(_ids)}", "ts": time.time(), **fields}


def post(srv: Server, events: list[dict[str, Any]]) -> None:
    srv.post_events(events)


def announce(srv: Server, text: str, ttl_s: float = 60, boards: list[str] | None = None) -> None:
    body: dict[str, Any] = {"text": text, "ttl_s": ttl_s}
    if boards is not None:
        body["boards"] = boards
    request = urllib.request.Request(
        f"{srv.url}/api/announcements", method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 201


def snapshot(srv: Server) -> dict[str, Any]:
    """/api/snapshot, with the admin token (needed when access is on)."""
    request = urllib.request.Request(f"{srv.url}/api/snapshot",
                                     headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


def open_board(page: Any, srv: Server, board: str, token: str | None = None) -> None:
    page.goto(f"{srv.url}/board/{board}" + (f"?token={token}" if token else ""))
    page.wait_for_function("window.wallboard && window.wallboard.connected", timeout=10_000)


def tile(page: Any, index: int, selector: str = "") -> Any:
    return page.locator(f"[data-tile='t{index}'] {selector}".strip())


def seconds(text: str) -> int:
    minutes, secs = text.lstrip("+").split(":")
    return int(minutes) * 60 + int(secs)


def busy_floor(srv: Server) -> None:
    """Two callers waiting in sales (one for 100 s), one in support, agents, tickets, surveys."""
    now = time.time()
    post(srv, [
        event("contact.queued", queue="sales", contact_id="s1", ts=now - 100),
        event("contact.queued", queue="sales", contact_id="s2", ts=now - 5),
        event("contact.queued", queue="support", contact_id="u1", ts=now - 40),
        event("contact.queued", queue="sales", contact_id="s3", ts=now - 30),
        event("contact.answered", queue="sales", contact_id="s3", wait_s=30, agent="bob"),
        event("contact.ended", queue="sales", contact_id="s3", agent="bob", talk_s=240,
              wrap_s=20),
        *[event("agent.state", agent=f"ag{i}", state=state, queues=["sales"])
          for i, state in enumerate(["available", "available", "busy", "wrapup", "away"])],
        event("ticket.created", queue="support", channel="email", contact_id="T1",
              due_ts=now - 10),
        event("ticket.created", queue="support", channel="email", contact_id="T2",
              due_ts=now + 300),
        event("ticket.created", queue="support", channel="email", contact_id="T3",
              due_ts=now + 7200),
        *[event("survey.response", queue="sales", kind="csat", score=score)
          for score in (5, 4, 2)],
    ])


@pytest.mark.parametrize("access", [False, True], ids=["open", "tv-token"])
def test_every_tile_type_shows_the_servers_numbers(page: Any, server, access: bool) -> None:
    # With access on, the TV's socket carries only its board's keys: every tile still works.
    tv = "tv-token-for-the-all-board"
    srv = server(access={"enabled": True, "boards": {"all": [tv]}}) if access else server()
    busy_floor(srv)
    announce(srv, HOSTILE)
    open_board(page, srv, "all", tv if access else None)
    page.wait_for_function("window.wallboard.state['total.live.waiting'] === 3")
    page.wait_for_timeout(300)
    snap = snapshot(srv)
    sales, total = snap["queues"]["sales"], snap["total"]
    # Big number.
    assert tile(page, 0, ".tile__num").text_content() == "3"
    # Ring: one answered after 30 s against a 20 s threshold → 0 %, arc empty, marker at 80 %.
    assert sales["15m"]["service_level"] == 0
    assert tile(page, 1, ".ring__arc").get_attribute("stroke-dasharray") == "0.0 100"
    assert tile(page, 1, ".ring__target").get_attribute("transform") == "rotate(288.0 50 50)"
    # Queue table: the longest wait first (sales: 100 s), then support (40 s).
    rows = tile(page, 3, "tbody tr").all_text_contents()
    assert [r[:5] for r in rows] == ["Sales", "Suppo"]
    assert tile(page, 3, "tbody tr:first-child td:nth-child(2)").text_content() == "2"
    oldest = tile(page, 3, "tbody tr:first-child td:nth-child(3)").text_content()
    assert 99 <= seconds(oldest) <= 104
    # Agent bar: the counts the server has, segments sized by them.
    stats = tile(page, 4, ".stat__num").all_text_contents()
    assert stats == [str(total["live"][f"agents_{s}"]) for s in
                     ("available", "busy", "wrapup", "away")] == ["2", "1", "1", "1"]
    # Legal wait: six minutes from the start of the oldest call (100 s ago) → about 4:20 left.
    left = seconds(tile(page, 5, ".tile__num").text_content())
    assert 360 - 105 <= left <= 360 - 99
    # Staffing: the forecast's need, and the agents it counts as staffed (available+busy+wrapup).
    need, staffed = tile(page, 6, ".stat__num").all_text_contents()
    assert isinstance(sales["live"]["agents_needed"], int)
    assert need == str(sales["live"]["agents_needed"]) and staffed == "4"
    # Ticket SLA: T1 is past due, T2 due within the 15-minute risk horizon, T3 neither.
    assert tile(page, 7, ".stat__num").all_text_contents() == ["1", "1"]
    # CSAT with its n: 2 of 3 in the top two boxes.
    assert tile(page, 8, ".tile__num").text_content() == "66.7%"
    assert tile(page, 8, ".tile__sub").text_content() == "n = \u20683\u2069"
    # Announcement as text, never as markup.
    assert tile(page, 9, ".ticker").text_content() == HOSTILE
    assert page.evaluate("document.querySelectorAll('img').length") == 0 and page.dialogs == []
    # The agents' names reach the TV only when access is off (then the API is public too).
    names = page.evaluate("Object.keys(window.wallboard.state).some(k => k.startsWith('agents.'))")
    assert names is (not access)
    # Clock in the site's zone (UTC).
    shown = tile(page, 10, ".tile__num").text_content()
    expected = {f"{datetime.now(UTC) + timedelta(seconds=d):%I:%M %p}" for d in (-60, 0, 60)}
    assert shown in expected


@pytest.mark.parametrize("board", ["he", "ar"])
def test_rtl_board_mirrors_and_translates_every_label(page: Any, server, board: str) -> None:
    srv = server(site="מוקד", sales="مبيعات", support="תמיכה")
    busy_floor(srv)
    open_board(page, srv, board)
    page.wait_for_function("window.wallboard.state['total.live.waiting'] === 3")
    assert page.evaluate("[document.documentElement.dir, document.documentElement.lang]") == [
        "rtl", board]
    assert page.evaluate("getComputedStyle(document.querySelector('#wb-grid')).direction") == "rtl"
    first = tile(page, 0).bounding_box()
    second = tile(page, 1).bounding_box()
    assert first["y"] == second["y"] and first["x"] > second["x"]  # the first tile on the right
    text = page.evaluate("document.querySelector('#wb-grid').innerText")
    english = {m for m in re.findall(r"[A-Za-z]{2,}", text)} - {"SLA"}
    assert english == set(), f"untranslated on the {board} board: {english}"
    # Numbers and times come from Intl for the locale, e.g. the percentage sign's placement.
    csat = tile(page, 8, ".tile__num").text_content()
    assert csat == page.evaluate(
        f"new Intl.NumberFormat('{board}', {{style: 'percent', maximumFractionDigits: 1}})"
        ".format(2 / 3)")
    # ...and the page formats with the board's locale, not the browser's (which is English):
    assert page.evaluate("window.WB.i18n.locale") == board
    if board == "ar":  # where the two differ, the board's form is the one shown
        assert csat != page.evaluate(
            "new Intl.NumberFormat('en', {style: 'percent', maximumFractionDigits: 1})"
            ".format(2 / 3)")


def test_a_red_tile_reaches_the_alert_hook_with_the_boards_sound_policy(browser: Any,
                                                                        server) -> None:
    srv = server()
    pages = {}
    for board in ("all", "muted", "quiet", "spoken"):
        context = browser.new_context()
        pages[board] = p = context.new_page()
        p.add_init_script("window.__alerts = [];"
                          "addEventListener('wallboard:alert', e => __alerts.push(e.detail));")
        open_board(p, srv, board)
    post(srv, [event("contact.queued", queue="sales", contact_id=f"c{i}") for i in range(3)])
    outcomes = {}
    for board, p in pages.items():
        p.wait_for_function("window.__alerts.length > 0", timeout=3000)
        alert = p.evaluate("window.__alerts[0]")
        assert (alert["tile"], alert["level"], alert["value"]) == ("t0", "crit", 3)
        assert p.locator("[data-tile='t0']").get_attribute("data-level") == "crit"
        outcomes[board] = alert["outcome"]
        p.context.close()
    # The chime was generated by Web Audio (running: the kiosk allows autoplay); the speech
    # board handed "<label>: red" to speechSynthesis.
    assert outcomes == {"all": "running", "muted": "muted", "quiet": "quiet", "spoken": "spoken"}


def test_playlist_rotates_between_two_boards(page: Any, server) -> None:
    srv = server()
    page.goto(f"{srv.url}/")
    assert "/play/p" in page.eval_on_selector_all("a", "links => links.map(a => a.pathname)")
    page.goto(f"{srv.url}/play/p")
    seen = []
    for _ in range(3):
        shown = page.evaluate("window.wallboardPlay.shown")
        seen.append(shown)
        visible = page.evaluate(
            "[...document.querySelectorAll('.play__frame')].filter(f => !f.hidden)"
            ".map(f => f.dataset.board)")
        assert visible == [shown]
        page.wait_for_function(f"window.wallboardPlay.shown !== '{shown}'", timeout=5000)
    assert seen in (["a", "b", "a"], ["b", "a", "b"])
    frames = {f.name or f.url: f for f in page.frames}
    for frame in frames.values():
        if "/board/" in frame.url:
            frame.wait_for_function("window.wallboard && window.wallboard.connected")
            assert frame.evaluate("document.title").startswith("Board ")


def test_the_page_reloads_when_the_server_runs_a_new_build(page: Any, server,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLBOARD_BUILD", "build-one")
    srv = server()
    open_board(page, srv, "a")
    origin = page.evaluate("performance.timeOrigin")
    assert page.evaluate("window.WB.config.build") == "build-one"
    srv.stop()
    monkeypatch.setenv("WALLBOARD_BUILD", "build-two")
    srv.start()
    page.wait_for_function(f"performance.timeOrigin !== {origin}", timeout=40_000)
    page.wait_for_function("window.wallboard && window.wallboard.connected", timeout=10_000)
    assert page.evaluate("window.WB.config.build") == "build-two"


def test_trend_arrow_and_sparkline_come_from_the_servers_history(page: Any, server) -> None:
    srv = server()
    post(srv, [event("contact.queued", queue="sales", contact_id=f"c{i}") for i in range(2)])
    open_board(page, srv, "all")
    # Live values are compared with the shortest rolling window before now (10 s here).
    time.sleep(11)
    post(srv, [event("contact.queued", queue="sales", contact_id="c9")])
    page.wait_for_function("window.wallboard.state['total.live.waiting'] === 3")
    trend = tile(page, 0, ".tile__trend")
    page.wait_for_function(
        "document.querySelector(\"[data-tile='t0'] .tile__trend\").textContent.includes('2')")
    assert trend.text_content() == "\u25b2 up from \u20682\u2069"
    assert trend.get_attribute("data-sense") == "bad"  # more waiting is worse
    series = page.evaluate("window.wallboard.state['series.total.live.waiting']")
    assert len(series) == 60 and series[-1] == 3
    sampled = [v for v in series if v is not None]
    # The hub builds at least once a second, so 11 s give about 11 samples (0 before the post).
    assert len(sampled) >= 8 and {2, 3} <= set(sampled) <= {0, 2, 3}
    points = tile(page, 2, ".spark__line").get_attribute("points").split()
    assert len(points) == len(sampled)


def test_a_tile_whose_data_is_older_than_the_boards_limit_is_badged(page: Any, server) -> None:
    srv = server()
    post(srv, [event("contact.queued", queue="sales", contact_id="c1")])
    open_board(page, srv, "fresh")
    page.wait_for_selector("[data-tile='t0'].tile--stale", timeout=6000)
    badge = re.sub("[\u2068\u2069]", "", tile(page, 0, ".tile__stale").text_content())
    assert re.fullmatch(r"\u26a0 hook: no data 0:0[2-5]", badge), badge
    post(srv, [event("contact.queued", queue="sales", contact_id="c2")])
    page.wait_for_selector("[data-tile='t0']:not(.tile--stale)", timeout=3000)


JS_OVERFLOW = """() => {
  const bad = [];
  const sel = '.tile, .tile__value, .tile__label, .tile__foot, .stat, .qtable, .ticker, .tile__sub';
  for (const el of document.querySelectorAll(sel)) {
    const box = el.closest('.tile__value') || el;
    if (el.scrollWidth > el.clientWidth + 1 || (el.matches('.tile, .tile__value')
        && el.scrollHeight > el.clientHeight + 1)) {
      bad.push(`${el.className} ${el.scrollWidth}x${el.scrollHeight}`
        + ` > ${el.clientWidth}x${el.clientHeight}`);
    }
    const r = el.getBoundingClientRect(), b = box.closest('.tile').getBoundingClientRect();
    if (r.right > b.right + 1 || r.left < b.left - 1 || r.bottom > b.bottom + 1) {
      bad.push(`${el.className} outside its tile`);
    }
  }
  const d = document.documentElement;
  return {bad, scrolls: d.scrollWidth > d.clientWidth || d.scrollHeight > d.clientHeight};
}"""


@pytest.mark.parametrize("board", ["all", "ar"])
def test_every_tile_type_fits_at_720p_and_4k(page: Any, server, board: str) -> None:
    srv = server(sales="Premium customer support and sales, Tel Aviv")
    busy_floor(srv)
    announce(srv, "Fire drill at 15:00: leave by the east stairs, supervisors count their teams")
    for width, height in [(1280, 720), (3840, 2160)]:
        page.set_viewport_size({"width": width, "height": height})
        open_board(page, srv, board)
        page.wait_for_function("window.wallboard.state['total.live.waiting'] === 3")
        page.wait_for_timeout(400)
        result = page.evaluate(JS_OVERFLOW)
        assert result["bad"] == [] and not result["scrolls"], f"{width}x{height}: {result}"
    # The probe does see an overflow: numbers forced too big for their tiles are reported.
    page.add_style_tag(content=".tile__num, .stat__num { font-size: 60vmin !important; }")
    assert page.evaluate(JS_OVERFLOW)["bad"]


def test_pixel_shift_walks_the_page_a_few_pixels_without_scrollbars(page: Any, server) -> None:
    srv = server()
    page.set_viewport_size({"width": 1280, "height": 720})
    open_board(page, srv, "all")
    positions = set()
    for minute in range(1, 10):
        # The shift steps once a minute; the test hands the page a later clock instead of waiting.
        page.evaluate(f"window.WB.kiosk.pixelShift(Date.now() + {minute} * 61000)")
        box = tile(page, 0).bounding_box()
        positions.add((round(box["x"]), round(box["y"])))
        scrolls = page.evaluate("document.documentElement.scrollWidth > innerWidth"
                                " || document.documentElement.scrollHeight > innerHeight")
        assert not scrolls
    xs = sorted({x for x, _ in positions})
    ys = sorted({y for _, y in positions})
    # Three columns and three rows of positions, 3 px apart (the default pixel_shift_px).
    assert len(positions) == 9
    assert [b - a for a, b in itertools.pairwise(xs)] == [3, 3]
    assert [b - a for a, b in itertools.pairwise(ys)] == [3, 3]


def test_a_tv_whose_token_is_removed_from_the_config_says_access_was_revoked(
        page: Any, server) -> None:
    tv = "tv-token-for-board-a-0001"
    srv = server(access={"enabled": True, "boards": {"a": [tv]}})
    page.goto(f"{srv.url}/board/a?token={tv}")
    page.wait_for_function("window.wallboard && window.wallboard.connected", timeout=10_000)
    data = yaml.safe_load(srv.config.read_text(encoding="utf-8"))
    data["access"]["boards"]["a"] = ["another-token-0000001"]
    srv.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    page.wait_for_selector("#wb-overlay", state="visible", timeout=10_000)
    assert page.text_content("#wb-overlay-title") == "Access to this board was revoked"
    # Its reconnect attempts are refused and counted.
    page.wait_for_timeout(1500)
    with urllib.request.urlopen(f"{srv.url}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    refused = re.search(r'wallboard_http_rejected_total\{code="403",endpoint="ws"\} (\S+)',
                        metrics)
    assert refused and float(refused.group(1)) >= 1


@pytest.mark.parametrize("access", [False, True], ids=["open", "tv-token"])
def test_an_announcement_for_one_board_shows_there_only(page: Any, server, access: bool) -> None:
    """Board `all` shows its own announcement; board `he` neither shows nor receives it."""
    tokens = {"all": "tv-token-for-the-all-board", "he": "tv-token-for-the-he-board"}
    srv = (server(access={"enabled": True, "boards": {b: [t] for b, t in tokens.items()}})
           if access else server())
    announce(srv, "Only for the all board", boards=["all"])
    ticker = len(ALL_TILES) - 2  # the announcements tile
    open_board(page, srv, "all", tokens["all"] if access else None)
    tile(page, ticker, ".ticker").filter(has_text="Only for the all board").wait_for()
    open_board(page, srv, "he", tokens["he"] if access else None)
    page.wait_for_timeout(500)  # a few pushes
    assert "Only for the all board" not in tile(page, ticker).text_content()
    assert "tile__value--empty" in (tile(page, ticker, ".tile__value").get_attribute("class")
                                    or "")
    received = json.dumps(page.evaluate("window.wallboard.state"))
    assert ("Only for the all board" in received) is not access  # scoped: never sent at all
