"""The /report page in Chromium: the real server in a subprocess, Debian's chromium.

The page is checked twice over: against the real /api/report with events posted through the
webhook (numbers, CSV download, access), and against a fixed report answered by the browser's
request routing where the server cannot easily produce one (last week's day, every colour).
Skipped when the browser or playwright is missing, failed instead under CI=true.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.report_fixture import HOSTILE, SLOTS, post_calls, route_fixture
from tests.serverproc import midday_zone
from tests.test_board_browser import Server, _free_port, launched, recording_page

TOKEN = "secret-token"
ADMIN = "admin-token-for-the-report-tests"
COLUMNS = ["time", "offered", "forecast", "offered_last_week", "answered", "abandoned", "sl",
           "sl_last_week", "asa", "aht", "abandon_rate", "wait_p90"]


def config(data_dir: Path, access: dict[str, Any] | None) -> dict[str, Any]:
    """A site where it is about noon, two queues (one with a hostile label) and a webhook."""
    return {
        # About noon: "today" cannot roll over during a test.
        "site": {"name": "Report site", "timezone": midday_zone(), "locale": "en"},
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
    assert page.text_content("table[data-group='queue:support'] caption") == HOSTILE
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
    page.click("#rp-queues input[value='sales']")  # the last one ticked: it stays so
    assert page.is_checked("#rp-queues input[value='sales']") and len(seen) == before + 4
    # Whole days: one row per group and no separate total; another day: it and a week before.
    before = len(seen)
    page.select_option("#rp-interval", "1d")
    wait_ready(page, 3)
    assert sorted((s["query"]["from"][0], s["query"]["interval"][0]) for s in seen[before:]) == [
        (last, "1d"), (today, "1d")]
    assert cell(page, sales, "day", "offered") == "34" and not page.query_selector(total)
    before = len(seen)
    page.fill("#rp-day", last)  # fires "change", as a pick does
    wait_ready(page, 4)
    assert sorted(s["query"]["from"][0] for s in seen[before:]) == [
        (date.fromisoformat(last) - timedelta(days=7)).isoformat(), last]
    assert cell(page, sales, "day", "offered") == "22"


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
    # Rows of the wrong shape are skipped, fields of the wrong type shown as missing.
    start = "2026-12-01T09:00:00+00:00"
    odd = {"queues": {"sales": "x", "__proto__": {"label": HOSTILE}},
           "rows": [None, "row", 7, {"level": "queue", "queue": "sales", "start": 5},
                    {"level": "queue", "queue": "sales", "start": start, "end": None,
                     "offered": "<b>9</b>", "service_level": "high", "asa_s": float("inf")},
                    {"level": HOSTILE, "queue": HOSTILE, "start": start}]}
    page.unroute("**/api/report?*")
    page.route("**/api/report?*", lambda route: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps(odd).replace("Infinity", "1e999")))
    page.reload()
    wait_ready(page)
    slots = page.eval_on_selector_all("tbody tr[data-slot]", "rs => rs.map(r => r.dataset.slot)")
    assert slots == ["09:00"]
    assert [cell(page, "queue:sales", "09:00", c) for c in ("time", "offered", "sl", "asa")] == [
        "09:00–", "–", "–", "–"]
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0


# ---------- the real /api/report, fed through the webhook ----------

def api_report(srv: Server, day: str, fmt: str = "json", admin: bool = False) -> Any:
    url = f"{srv.url}/api/report?from={day}&to={day}&interval=15m&format={fmt}"
    headers = {"Authorization": f"Bearer {ADMIN}"} if admin else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if fmt == "json" else body


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def seconds(text: str) -> int:
    minutes, secs = text.split(":")
    return int(minutes) * 60 + int(secs)


def test_the_page_shows_the_servers_report_of_posted_events(page: Any, server) -> None:
    srv = server()
    post_calls(srv)
    today = today_of(srv)
    report = api_report(srv, today)
    rows = [r for r in report["rows"] if r["level"] in ("site", "queue")]
    # Independently of the API: what was posted, whichever intervals it fell in.
    def total(level: str, queue: str, field: str) -> int:
        return sum(r[field] for r in rows if r["level"] == level and r["queue"] == queue)
    assert [total("queue", "sales", f) for f in ("offered", "answered", "abandoned")] == [3, 2, 1]
    assert [total("queue", "support", f) for f in ("offered", "answered")] == [1, 1]
    assert total("site", "", "offered") == 4

    page.goto(f"{srv.url}/report")
    wait_ready(page)
    assert page.input_value("#rp-day") == today
    for row in rows:
        group = "site" if row["level"] == "site" else f"queue:{row['queue']}"
        slot = row["start"][11:16]
        assert cell(page, group, slot, "time") == f"{slot}–{row['end'][11:16]}"
        for col, field in (("offered", "offered"), ("answered", "answered"),
                           ("abandoned", "abandoned")):
            assert cell(page, group, slot, col) == str(row[field]), (group, slot, col)
        for col, field in (("sl", "service_level"), ("abandon_rate", "abandon_rate")):
            text = cell(page, group, slot, col)
            assert (text == "–") if row[field] is None else (
                percent(text) == pytest.approx(row[field], abs=0.0006)), (group, col, text)
        for col, field in (("asa", "asa_s"), ("aht", "aht_s"), ("wait_p90", "wait_p90_s")):
            text = cell(page, group, slot, col)
            assert (text == "–") if row[field] is None else (
                seconds(text) == int(row[field])), (group, col, text)
        offered = chart_values(page, group, "bar--offered")
        assert (slot, row["offered"]) in offered
    # Sales' SL: one of two answered within 20 s, and an abandon after 30 s counts against.
    assert page.text_content(".report__figure dd[data-field='offered']") == "Offered 4"


def test_the_csv_download_parses_and_equals_the_json(page: Any, server) -> None:
    srv = server()
    post_calls(srv)
    today = today_of(srv)
    report = api_report(srv, today)
    page.goto(f"{srv.url}/report?lang=he")  # in Hebrew: the same file, a mirrored page
    wait_ready(page)
    assert page.evaluate("document.documentElement.dir") == "rtl"
    with page.expect_download() as info:
        page.click("#rp-csv")
    download = info.value
    # The name the server gives in Content-Disposition.
    assert download.suggested_filename == f"wallboard-report-{today}-{today}-15m.csv"
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    parsed = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(parsed) == len(report["rows"]) > 0
    for line, row in zip(parsed, report["rows"], strict=True):
        for field, value in row.items():
            if isinstance(value, bool) or value is None:
                assert line[field] in ("", str(value).lower()), (field, line[field])
            elif isinstance(value, int | float):
                assert float(line[field]) == pytest.approx(value), (field, line[field])
            else:
                assert line[field] == value, field


def test_with_access_on_the_token_is_asked_once_and_never_put_in_a_url(page: Any,
                                                                        server) -> None:
    srv = server({"enabled": True})
    post_calls(srv)
    requests: list[tuple[str, str | None]] = []
    page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
    page.goto(f"{srv.url}/report")
    page.wait_for_function("document.getElementById('rp-main').dataset.state === 'token'")
    assert page.is_visible("#rp-token") and not any("/api/report" in u for u, _ in requests)
    # A wrong token: the server's 401 is shown, the page asks again.
    page.fill("#rp-token-input", "wrong-" + ADMIN)
    page.click("#rp-token-save")
    page.wait_for_function("document.getElementById('rp-status').textContent.includes('401')")
    assert page.get_attribute("#rp-main", "data-state") == "token"
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#rp-token-input", ADMIN)
    page.press("#rp-token-input", "Enter")
    wait_ready(page)
    assert page.is_hidden("#rp-token")
    assert cell(page, "site", page.get_attribute("tbody[data-group='site'] tr[data-slot]",
                                                 "data-slot") or "", "offered") != "–"
    # Asked once: a reload in the same tab goes straight to the report.
    page.reload()
    wait_ready(page)
    with page.expect_download() as info:
        page.click("#rp-csv")
    assert Path(info.value.path()).read_bytes().startswith(b"\xef\xbb\xbf")
    reports = [(u, a) for u, a in requests if "/api/report" in u]
    assert len(reports) >= 8 and reports[-1][1] == f"Bearer {ADMIN}"
    assert all(a and a.startswith("Bearer ") for _, a in reports)  # the header, every time
    assert not [u for u, _ in requests if ADMIN in urllib.parse.unquote(u)]
