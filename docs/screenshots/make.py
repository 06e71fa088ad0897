"""Regenerate the board screenshots in this folder: default (English), Hebrew and Arabic.

Runs `wallboard serve` on the simulator with the configuration below and photographs each board
with Debian's chromium through Playwright (never a downloaded browser):

    .venv/bin/python docs/screenshots/make.py [--size 1920x1080] [--wait 35] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("WALLBOARD_CHROMIUM", "/usr/bin/chromium")

TILES = """
      - {kpi: waiting, thresholds: {warn: 6, crit: 10}}
      - {kpi: oldest_wait_s, thresholds: {warn: 60, crit: 120}}
      - {type: ring, window: 15m, thresholds: {direction: low_bad, warn: 0.8, crit: 0.7}}
      - {type: sparkline, kpi: offered, window: 15m, cols: 2}
      - {type: queue_table, window: 15m, cols: 2, rows: 2, thresholds: {}}
      - {type: agents}
      - {type: staffing, queue: support}
      - {type: legal, queue: support}
      - type: survey
        kpi: csat
        window: 1h
        thresholds: {direction: low_bad, warn: 0.8, crit: 0.7}
      - {kpi: abandon_rate, window: 1h, thresholds: {warn: 0.05, crit: 0.1}}
      - {type: tickets, queue: email}
      - {kpi: answered, window: today}
      - {type: announcements, cols: 3}
      - {type: clock}
"""

CONFIG = f"""
site: {{name: Demo contact center, timezone: Asia/Jerusalem, locale: en, min_survey_sample: 5}}
server: {{history_step_s: 0.5}}
journal: {{enabled: false}}
queues:
  sales: {{label: Sales, channel: voice}}
  support:
    label: Support
    channel: voice
    legal_rules: [{{name: six_minutes, limit_s: 360, warn_s: 300}}]
  chat: {{label: Chat, channel: chat, service_level: {{threshold_s: 60}}}}
  email: {{label: Email, channel: email, service_level: {{threshold_s: 3600, short_abandon_s: 0}}}}
sources:
  demo: {{type: simulator, warmup_s: 3600, seed: 7}}
access: {{admin_token: screenshot-admin-token}}
boards:
  floor:
    title: Floor
    columns: 5
    tiles: {TILES}
  floor_he:
    title: רצפה
    locale: he
    columns: 5
    tiles: {TILES}
  floor_ar:
    title: القاعة
    locale: ar
    columns: 5
    tiles: {TILES}
"""

NOTES = {"floor": "Lunch rush: two extra agents join Sales at 12:30",
         "floor_he": "עומס צהריים: שני נציגים נוספים מצטרפים למכירות ב-12:30",
         "floor_ar": "ذروة الظهيرة: ينضم وكيلان إضافيان إلى المبيعات الساعة 12:30"}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _announce(url: str, text: str, board: str) -> None:
    body = json.dumps({"text": text, "ttl_s": 3600, "boards": [board]}).encode()
    request = urllib.request.Request(f"{url}/api/announcements", data=body, method="POST",
                                     headers={"Authorization": "Bearer screenshot-admin-token"})
    urllib.request.urlopen(request, timeout=5).close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--wait", type=float, default=35.0, help="seconds of history to collect")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "boards.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        port = _port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--config",
                                   str(config), "--port", str(port)], cwd=tmp)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for board, text in NOTES.items():
                _announce(url, text, board)
            time.sleep(args.wait)  # let the sparklines fill
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": width, "height": height})
                for board, name in (("floor", "board-en"), ("floor_he", "board-he"),
                                    ("floor_ar", "board-ar")):
                    page.goto(f"{url}/board/{board}")
                    page.wait_for_function("window.wallboard && window.wallboard.connected")
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(out / f"{name}.png"))
                    print(f"wrote {out / (name + '.png')}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
