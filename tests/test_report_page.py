"""The /report page in Chromium: the real server in a subprocess, Debian's chromium.

The page is checked twice over: against the real /api/report with events posted through the
webhook (numbers, CSV download, access), and against a fixed report answered by the browser's
request routing where the server cannot easily produce one (last week's day, every colour).
Skipped when the browser or playwright is missing, failed instead under CI=true.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_board_browser import Server, _free_port, launched, recording_page

TOKEN = "secret-token"
ADMIN = "admin-token-for-the-report-tests"
HOSTILE = "<img src=x onerror=alert(1)>"
COLUMNS = ["time", "offered", "forecast", "offered_last_week", "answered", "abandoned", "sl",
           "sl_last_week", "asa", "aht", "abandon_rate", "wait_p90"]


def config(data_dir: Path, access: dict[str, Any] | None) -> dict[str, Any]:
    """A site in UTC with two queues (one with a hostile label) and a webhook."""
    return {
        "site": {"name": "Report site", "timezone": "UTC", "locale": "en"},
        "server": {"push_interval_ms": 100},
        "queues": {"sales": {"label": "Sales", "channel": "voice"},
                   "support": {"label": HOSTILE, "channel": "voice",
                               "service_level": {"target": 0.9, "threshold_s": 30}}},
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        "journal": {"data_dir": str(data_dir)},
        "access": {"admin_token": ADMIN, **(access or {})},
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(access: dict[str, Any] | None = None) -> Server:
        path = tmp_path / f"wallboard-{len(started)}.yaml"
        data = config(tmp_path / f"data-{len(started)}", access)
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
    with recording_page(browser, 1600, 1000) as page:
        page.set_default_timeout(10_000)
        yield page


def wait_ready(page: Any, loads: int = 1) -> None:
    page.wait_for_function(
        f"document.getElementById('rp-main').dataset.state === 'ready' && report.loads >= {loads}")


def cell(page: Any, group: str, slot: str, col: str) -> str:
    sel = f"tbody[data-group='{group}'] tr[data-slot='{slot}'] [data-col='{col}']"
    return str(page.text_content(sel))


def level(page: Any, group: str, slot: str, col: str) -> str:
    sel = f"tbody[data-group='{group}'] tr[data-slot='{slot}'] [data-col='{col}']"
    return str(page.get_attribute(sel, "data-level"))


def chart_values(page: Any, group: str, what: str) -> list[tuple[str, float]]:
    """(slot, value) of a chart's bars or dots, in slot order."""
    return [(s, float(v)) for s, v in page.eval_on_selector_all(
        f"figure[data-group='{group}'] .rp-{what}",
        "els => els.map(e => [e.dataset.slot, e.dataset.value])")]


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.query_selector(selector)
    assert found is not None, selector
    rect = found.bounding_box()
    assert rect is not None, selector
    return dict(rect)


# ---------- a fixed report, answered by the browser's routing ----------

SLOTS = ["09:00", "09:15", "09:30"]
QUEUES = {"sales": {"label": "Sales", "channel": "voice", "sl_target": 0.8, "sl_threshold_s": 20},
          "support": {"label": HOSTILE, "channel": "voice", "sl_target": 0.9,
                      "sl_threshold_s": 30}}
# (offered, answered, abandoned, service_level, asa_s, aht_s, wait_p90_s, forecast) per slot.
TODAY = {"sales": [(10, 9, 1, 0.85, 12.4, 200.0, 30.0, 11.5),
                   (20, 15, 5, 0.72, 41.0, 180.0, 95.0, 18.0),
                   (4, 4, 0, 0.5, 25.0, 150.0, 40.0, None)],
         "support": [(3, 3, 0, 1.0, 5.0, 300.0, 8.0, 2.5)]}
LAST_WEEK = {"sales": [(8, 8, 0, 0.9, 9.0, 190.0, 20.0, None),
                       (12, 10, 2, 0.6, 30.0, 170.0, 80.0, None),
                       None, (2, 2, 0, 1.0, 3.0, 120.0, 5.0, None)]}
DAY_TOTALS = {"today": {"site": (37, 31, 6, 0.7, 26.0, 190.0, 70.0, 32.0),
                        "sales": (34, 28, 6, 0.68, 28.0, 182.0, 75.0, 29.5),
                        "support": (3, 3, 0, 1.0, 5.0, 300.0, 8.0, 2.5)},
              "last": {"site": (22, 20, 2, 0.77, 19.0, 176.0, 60.0, None),
                       "sales": (22, 20, 2, 0.77, 19.0, 176.0, 60.0, None)}}


def _row(level: str, queue: str, day: str, start: str, minutes: int,
         values: tuple[Any, ...]) -> dict[str, Any]:
    offered, answered, abandoned, sl, asa, aht, p90, forecast = values
    h, m = map(int, start.split(":"))
    end = h * 60 + m + minutes
    end_day = day if end < 24 * 60 else (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return {"level": level, "queue": queue, "channel": "voice" if queue else "", "team": "",
            "start": f"{day}T{start}:00+00:00",
            "end": f"{end_day}T{end // 60 % 24:02d}:{end % 60:02d}:00+00:00",
            "offered": offered, "answered": answered, "abandoned": abandoned,
            "abandoned_short": 0, "asa_s": asa, "aht_s": aht, "service_level": sl,
            "abandon_rate": round(abandoned / offered, 4) if offered else None,
            "wait_p50_s": None, "wait_p90_s": p90, "handled": answered, "transfers": 0,
            "forecast_offered": forecast}


def fixed_report(today: str, day: str, interval: str) -> dict[str, Any]:
    """The fixture: today's three slots and last week's, at 15m or as whole days."""
    which = "today" if day == today else "last" if day == (
        date.fromisoformat(today) - timedelta(days=7)).isoformat() else None
    rows: list[dict[str, Any]] = []
    if which and interval == "1d":
        for key, values in DAY_TOTALS[which].items():
            level, queue = ("site", "") if key == "site" else ("queue", key)
            rows.append(_row(level, queue, day, "00:00", 24 * 60, values))
    elif which:
        per_queue = TODAY if which == "today" else LAST_WEEK
        for queue, slots in per_queue.items():
            for i, values in enumerate(slots):
                if values is not None:
                    rows.append(_row("queue", queue, day, f"09:{15 * i:02d}", 15, values))
        site = [r for r in rows if r["queue"] == "sales"]  # support's one slot is added below
        for r in site:
            r2 = copy.deepcopy(r)
            r2.update(level="site", queue="", channel="")
            rows.append(r2)
    return {"timezone": "UTC", "from": day, "to": day, "interval": interval, "queues": QUEUES,
            "rows": rows}


def route_fixture(page: Any, today: str, seen: list[dict[str, Any]]) -> None:
    """Answer /api/report from the fixture, recording each request's query and headers."""
    def handle(route: Any) -> None:
        request = route.request
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
        seen.append({"query": q, "headers": request.headers})
        body = fixed_report(today, q["from"][0], q["interval"][0])
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))
    page.route("**/api/report?*", handle)


def today_of(srv: Server) -> str:
    with urllib.request.urlopen(f"{srv.url}/report") as resp:  # the page names its own today
        html = resp.read().decode()
    start = html.index('id="board-config">') + len('id="board-config">')
    return str(json.loads(html[start:html.index("</script>", start)])["today"])


def test_the_table_chart_and_last_week_show_the_reports_numbers(page: Any, server) -> None:
    srv = server()
    today = today_of(srv)
    last = (date.fromisoformat(today) - timedelta(days=7)).isoformat()
    seen: list[dict[str, Any]] = []
    route_fixture(page, today, seen)
    page.goto(f"{srv.url}/report")
    wait_ready(page)
    # The day, last week's day, and each at 1d for the totals; no queue= while all are ticked.
    asked = sorted((s["query"]["from"][0], s["query"]["interval"][0]) for s in seen)
    assert asked == sorted([(today, "15m"), (last, "15m"), (today, "1d"), (last, "1d")])
    assert all("queue" not in s["query"] and s["query"]["to"] == s["query"]["from"] for s in seen)

    sales = "queue:sales"
    assert page.eval_on_selector_all(f"tbody[data-group='{sales}'] tr[data-slot]",
                                     "rows => rows.map(r => r.dataset.slot)") == [
        "09:00", "09:15", "09:30", "09:45"]  # 09:45 had calls last week only
    assert cell(page, sales, "09:00", "time") == "09:00–09:15"
    assert [cell(page, sales, "09:15", c) for c in COLUMNS[1:]] == [
        "20", "18", "12", "15", "5", "72%", "60%", "0:41", "3:00", "25%", "1:35"]
    assert [cell(page, sales, "09:45", c) for c in ("offered", "offered_last_week", "sl_last_week")
            ] == ["–", "2", "100%"]
    assert cell(page, sales, "09:30", "forecast") == "–" and cell(page, sales, "09:00",
                                                                 "forecast") == "11.5"
    # SL against the queue's target (80 %): at or above, within 10 points, lower.
    assert [level(page, sales, s, "sl") for s in SLOTS] == ["ok", "warn", "crit"]
    assert [level(page, sales, s, "abandon_rate") for s in SLOTS] == ["crit", "crit", "ok"]
    # Support's target is 90 %: its 100 % is ok; its label is text, never markup.
    assert level(page, "queue:support", "09:00", "sl") == "ok"
    assert page.text_content("tbody[data-group='queue:support'] .report__group th") == HOSTILE
    assert page.evaluate("document.querySelectorAll('img').length") == 0 and page.dialogs == []
    # The day's totals come from the 1d report, not from adding ratios up.
    total = f"tbody[data-group='{sales}'] .report__total"
    assert page.eval_on_selector_all(f"{total} td", "tds => tds.map(t => t.textContent)")[:7] == [
        "34", "29.5", "22", "28", "6", "68%", "77%"]
    figures = page.eval_on_selector_all(".report__figure dd", "dds => dds.map(d => d.textContent)")
    assert figures == ["Offered 37", "Service level 70%", "Offered 22", "Service level 77%"]

    # The chart: bars and lines carry exactly the report's numbers, bars to scale.
    assert chart_values(page, sales, "bar--offered") == [("09:00", 10), ("09:15", 20), ("09:30", 4)]
    assert chart_values(page, sales, "bar--answered") == [("09:00", 9), ("09:15", 15), ("09:30", 4)]
    assert chart_values(page, sales, "dot--forecast") == [("09:00", 11.5), ("09:15", 18)]
    assert chart_values(page, sales, "dot--last-week") == [("09:00", 8), ("09:15", 12),
                                                           ("09:45", 2)]
    assert chart_values(page, sales, "dot--sl") == [("09:00", 0.85), ("09:15", 0.72),
                                                    ("09:30", 0.5)]
    bars = page.eval_on_selector_all(f"figure[data-group='{sales}'] .rp-bar--offered",
                                     "els => els.map(e => e.getBBox().height)")
    assert bars[1] == pytest.approx(2 * bars[0], rel=0.01) and bars[2] == pytest.approx(
        0.4 * bars[0], rel=0.01)
    sl = page.eval_on_selector_all(f"figure[data-group='{sales}'] .rp-dot--sl",
                                   "els => els.map(e => e.getBBox().y + e.getBBox().height / 2)")
    bottom = page.eval_on_selector("figure[data-group='queue:sales'] .rp-grid",
                                   "e => e.getBBox().y")  # the first grid line is 0
    top = page.eval_on_selector_all("figure[data-group='queue:sales'] .rp-grid",
                                    "els => els[2].getBBox().y")  # and the third 100 %
    assert [(bottom - y) / (bottom - top) for y in sl] == pytest.approx([0.85, 0.72, 0.5], abs=0.01)
    label = page.get_attribute(f"figure[data-group='{sales}'] svg", "aria-label")
    assert label and label.startswith("\u2068Sales\u2069:")  # the name bidi-isolated
    assert page.text_content(f"figure[data-group='{sales}'] svg > title") == label

    # Unticking a queue asks for the others only.
    before = len(seen)
    page.click("#rp-queues input[value='support']")
    wait_ready(page, 2)
    assert {tuple(s["query"].get("queue", [])) for s in seen[before:]} == {("sales",)}


@pytest.mark.parametrize("lang", ["he", "ar"])
def test_rtl_mirrors_the_table_and_the_chart(page: Any, server, lang: str) -> None:
    srv = server()
    today = today_of(srv)
    route_fixture(page, today, [])
    positions = {}
    for want in ("en", lang):
        page.goto(f"{srv.url}/report?lang={want}")
        wait_ready(page)
        first, last = box(page, "th[data-col='time']"), box(page, "th[data-col='wait_p90']")
        bar = "figure[data-group='queue:sales'] .rp-bar--{}[data-slot='{}']"
        early, late = box(page, bar.format("offered", "09:00")), box(page, bar.format("offered",
                                                                                       "09:30"))
        answered = box(page, bar.format("answered", "09:00"))
        # Columns in reading order, time running in it, offered before answered in a slot.
        positions[want] = (first["x"] < last["x"], early["x"] < late["x"],
                           early["x"] < answered["x"])
    assert positions["en"] == (True, True, True)
    assert positions[lang] == (False, False, False)  # the same layout, mirrored
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("document.documentElement.lang") == lang
    catalogue = json.loads((Path(__file__).parents[1] / "web" / "locales" / f"{lang}.json")
                           .read_text(encoding="utf-8"))
    assert page.text_content("th[data-col='offered']") == catalogue["report.col_offered"]
    assert page.text_content("h1") == catalogue["report.title"]


def test_a_malformed_or_refused_answer_is_shown_not_thrown(page: Any, server) -> None:
    srv = server()
    page.route("**/api/report?*", lambda route: route.fulfill(
        status=200, content_type="application/json", body='{"rows": "nope"}'))
    page.goto(f"{srv.url}/report")
    page.wait_for_function("document.getElementById('rp-main').dataset.state === 'error'")
    assert "no rows" in str(page.text_content("#rp-status"))
    page.unroute("**/api/report?*")
    page.route("**/api/report?*", lambda route: route.fulfill(status=500, body=HOSTILE))
    page.reload()
    page.wait_for_function("document.getElementById('rp-main').dataset.state === 'error'")
    assert HOSTILE in str(page.text_content("#rp-status")) and page.dialogs == []
