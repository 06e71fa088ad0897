"""Benchmark: drawing the /report page in Debian's chromium for a large day.

Starts `wallboard serve`, answers the page's /api/report requests with a generated report
(QUEUES queues at 15 minutes, 96 intervals, today and the same weekday last week, as the API
shapes it) through Playwright's routing, and measures in the page the time from the parsed
answers to a laid-out page (tables, charts, summary; groups off screen are laid out only when
scrolled to). The floor, measured in the same page and run: the same number of table rows and
cells parsed from one HTML string (the nodes alone: no formatting, no chart, no layout).

    .venv/bin/python bench/report_page.py [--queues 50] [--runs 5] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from benchio import figure, free_port, write_report

CHROMIUM = os.environ.get("WALLBOARD_CHROMIUM", "/usr/bin/chromium")
TARGET_MS = 1000.0  # a supervisor's click: the whole day of every queue drawn within a second
COLUMNS = 12
# The floor: the same table rows and cells parsed from one HTML string into a table that is
# not on the page (the nodes the report must create, without formatting, charts or layout).
FLOOR_JS = """rows => {
  const cell = '<td>12</td>'.repeat(COLUMNS);
  const html = '<tbody>' + ('<tr><th>09:00</th>' + cell + '</tr>').repeat(rows) + '</tbody>';
  const t0 = performance.now();
  const table = document.createElement('table');
  table.innerHTML = html;
  return performance.now() - t0;
}""".replace("COLUMNS", str(COLUMNS - 1))
MEASURE_JS = """async () => {
  await report.reload();
  const t0 = performance.now();
  document.body.getBoundingClientRect(); void document.body.offsetHeight;
  return { ms: report.renderMs + performance.now() - t0, js: report.renderMs,
           rows: document.querySelectorAll('#rp-tables tbody tr').length,
           svg: document.querySelectorAll('svg *').length };
}"""


def report_body(day: str, interval: str, queues: int, seed: int) -> dict[str, Any]:
    """An /api/report answer: site and queue rows, every interval of the day with calls."""
    rng = random.Random(seed)
    minutes = 24 * 60 if interval == "1d" else 15
    start = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    names = [f"q{i:02d}" for i in range(queues)]
    rows = []
    for level, queue in [("site", ""), *[("queue", q) for q in names]]:
        for k in range(24 * 60 // minutes):
            begin = start + timedelta(minutes=k * minutes)
            offered = rng.randint(0, 40) * (queues if level == "site" else 1)
            answered = rng.randint(0, offered)
            rows.append({
                "level": level, "queue": queue, "channel": "voice" if queue else "", "team": "",
                "start": begin.isoformat(), "end": (begin + timedelta(minutes=minutes)).isoformat(),
                "offered": offered, "answered": answered, "abandoned": offered - answered,
                "abandoned_short": 0, "asa_s": rng.uniform(0, 90), "aht_s": rng.uniform(60, 600),
                "service_level": rng.random(), "abandon_rate": rng.random() / 4,
                "wait_p50_s": rng.uniform(0, 60), "wait_p90_s": rng.uniform(0, 300),
                "handled": answered, "transfers": 0, "forecast_offered": offered * 1.1})
    return {"timezone": "UTC", "from": day, "to": day, "interval": interval,
            "queues": {q: {"label": q.upper(), "channel": "voice", "sl_target": 0.8,
                           "sl_threshold_s": 20} for q in names}, "rows": rows}


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "wallboard.yaml"
    config.write_text(yaml.safe_dump({
        "site": {"name": "Bench", "timezone": "UTC"},
        "queues": {"sales": {"channel": "voice"}},
        "journal": {"data_dir": str(tmp / "data")}}))
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--config", str(config),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start:\n{(tmp / 'server.log').read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5 queues, 2 runs")
    parser.add_argument("--out", type=Path, default=Path("bench-results/report_page.json"))
    args = parser.parse_args()
    queues, runs = (5, 2) if args.quick else (args.queues, args.runs)
    started = time.perf_counter()
    report: dict[str, Any] = {"bench": "report_page", "queues": queues, "runs": runs,
                              "load_average_at_start": round(os.getloadavg()[0], 2)}
    from playwright.sync_api import sync_playwright

    bodies: dict[tuple[str, str], bytes] = {}

    def answer(route: Any) -> None:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(route.request.url).query)
        key = (q["from"][0], q["interval"][0])
        if key not in bodies:
            bodies[key] = json.dumps(report_body(*key, queues, hash(key) & 0xFFFF)).encode()
        route.fulfill(status=200, content_type="application/json", body=bodies[key])

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.route("**/api/report?*", answer)
                page.goto(url + "/report")
                page.wait_for_function("report.loads >= 1", timeout=60_000)
                drawn, scripts, floors, shape = [], [], [], {}
                for _ in range(runs):
                    shape = page.evaluate(MEASURE_JS)
                    drawn.append(shape["ms"])
                    scripts.append(shape["js"])
                    floors.append(page.evaluate(FLOOR_JS, shape["rows"]))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    value, floor = statistics.median(drawn), statistics.median(floors)
    report.update(drawn_ms=drawn, script_ms=scripts, floor_ms=floors, table_rows=shape["rows"],
                  svg_elements=shape["svg"], day=date.today().isoformat())
    figure(report, f"report page, {queues} queues x 96 intervals drawn", value, "ms",
           floor=floor, floor_name="the same rows parsed from one HTML string",
           target=f"<= {TARGET_MS:.0f} ms", met=value <= TARGET_MS)
    print(f"{queues} queues, {shape['rows']} table rows, {shape['svg']} SVG elements: drawn in "
          f"{value:.0f} ms (median of {runs}); floor {floor:.1f} ms; ratio {value / floor:.1f}; "
          f"TARGET {TARGET_MS:.0f} ms {'met' if value <= TARGET_MS else 'MISSED'}")
    write_report(report, args.out, started)


if __name__ == "__main__":
    main()
