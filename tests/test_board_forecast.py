"""The forecast tile in Chromium: the real server in a subprocess with four past same weekdays
of history in its store, a board that shows the snapshot's forecast numbers, mirrored in
Hebrew. Skipped without the browser or playwright, except under CI=true (a failure there)."""

from __future__ import annotations

import json
import math
import re
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.test_board_browser import Server, launched, recording_page
from wallboard.fold.counters import HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import IntervalRecord
from wallboard.ingest.historian import to_row
from wallboard.journal import intervals
from wallboard.kpi.erlang import agents_needed

TOKEN = "secret-token"
OFFERED_PER_INTERVAL = 4.0  # on every past weekday: the forecast of each interval
AHT_S = 180.0
THRESHOLD_S, TARGET = 30.0, 0.8
CONFIG = """\
site: {name: Forecast site, timezone: UTC, locale: %(locale)s}
server: {push_interval_ms: 100}
queues:
  sales: {label: Sales, channel: voice, service_level: {threshold_s: 30, target: 0.8}}
sources:
  hook: {type: webhook, token: secret-token}
journal: {data_dir: "%(data_dir)s"}
boards:
  fc:
    title: Forecast
    columns: 2
    tiles:
      - {type: forecast, queue: sales, cols: 2}
      - {kpi: waiting, queue: sales}
"""
BIDI = re.compile("[\u2068\u2069\u200e\u200f\u061c]")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def seed_history(data_dir: Path, now: float) -> None:
    """Every 15 minutes of the same weekday 1 to 4 weeks ago: 4 offered, 4 handled at 180 s."""
    data_dir.mkdir(parents=True)
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for week in range(1, 5):
        midnight = int((today - timedelta(days=7 * week)).timestamp())
        for k in range(96):
            counters = {OFFERED: OFFERED_PER_INTERVAL, HANDLED: 4.0, HANDLE_SUM: 4 * AHT_S}
            rows.append(to_row(IntervalRecord(midnight + 900 * k, "queue", "sales", "voice",
                                              counters, [{}, {}, {}, {}])))
    with sqlite3.connect(data_dir / "journal.sqlite3") as con:
        intervals.create(con)
        con.isolation_level = None  # store() runs its own transaction
        intervals.store(con, rows, True, None)


def start(tmp_path: Path, locale: str) -> Server:
    data_dir = tmp_path / f"data-{locale}"
    seed_history(data_dir, time.time())
    config = tmp_path / f"wallboard-{locale}.yaml"
    config.write_text(CONFIG % {"locale": locale, "data_dir": data_dir}, encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Server(config, port, tmp_path / f"server-{locale}.log")
    server.start()
    now = time.time()
    server.post_events([{"type": "contact.queued", "id": f"q{i}", "ts": now - 30 + i,
                         "queue": "sales", "channel": "voice", "contact_id": f"c{i}"}
                        for i in range(3)])
    return server


def block(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/api/snapshot", timeout=5) as resp:
        return dict(json.load(resp)["forecast_today"]["queues"]["sales"])


def shown(page: Any) -> dict[str, Any]:
    """The tile's texts (bidi marks removed) and where its two numbers sit."""
    out = page.evaluate("""() => {
      const tile = document.querySelector('[data-type="forecast"]');
      const box = s => tile.querySelector(s).getBoundingClientRect();
      return {actual: tile.querySelector('.stat--actual .stat__num').textContent,
              expected: tile.querySelector('.stat--expected .stat__num').textContent,
              sub: tile.querySelector('.tile__sub').textContent,
              plan: tile.querySelector('.tile__plan').textContent,
              actual_x: box('.stat--actual').x, expected_x: box('.stat--expected').x,
              dir: document.documentElement.dir};
    }""")
    return {k: BIDI.sub("", v) if isinstance(v, str) else v for k, v in out.items()}


def whole(value: float) -> set[str]:
    """How a count may be shown: rounded either way (the forecast grows every second)."""
    return {f"{math.floor(value):,}", f"{math.ceil(value):,}"}


@pytest.mark.parametrize("locale", ["en", "he"])
def test_the_forecast_tile_shows_the_snapshots_numbers_and_mirrors(
        browser: Any, tmp_path: Path, locale: str) -> None:
    server = start(tmp_path, locale)
    try:
        with recording_page(browser, 1280, 720) as page:
            page.goto(f"{server.url}/board/fc")
            page.wait_for_function(
                "window.wallboard && window.wallboard.state"
                "['forecast_today.queues.sales.offered_so_far'] === 3", timeout=15_000)
            page.wait_for_function(
                "document.querySelector('[data-type=\"forecast\"] .stat--actual .stat__num')"
                ".textContent === '3'", timeout=5_000)
            seen = shown(page)
            want = block(server)
    finally:
        server.stop()
    assert want["offered_so_far"] == 3
    assert seen["actual"] == "3"
    assert seen["expected"] in whole(want["forecast_so_far"]), (seen, want)
    rest = re.search({"en": r"rest of day (\d+)", "he": r"יתרת היום (\d+)"}[locale], seen["plan"])
    assert rest and rest.group(1) in whole(want["forecast_rest"]), (seen, want)
    # The day's forecast is the seeded mean, independently of the server's arithmetic.
    assert want["forecast_day"] == pytest.approx(96 * OFFERED_PER_INTERVAL)
    nxt = want["next"]
    if datetime.fromtimestamp(nxt["start"], UTC).date() == datetime.now(UTC).date():
        expected = agents_needed(OFFERED_PER_INTERVAL / 900, AHT_S, THRESHOLD_S, TARGET).agents
        assert nxt["agents_needed"] == expected and nxt["aht_s"] == AHT_S
        at = datetime.fromtimestamp(nxt["start"], UTC)  # as the clock tile: 12 h in English
        hhmm = at.strftime("%I:%M %p" if locale == "en" else "%H:%M")
        need = {"en": f"need {expected} agents at {hhmm}",
                "he": f"נדרשים {expected} נציגים ב-{hhmm}"}
        assert need[locale] in seen["plan"], seen
    if want["forecast_so_far"]:
        assert ("vs forecast" if locale == "en" else "מול התחזית") in seen["sub"], seen
    # Mirrored: offered is the first number, on the left in English and the right in Hebrew.
    if locale == "he":
        assert seen["dir"] == "rtl" and seen["actual_x"] > seen["expected_x"], seen
    else:
        assert seen["dir"] in ("", "ltr") and seen["actual_x"] < seen["expected_x"], seen
