"""Real-browser smoke test of the TV board: the real server in a subprocess, Debian's chromium.

Skipped when the browser or the playwright package is missing, except when CI == "true",
where a missing browser is a failure. Playwright never downloads a browser here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("WALLBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]
TOKEN = "secret-token"
HOSTILE = "<img src=x onerror=alert(1)>"

CONFIG = """\
site: {name: Test site, timezone: UTC, locale: %(locale)s}
server: {push_interval_ms: 100}
queues:
  sales: {label: "<img src=x onerror=alert(1)>", channel: voice}
  email: {label: Email, channel: email, service_level: {threshold_s: 3600}}
sources:
  hook: {type: webhook, token: secret-token%(stale)s}
journal: {data_dir: "%(data_dir)s", retry_s: 0.5}
boards:
  main:
    title: Main
    columns: 2
    tiles:
      - {kpi: waiting, queue: sales, thresholds: {direction: high_bad, warn: 2, crit: 3}}
      - kpi: service_level
        queue: sales
        window: today
        thresholds: {direction: low_bad, warn: 0.8, crit: 0.6}
  dense:
    title: A rather long board title for a crowded screen
    columns: 4
    tiles:
      - kpi: waiting
        queue: sales
        label: "Contacts waiting in the premium support queue right now"
      - {kpi: oldest_wait_s, queue: sales, thresholds: {warn: 60, crit: 120}}
      - {kpi: service_level, queue: sales, window: 15m}
      - {kpi: abandon_rate, queue: sales, window: 1h}
      - {kpi: answered, channel: voice, window: today}
      - {kpi: asa_s, window: today}
      - {kpi: csat, window: today}
      - {kpi: nps, window: today}
      - {kpi: agents_available, queue: sales}
      - {kpi: offered, window: today}
      - {kpi: aht_s, window: 1h}
      - {kpi: tickets_open}
  waits:
    title: Waits judged per queue
    columns: 3
    tiles:
      - {kpi: oldest_wait_s}
      - {kpi: oldest_wait_s, channel: email}
      - {kpi: oldest_wait_s, queue: sales}
      - {type: queue_table, window: today, thresholds: {}}
      - {type: survey, kpi: csat, window: today}
"""

# In-page probes, kept here so the tests read as prose.
JS_TILE_TEXT = "id => document.querySelector(`[data-tile='${id}'] .tile__num`).textContent"
JS_LEVEL = "id => document.querySelector(`[data-tile='${id}']`).dataset.level"
JS_OVERFLOW = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('.tile, .tile__value, .tile__label, .tile__foot')) {
    if (el.scrollWidth > el.clientWidth) {
      bad.push(`${el.className} "${el.textContent.trim()}" ${el.scrollWidth}>${el.clientWidth}`);
    }
  }
  const d = document.documentElement;
  const b = document.body;
  return {
    bad,
    docScrolls: d.scrollWidth > d.clientWidth || d.scrollHeight > d.clientHeight
      || b.scrollWidth > b.clientWidth || b.scrollHeight > b.clientHeight,
    // Smallest value font relative to its tile height: "huge, fills the tile".
    valueShare: Math.min(...[...document.querySelectorAll('.tile')]
      .filter(t => t.querySelector('.tile__num')).map(t =>
      parseFloat(getComputedStyle(t.querySelector('.tile__num')).fontSize) / t.clientHeight)),
  };
}"""
INIT_SCRIPT = """
window.__alerts = [];
window.addEventListener('wallboard:alert', e => window.__alerts.push(e.detail));
// Record what the page sends: a resync means the server's seq numbering had a gap.
window.__sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  window.__sent.push(String(data));
  return send.call(this, data);
};
"""


# ---------- environment ----------


def _unavailable(reason: str) -> None:
    """Skip locally, fail on CI: a CI runner is supposed to have the browser."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_browser() -> None:
    """Skip (fail under CI=true) unless playwright and Debian's chromium are here."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        _unavailable("the playwright python package is not installed (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        _unavailable(
            f"{CHROMIUM} not found (apt-get install chromium); this test never downloads a browser"
        )


@contextlib.contextmanager
def launched(*extra_args: str) -> Iterator[Any]:
    """Debian's chromium through playwright, with the common arguments and `extra_args`."""
    require_browser()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=[*CHROMIUM_ARGS, *extra_args])
        except PlaywrightError as exc:
            _unavailable(f"{CHROMIUM} did not start: {exc}")
        yield browser
        browser.close()


@contextlib.contextmanager
def recording_page(browser: Any, width: int, height: int,
                   init_script: str | None = None) -> Iterator[Any]:
    """A fresh page that records JS errors and dialogs; any JS error fails the test."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    if init_script:
        page.add_init_script(init_script)
    try:
        yield page
    finally:
        errors = list(page.errors)
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m wallboard serve` in a subprocess, on a fixed port so it can be restarted."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_dir = Path()  # the journal's directory

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        cmd = [
            sys.executable,
            "-m",
            "wallboard",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(self.port),
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"server not healthy within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def post_events(
        self,
        events: list[dict[str, Any]] | dict[str, Any],
        ndjson: bool = False,
        token: str = TOKEN,
    ) -> dict[str, Any]:
        items = events if isinstance(events, list) else [events]
        body = ("\n".join(json.dumps(e) for e in items) if ndjson else json.dumps(events)).encode()
        request = urllib.request.Request(
            f"{self.url}/api/events",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            result = json.load(resp)
        assert (result["accepted"], result["rejected"]) == (len(items), []), result
        return result


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(locale: str = "en", stale_after_s: float | None = None) -> Server:
        config = tmp_path / f"wallboard-{len(servers)}.yaml"
        stale = f", stale_after_s: {stale_after_s}" if stale_after_s else ""
        data_dir = tmp_path / f"data-{len(servers)}"
        config.write_text(CONFIG % {"locale": locale, "stale": stale, "data_dir": data_dir},
                          encoding="utf-8")
        server = Server(config, _free_port(), tmp_path / f"server-{len(servers)}.log")
        server.data_dir = data_dir
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 720p page that records JS errors and dialogs; the test fails on any JS error."""
    with recording_page(browser, 1280, 720, INIT_SCRIPT) as page:
        yield page


def _open_board(page: Any, server: Server, board: str = "main") -> None:
    page.goto(f"{server.url}/board/{board}")
    page.wait_for_function("window.wallboard && window.wallboard.connected", timeout=10_000)


_counter = iter(range(1, 1_000_000))


def _event(kind: str, contact: str, age_s: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "id": f"e{next(_counter)}",
        "ts": time.time() - age_s,
        "queue": "sales",
        "channel": "voice",
        "contact_id": contact,
        **extra,
    }


# ---------- tests ----------


def test_index_lists_boards_and_board_shows_server_values(page: Any, start_server) -> None:
    server = start_server()
    page.goto(server.url + "/")
    hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["/board/main", "/board/dense", "/board/waits", "/report"]

    _open_board(page, server)
    assert page.evaluate("document.documentElement.dir") == "ltr"
    assert page.text_content(".bar__site") == "Test site"
    assert page.text_content(".bar__title") == "Main"
    assert page.text_content(".bar__clock").strip()
    assert page.get_attribute("#wb-conn", "data-state") == "connected"
    assert page.is_hidden("#wb-overlay")
    # Server-rendered grid: two tiles in two columns, captions per window.
    assert (
        page.eval_on_selector(
            "#wb-grid", "g => getComputedStyle(g).gridTemplateColumns.split(' ').length"
        )
        == 2
    )
    assert page.eval_on_selector_all(".tile__window", "els => els.map(e => e.textContent)") == [
        "live",
        "today",
    ]
    # Values are the server's: waiting is 0, service level has nothing to divide yet.
    state = page.evaluate("window.wallboard.state")
    assert state["queues.sales.live.waiting"] == 0
    assert state["queues.sales.today.service_level"] is None
    assert isinstance(page.evaluate("window.wallboard.seq"), int)
    assert page.evaluate(JS_TILE_TEXT, "t0") == "0"
    assert page.evaluate(JS_TILE_TEXT, "t1") == "–"
    assert page.evaluate(JS_LEVEL, "t0") == "ok"
    assert page.evaluate(JS_LEVEL, "t1") == "none"
    # A few seconds of deltas apply cleanly in sequence: no resync requested.
    page.wait_for_function(f"window.wallboard.seq >= {page.evaluate('window.wallboard.seq') + 2}")
    assert page.evaluate("window.__sent") == []


def test_queued_contact_reaches_the_tile_within_one_second(page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server)
    assert page.evaluate(JS_TILE_TEXT, "t0") == "0"
    # Stamp the DOM change in the page (same machine clock as time.time()).
    page.evaluate("""() => {
      const el = document.querySelector("[data-tile='t0'] .tile__num");
      new MutationObserver((_, obs) => { window.__changedAt = Date.now(); obs.disconnect(); })
        .observe(el, {childList: true, characterData: true, subtree: true});
    }""")
    posted_at, started = time.time(), time.perf_counter()
    server.post_events(_event("contact.queued", "c1"))
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '1'", timeout=1000)
    seen = time.perf_counter() - started  # includes the test's own polling round trips
    latency = page.evaluate("window.__changedAt") / 1000 - posted_at
    print(
        f"\nPOST /api/events -> tile text changed in {latency * 1000:.0f} ms "
        f"(seen by the test after {seen * 1000:.0f} ms)"
    )
    assert latency < 1.0
    assert page.evaluate("window.__sent") == [], "the client had to ask for a resync"


def test_three_waiting_turn_the_tile_red_and_fire_the_alert(page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server)
    server.post_events([_event("contact.queued", "c1"), _event("contact.queued", "c2")])
    page.wait_for_function(f"({JS_LEVEL})('t0') === 'warn'", timeout=2000)
    assert page.evaluate("window.__alerts") == []

    server.post_events([_event("contact.queued", "c3")], ndjson=True)
    page.wait_for_function(f"({JS_LEVEL})('t0') === 'crit'", timeout=2000)
    assert page.evaluate(JS_TILE_TEXT, "t0") == "3"
    assert "tile--crit" in page.get_attribute("[data-tile='t0']", "class")
    # Red pulses.
    assert (
        page.eval_on_selector(
            "[data-tile='t0']", "el => getComputedStyle(el, '::after').animationName"
        )
        == "wb-pulse"
    )
    alerts = page.evaluate("window.__alerts")
    assert [(a["tile"], a["level"]) for a in alerts] == [("t0", "crit")]

    # Staying red does not re-alert.
    server.post_events(_event("contact.queued", "c4"))
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '4'", timeout=2000)
    assert len(page.evaluate("window.__alerts")) == 1


def test_service_level_is_a_percentage_with_low_bad_thresholds(page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server)
    server.post_events([_event("contact.queued", "c1"), _event("contact.queued", "c2")])
    server.post_events(_event("contact.answered", "c1", wait_s=3))
    page.wait_for_function(f"({JS_TILE_TEXT})('t1') === '100%'", timeout=2000)
    assert page.evaluate(JS_LEVEL, "t1") == "ok"
    # A long abandon is a miss: 1 of 2 in service level -> 50 %, under crit (0.6) -> red.
    server.post_events(_event("contact.abandoned", "c2", wait_s=40))
    page.wait_for_function(f"({JS_TILE_TEXT})('t1') === '50%'", timeout=2000)
    assert page.evaluate(JS_LEVEL, "t1") == "crit"
    assert ("t1", "crit") in [(a["tile"], a["level"]) for a in page.evaluate("window.__alerts")]


def test_hostile_queue_label_renders_as_literal_text(page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server)
    server.post_events(_event("contact.queued", "c1"))  # the label also arrives over the socket
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '1'", timeout=2000)
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("window.wallboard.state['queues.sales.label']") == HOSTILE
    label = page.text_content("[data-tile='t0'] .tile__label")
    assert "<img" in label and HOSTILE in label
    assert page.dialogs == []


def test_stale_source_marks_its_tiles(page: Any, start_server) -> None:
    server = start_server(stale_after_s=1)
    _open_board(page, server)
    server.post_events(_event("contact.queued", "c1"))  # now queues.sales.sources == "hook"
    page.wait_for_function(
        "window.wallboard.state['queues.sales.sources'] === 'hook'", timeout=2000
    )
    # Silent for longer than stale_after_s: every tile fed by hook is marked, with a reason.
    page.wait_for_function(
        "document.querySelector(\"[data-tile='t0']\").classList.contains('tile--stale')",
        timeout=5000,
    )
    badge = page.locator("[data-tile='t0'] .tile__stale")
    assert badge.is_visible()
    assert "hook" in badge.text_content()
    # The value is dimmed (after its short fade).
    page.wait_for_function(
        "parseFloat(getComputedStyle(document.querySelector("
        "\"[data-tile='t0'] .tile__value\")).opacity) < 0.5",
        timeout=2000,
    )
    # A new event brings the source back up and clears the marker.
    server.post_events(_event("contact.queued", "c2"))
    page.wait_for_function(
        "!document.querySelector(\"[data-tile='t0']\").classList.contains('tile--stale')",
        timeout=3000,
    )
    assert badge.is_hidden()


def test_server_restart_shows_overlay_then_resyncs_without_reload(page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server)
    server.post_events([_event("contact.queued", "c1"), _event("contact.queued", "c2")])
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '2'", timeout=2000)
    page.evaluate("window.__marker = 'same-document'")
    time_origin = page.evaluate("performance.timeOrigin")

    server.stop()
    page.wait_for_selector("#wb-overlay", state="visible", timeout=10_000)
    assert page.evaluate("window.wallboard.connected") is False
    assert page.get_attribute("#wb-conn", "data-state") == "down"
    assert page.text_content("#wb-overlay-title") == "Connection lost"
    detail = page.text_content("#wb-overlay-detail")
    assert detail.startswith("reconnecting"), detail

    server.start()  # same port and journal: the new process folds the journal back in
    page.wait_for_selector("#wb-overlay", state="hidden", timeout=40_000)
    assert page.evaluate("window.wallboard.connected") is True
    # The new server's snapshot replaced the board's state, with the same two waiting.
    assert page.evaluate("window.wallboard.state['total.live.waiting']") == 2
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '2'", timeout=2000)
    server.post_events(_event("contact.queued", "c9"))
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '3'", timeout=2000)
    # Same document: no reload happened.
    assert page.evaluate("window.__marker") == "same-document"
    assert page.evaluate("performance.timeOrigin") == time_origin


def test_journal_down_shows_in_the_status_line_until_it_recovers(page: Any,
                                                                 start_server) -> None:
    server = start_server()
    server.post_events(_event("contact.queued", "c1"))
    _open_board(page, server)
    assert page.locator("#wb-journal").is_hidden()
    # Another process holds the database's write lock: the server cannot store events.
    holder = sqlite3.connect(server.data_dir / "journal.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.post_events(_event("contact.queued", "c2"))
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
        page.wait_for_selector("#wb-journal", state="visible", timeout=5000)
        assert page.text_content("#wb-journal") == "\u26a0 journal down"
        # The board still shows what it knows, and stays connected.
        assert page.evaluate(f"({JS_TILE_TEXT})('t0')") == "1"
        assert page.evaluate("window.wallboard.connected") is True
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    page.wait_for_selector("#wb-journal", state="hidden", timeout=10_000)
    server.post_events(_event("contact.queued", "c2"))
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '2'", timeout=2000)


@pytest.mark.parametrize("board", ["main", "dense"])
def test_tiles_fit_from_720p_to_4k(page: Any, start_server, board: str) -> None:
    server = start_server()
    server.post_events([_event("contact.queued", f"c{i}") for i in range(12)])
    server.post_events(_event("contact.answered", "c0", wait_s=3725))  # h:mm:ss durations
    for width, height in [(1280, 720), (1920, 1080), (3840, 2160)]:
        page.set_viewport_size({"width": width, "height": height})
        _open_board(page, server, board)
        page.wait_for_timeout(300)  # let the post-resize fit pass run
        result = page.evaluate(JS_OVERFLOW)
        assert result["bad"] == [], f"{width}x{height}: {result['bad']}"
        assert not result["docScrolls"], f"{width}x{height}: the page scrolls"
        # Huge numbers: even on the 12-tile board the value is a large share of its tile.
        assert result["valueShare"] > (0.25 if board == "main" else 0.2), result


def test_rtl_locale_mirrors_the_grid(page: Any, start_server) -> None:
    server = start_server(locale="he")
    _open_board(page, server)
    assert page.evaluate("[document.documentElement.dir, document.documentElement.lang]") == [
        "rtl",
        "he",
    ]
    first = page.eval_on_selector("[data-tile='t0']", "el => el.getBoundingClientRect().left")
    second = page.eval_on_selector("[data-tile='t1']", "el => el.getBoundingClientRect().left")
    assert first > second  # the first tile sits on the right
    assert page.text_content("[data-tile='t0'] .tile__window") != "live"  # localized caption


def test_a_site_wide_wait_is_judged_against_each_queues_own_threshold(page: Any,
                                                                       start_server) -> None:
    """An e-mail waiting ~10 min is green (its threshold is 1 h); a call at 45 s is red (20 s)."""
    server = start_server()
    _open_board(page, server, "waits")
    email = _event("contact.queued", "m1", age_s=590, queue="email", channel="email")
    server.post_events(email)
    page.wait_for_function(f"({JS_TILE_TEXT})('t0') === '9:50'", timeout=3000)
    assert [page.evaluate(JS_LEVEL, t) for t in ("t0", "t1", "t2")] == ["ok", "ok", "ok"]
    server.post_events(_event("contact.queued", "v1", age_s=45))
    page.wait_for_function(f"({JS_LEVEL})('t2') === 'crit'", timeout=3000)
    # The site's longest wait is still the e-mail's 9:50, but the call is what is late.
    assert page.evaluate(JS_TILE_TEXT, "t0") == "9:50"
    assert [page.evaluate(JS_LEVEL, t) for t in ("t0", "t1")] == ["crit", "ok"]
    # The queue table colours each queue's longest wait against that queue's threshold too.
    cells = page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll("[data-tile='t3'] tbody tr")]
          .map(r => [r.cells[0].textContent, r.cells[2].dataset.level]))""")
    assert cells == {"Email": "ok", HOSTILE: "crit"}


def test_the_queue_table_colours_service_level_against_each_queues_target(
        page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server, "waits")
    # Sales (target 80 %): one of two answered within 20 s, so 50 %, far under its target.
    server.post_events([_event("contact.queued", "a", age_s=100), _event("contact.queued", "b")])
    server.post_events([_event("contact.answered", "a", wait_s=100),
                        _event("contact.answered", "b", wait_s=2)])
    js_sl = """() => [...document.querySelectorAll("[data-tile='t3'] tbody tr")]
        .filter(r => r.cells[0].textContent !== 'Email').map(r => r.cells[3].dataset.level)[0]"""
    page.wait_for_function(f"({js_sl})() === 'crit'", timeout=3000)
    assert page.evaluate(JS_LEVEL, "t3") == "crit"


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (3840, 2160)])
def test_labels_and_window_tags_are_readable_from_across_the_room(
        page: Any, start_server, width: int, height: int) -> None:
    """Minimum sizes relative to the screen: labels 2.2 % and window tags 1.8 % of its height."""
    server = start_server()
    page.set_viewport_size({"width": width, "height": height})
    vmin = min(width, height)
    for board in ("main", "dense", "waits"):
        _open_board(page, server, board)
        page.wait_for_timeout(300)
        sizes = page.evaluate("""() => ({
          label: Math.min(...[...document.querySelectorAll('.tile__label')].map(
            e => parseFloat(getComputedStyle(e).fontSize))),
          window: Math.min(...[...document.querySelectorAll('.tile__window')].map(
            e => parseFloat(getComputedStyle(e).fontSize))),
          head: Math.min(...[...document.querySelectorAll('.qtable th')].map(
            e => parseFloat(getComputedStyle(e).fontSize))),
        })""")
        assert sizes["label"] >= 0.022 * vmin - 0.1, (board, sizes)
        assert sizes["window"] >= 0.018 * vmin - 0.1, (board, sizes)
        assert sizes["head"] >= 0.018 * vmin - 0.1, (board, sizes)
        result = page.evaluate(JS_OVERFLOW)
        assert result["bad"] == [] and not result["docScrolls"], (board, result)
    # The site's name is in the header, not repeated on each site-wide tile.
    labels = page.eval_on_selector_all(".tile__label", "els => els.map(e => e.textContent)")
    assert labels[0] == "Longest wait" and not [x for x in labels if "Test site" in x]


def test_a_survey_below_its_minimum_sample_says_so_in_words(page: Any, start_server) -> None:
    server = start_server()
    _open_board(page, server, "waits")
    survey = {**_event("survey.response", "c1"), "kind": "csat", "score": 5, "scale_min": 1,
              "scale_max": 5}
    server.post_events(survey)
    sub = "[data-tile='t4'] .tile__sub"
    page.wait_for_function(f"document.querySelector(\"{sub}\").textContent.includes('1')",
                           timeout=3000)
    text = page.text_content(sub)
    assert text.startswith("Too few answers yet") and "30" in text, text
