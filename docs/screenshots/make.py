"""Regenerate the board screenshots in this folder from the embedded demo (`wallboard serve`).

Runs `wallboard serve` with no configuration, exactly as the README starts it, lets the
sparklines fill, and photographs the demo's floor board in English, Hebrew and Arabic with
Debian's chromium through Playwright (never a downloaded browser):

    .venv/bin/python docs/screenshots/make.py [--size 1920x1080] [--wait 125] [--out DIR]
"""

from __future__ import annotations

import argparse
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
# The demo's boards (wallboard/config/demo.yaml) and the file each is saved as.
SHOTS = (("floor", "board-en"), ("floor_he", "board-he"), ("floor_ar", "board-ar"))


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--wait", type=float, default=125.0,
                        help="seconds to let the sparklines fill (the demo samples every 2 s)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        url = f"http://127.0.0.1:{port}"
        # No --config: the embedded demo, in an empty folder (it writes nothing there).
        server = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--port",
                                   str(port)], cwd=tmp)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            time.sleep(args.wait)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": width, "height": height})
                for board, name in SHOTS:
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
