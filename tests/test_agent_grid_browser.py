"""The agent grid in Debian's chromium: webhook agents appear with state, reason and a time in
state that ticks on the page; away cells turn amber then red; 150 agents fit from 720p to 4K;
Hebrew mirrors. The real server in a subprocess (tests/serverproc.py)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TOKEN, free_port
from tests.serverproc import midday_zone
from tests.test_board_browser import Server, launched, recording_page

GRID = {"type": "agent_grid", "cols": 3, "rows": 2,
        "states": {"away": {"warn": 4, "crit": 8}, "wrapup": {"warn": 60, "crit": 120}}}


def config(data_dir: Path) -> dict[str, Any]:
    return {
        "site": {"name": "Agents", "timezone": midday_zone()},
        "server": {"push_interval_ms": 100},
        "queues": {"sales": {"channel": "voice"}},
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        "journal": {"data_dir": str(data_dir), "batch_ms": 5},
        "agents": {"reasons": {"Lunch break": "lunch"},
                   "roster": {"a1": {"name": "Ada Lovelace", "team": "red"}}},
        "boards": {
            "floor": {"columns": 4, "agents": "names",
                      "tiles": [GRID, {"kpi": "waiting"}, {"kpi": "agents_available"}]},
            "he": {"columns": 4, "locale": "he", "agents": "names",
                   "tiles": [GRID, {"kpi": "waiting"}, {"kpi": "agents_available"}]},
            "tables": {"columns": 2, "agents": "initials", "tiles": [
                {"type": "agent_table", "columns": ["name", "team", "state", "away_s"],
                 "sort": "away_s", "column_thresholds": {"away_s": {"warn": 1, "crit": 2}}},
                {"type": "team_table", "columns": ["team", "agents_staffed", "agents_away"],
                 "sort": "agents_staffed"}]},
        },
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    path = tmp_path / "wallboard.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path / "data")), encoding="utf-8")
    proc = Server(path, free_port(), tmp_path / "server.log")
    proc.start(timeout=30)
    yield proc
    proc.stop()


_ids = iter(range(1, 10**9))


def post(server: Server, events: list[dict[str, Any]]) -> None:
    body = json.dumps([{"id": f"e{next(_ids)}", "type": "agent.state", "ts": time.time(), **e}
                       for e in events]).encode()
    request = urllib.request.Request(f"{server.url}/api/events", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        result = json.load(resp)
    assert result["accepted"] == len(events), result


def open_board(page: Any, server: Server, board: str) -> None:
    page.goto(f"{server.url}/board/{board}")
    page.wait_for_function("window.wallboard && window.wallboard.connected", timeout=15_000)


JS_CELLS = """() => [...document.querySelectorAll('.agent')].filter(c => !c.hidden).map(c => ({
  name: c.querySelector('.agent__name').textContent,
  time: c.querySelector('.agent__time').textContent,
  info: c.querySelector('.agent__info').textContent,
  state: c.dataset.state, level: c.dataset.level}))"""
JS_SECONDS = """name => {
  const cell = [...document.querySelectorAll('.agent')].find(
    c => c.querySelector('.agent__name').textContent === name);
  const parts = cell.querySelector('.agent__time').textContent.split(':').map(Number);
  return parts.reduce((a, p) => a * 60 + p, 0);
}"""
# Every level an agent cell takes, in order: the page's own record of amber then red.
INIT = """window.__levels = [];
new MutationObserver(ms => { for (const m of ms) {
  if (m.attributeName === 'data-level' && m.target.classList.contains('agent'))
    window.__levels.push(m.target.querySelector('.agent__name').textContent + ':'
                         + m.target.dataset.level);
}}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-level']});"""


def test_agents_appear_with_state_reason_and_a_ticking_time(browser: Any,
                                                            server: Server) -> None:
    post(server, [{"agent": "a2", "state": "available", "team": "red"},
                  {"agent": "a3", "state": "busy", "channel": "chat"}])
    with recording_page(browser, 1280, 720, INIT) as page:
        open_board(page, server, "floor")
        # The roster's a1 is there before any event of its own: logged out, greyed.
        page.wait_for_function("() => document.querySelectorAll('.agent:not([hidden])').length"
                               " === 3", timeout=15_000)
        cells = {c["name"]: c for c in page.evaluate(JS_CELLS)}
        assert cells["Ada Lovelace"]["state"] == "offline"
        assert "chat" in cells["a3"]["info"] and cells["a3"]["state"] == "busy"
        post(server, [{"agent": "a1", "state": "away", "reason": "Lunch break"}])
        page.wait_for_function("() => [...document.querySelectorAll('.agent')].some(c => "
                               "c.dataset.state === 'away')", timeout=15_000)
        cells = {c["name"]: c for c in page.evaluate(JS_CELLS)}
        assert "lunch" in cells["Ada Lovelace"]["info"]
        # Sorted by state, attention first: the away agent leads.
        assert page.evaluate(JS_CELLS)[0]["name"] == "Ada Lovelace"
        key = "people.floor.t0"
        page.evaluate(f"window.__rows = window.wallboard.state['{key}']")
        first = page.evaluate(JS_SECONDS, "Ada Lovelace")
        page.wait_for_function(f"() => ({JS_SECONDS})('Ada Lovelace') >= {first + 2}",
                               timeout=20_000)
        # The rows the server sent did not change meanwhile: the page counted the time.
        assert page.evaluate(f"window.__rows === window.wallboard.state['{key}']")
        # Away past 4 s is amber, past 8 s red (the tile's states.away levels).
        page.wait_for_function("() => window.__levels.includes('Ada Lovelace:crit')",
                               timeout=20_000)
        levels = [v for v in page.evaluate("window.__levels") if v.startswith("Ada")]
        assert levels.index("Ada Lovelace:warn") < levels.index("Ada Lovelace:crit"), levels
        assert page.evaluate("getComputedStyle([...document.querySelectorAll('.agent')]"
                             ".find(c => c.dataset.level === 'crit')).backgroundColor") \
            == "rgb(224, 36, 27)"  # --crit
        # The others have no levels for their states: never coloured.
        assert not [v for v in page.evaluate("window.__levels")
                    if not v.startswith("Ada") and not v.endswith(":none")]


JS_FIT = """() => {
  const box = document.querySelector('[data-tile="t0"] .tile__value');
  const grid = box.querySelector('.agrid');
  const b = box.getBoundingClientRect();
  const cells = [...grid.querySelectorAll('.agent')].filter(c => !c.hidden);
  const outside = cells.filter(c => { const r = c.getBoundingClientRect();
    return r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1
      || r.bottom > b.bottom + 1; }).length;
  const overflowing = cells.filter(c => c.scrollHeight > c.clientHeight + 1
    || c.scrollWidth > c.clientWidth + 1).length;
  const d = document.documentElement;
  return {cells: cells.length, outside, overflowing,
          gridScrolls: grid.scrollHeight > grid.clientHeight + 1
            || grid.scrollWidth > grid.clientWidth + 1,
          boxScrolls: box.scrollHeight > box.clientHeight + 1
            || box.scrollWidth > box.clientWidth + 1,
          pageScrolls: d.scrollWidth > d.clientWidth || d.scrollHeight > d.clientHeight,
          font: parseFloat(getComputedStyle(grid).fontSize),
          ellipsised: cells.filter(c => { const n = c.querySelector('.agent__name');
            return n.scrollWidth > n.clientWidth; }).length};
}"""


@pytest.mark.parametrize("width,height", [(1280, 720), (3840, 2160)])
def test_150_agents_fit_without_scrolling(browser: Any, server: Server, width: int,
                                          height: int) -> None:
    states = ["available", "busy", "wrapup", "away", "offline"]
    post(server, [{"agent": f"agent-{i:03d} with a rather long display name",
                   "state": states[i % 5], "reason": "Lunch break" if i % 5 == 3 else None}
                  for i in range(149)])  # and the roster's a1: 150
    with recording_page(browser, width, height) as page:
        open_board(page, server, "floor")
        page.wait_for_function("() => document.querySelectorAll('.agent:not([hidden])').length"
                               " === 150", timeout=20_000)
        page.wait_for_timeout(300)  # one more paint after the last resize of the grid
        fit = page.evaluate(JS_FIT)
        assert fit["cells"] == 150
        assert (fit["outside"], fit["overflowing"]) == (0, 0), fit
        assert not (fit["gridScrolls"] or fit["boxScrolls"] or fit["pageScrolls"]), fit
        assert fit["ellipsised"] > 0, fit  # long names are cut, not wrapped out of the cell
        assert fit["font"] >= 6, fit


def test_hebrew_board_mirrors_the_grid(browser: Any, server: Server) -> None:
    post(server, [{"agent": "a2", "state": "away"}] +
         [{"agent": f"b{i}", "state": "busy"} for i in range(11)])  # 13 with a1: two columns
    with recording_page(browser, 1280, 720) as page:
        open_board(page, server, "he")
        page.wait_for_function("() => document.querySelectorAll('.agent:not([hidden])').length"
                               " === 13", timeout=15_000)
        assert page.evaluate("document.documentElement.dir") == "rtl"
        geometry = page.evaluate("""() => [...document.querySelectorAll('.agent')].map(c => {
          const s = getComputedStyle(c);
          return {left: c.getBoundingClientRect().left,
                  nameLeft: c.querySelector('.agent__name').getBoundingClientRect().left,
                  timeLeft: c.querySelector('.agent__time').getBoundingClientRect().left,
                  borderRight: parseFloat(s.borderRightWidth),
                  borderLeft: parseFloat(s.borderLeftWidth), info: c.textContent}; })""")
        first, second = geometry[0], geometry[1]
        assert first["left"] > second["left"]  # the first cell is on the right, the next left
        assert first["borderRight"] > 0 and first["borderLeft"] == 0  # the state edge too
        assert first["nameLeft"] > first["timeLeft"]  # the name reads first, from the right
        assert "בהפסקה" in first["info"] or "הפסקה" in first["info"], first


def test_agent_and_team_tables_show_their_columns_sorted_and_coloured(
        browser: Any, server: Server) -> None:
    post(server, [{"agent": "a2", "state": "away", "team": "red", "ts": time.time() - 30},
                  {"agent": "Bo Peep", "state": "busy", "team": "blue"},
                  {"agent": "Cy Twombly", "state": "available", "team": "blue"}])
    with recording_page(browser, 1280, 720) as page:
        open_board(page, server, "tables")
        page.wait_for_function("() => document.querySelectorAll("
                               "'[data-tile=\"t0\"] tbody tr:not([hidden])').length === 4",
                               timeout=15_000)
        heads = page.eval_on_selector_all('[data-tile="t0"] th', "hs => hs.map(h => h.textContent)")
        assert heads == ["Agent", "Team", "State", "Time away"]
        rows = page.eval_on_selector_all(
            '[data-tile="t0"] tbody tr:not([hidden])',
            "rs => rs.map(r => [...r.children].map(c => [c.textContent, c.dataset.level]))")
        # Sorted by time away, longest first; initials only; away 30 s past crit 2 s is red.
        assert rows[0][0][0] == "A" and rows[0][2][0] == "away", rows
        assert rows[0][3][1] == "crit", rows
        assert {r[0][0] for r in rows} == {"A", "AL", "BP", "CT"}, rows
        assert [r[3][1] for r in rows[1:3]] == ["ok", "ok"], rows  # no time away: green
        # The roster's Ada, never heard of: logged out, no numbers, last.
        assert rows[3][0][0] == "AL" and rows[3][2][0] == "logged out" and rows[3][3] == [
            "–", "none"], rows
        teams = page.eval_on_selector_all(
            '[data-tile="t1"] tbody tr:not([hidden])',
            "rs => rs.map(r => [...r.children].map(c => c.textContent))")
        # blue has two agents logged in, red one (a2; the roster's Ada is logged out).
        assert teams == [["blue", "2", "0"], ["red", "1", "1"]], teams


def test_time_in_state_follows_the_servers_clock_not_the_pages(browser: Any,
                                                                server: Server) -> None:
    post(server, [{"agent": "a2", "state": "away", "ts": time.time() - 20}])
    # A TV whose clock is an hour fast: the time in state must still be about 20 s.
    fast = "const now = Date.now; Date.now = () => now() + 3600 * 1000;"
    with recording_page(browser, 1280, 720, fast) as page:
        open_board(page, server, "floor")
        page.wait_for_function("() => [...document.querySelectorAll('.agent')].some(c => "
                               "c.dataset.state === 'away')", timeout=15_000)
        page.wait_for_function(f"() => ({JS_SECONDS})('a2') >= 20", timeout=15_000)
        assert 20 <= page.evaluate(JS_SECONDS, "a2") < 120
