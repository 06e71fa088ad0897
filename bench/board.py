"""Benchmark: the TV board's cost in Debian's chromium: JS time per update, heap and DOM over time.

Starts `wallboard serve` with a board of every tile type, posts contact, agent and survey events
at a steady rate, and measures in the page: the time each websocket message takes to apply and
paint (scripting only), the JS heap after forced GC at the start and end, and DOM nodes.

    .venv/bin/python bench/board.py [--seconds 120] [--rate 20] [--size 1920x1080] [--quick]
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
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from benchio import free_port, write_report

CHROMIUM = os.environ.get("WALLBOARD_CHROMIUM", "/usr/bin/chromium")
TOKEN = "bench-token-0123456789"
TARGET_P95_MS = 16.0  # one frame at 60 Hz: an update never makes the board stutter
TARGET_HEAP_GROWTH = 0.10
TILES = [
    {"kpi": "waiting", "thresholds": {"warn": 4, "crit": 8}},
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
# Times each message handler in a fixed ring (no growth of its own), read by the bench.
PROBE = """
window.__cost = new Float64Array(65536); window.__n = 0;
const desc = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage');
Object.defineProperty(WebSocket.prototype, 'onmessage', {
  configurable: true,
  get() { return desc.get.call(this); },
  set(fn) {
    desc.set.call(this, fn && function (ev) {
      const t0 = performance.now();
      fn.call(this, ev);
      window.__cost[window.__n++ % 65536] = performance.now() - t0;
    });
  },
});
"""


def _post(url: str, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(f"{url}/api/events", data=json.dumps(events).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}"}, method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def _traffic(url: str, rate: float, stop: threading.Event, sent: list[int]) -> None:
    rng = random.Random(1)
    waiting: list[tuple[str, str]] = []
    serial = 0
    while not stop.is_set():
        now = time.time()
        serial += 1
        queue = rng.choice(["sales", "support"])
        batch = [{"type": "contact.queued", "id": f"q{serial}", "ts": now, "queue": queue,
                  "contact_id": f"c{serial}"},
                 {"type": "agent.state", "id": f"a{serial}", "ts": now,
                  "agent": f"ag{rng.randint(1, 8)}", "queues": ["sales", "support"],
                  "state": rng.choice(["available", "busy", "wrapup", "away"])}]
        waiting.append((queue, f"c{serial}"))
        while len(waiting) > rng.randint(0, 10):
            q, contact = waiting.pop(0)
            batch.append({"type": rng.choice(["contact.answered", "contact.abandoned"]),
                          "id": f"l{contact}", "ts": now, "queue": q, "contact_id": contact,
                          "wait_s": rng.uniform(1, 60)})
        _post(url, batch)
        sent[0] += len(batch)
        stop.wait(1 / rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=20.0, help="event batches per second")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--quick", action="store_true", help="a 15 s smoke run")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "board.json")
    args = parser.parse_args()
    seconds = 15.0 if args.quick else args.seconds
    width, height = (int(n) for n in args.size.split("x"))
    started = time.perf_counter()
    report: dict[str, Any] = {"load_average_at_start": round(os.getloadavg()[0], 2),
                              "seconds": seconds, "rate": args.rate, "size": args.size}
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "site": {"name": "Bench", "min_survey_sample": 1},
            "server": {"push_interval_ms": 50, "history_step_s": 1},
            "queues": {"sales": {"label": "Sales", "legal_rules": [
                {"name": "six", "limit_s": 360}]}, "support": {"label": "Support"}},
            "sources": {"hook": {"type": "webhook", "token": TOKEN}},
            "journal": {"data_dir": str(Path(tmp) / "data"), "sync": "normal"},
            "boards": {"all": {"columns": 4, "tiles": TILES}},
        }
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--config",
                                   str(path), "--port", str(port)], cwd=tmp,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = threading.Event()
        sent = [0]
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                page.add_init_script(PROBE)
                page.goto(f"{url}/board/all")
                page.wait_for_function("window.wallboard && window.wallboard.connected")
                cdp = context.new_cdp_session(page)

                def heap() -> float:
                    cdp.send("HeapProfiler.collectGarbage")
                    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6

                driver = threading.Thread(target=_traffic, args=(url, args.rate, stop, sent))
                driver.start()
                time.sleep(min(10.0, seconds / 3))  # warm-up: JIT, first sparkline points
                heap_start, seq_start = heap(), page.evaluate("window.wallboard.seq")
                nodes_start = page.evaluate("document.getElementsByTagName('*').length")
                page.evaluate("window.__n = 0")
                measured = time.monotonic()
                time.sleep(seconds)
                window_s = time.monotonic() - measured
                costs = page.evaluate(
                    "Array.from(window.__cost.slice(0, Math.min(window.__n, 65536)))")
                updates = page.evaluate("window.wallboard.seq") - seq_start
                heap_end = heap()
                nodes_end = page.evaluate("document.getElementsByTagName('*').length")
                stop.set()
                driver.join()
                browser.close()
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=10)
    costs.sort()
    p95 = costs[int(len(costs) * 0.95)] if costs else 0.0
    report.update({
        "events_sent": sent[0], "updates_applied": updates,
        "updates_per_s": round(updates / window_s, 1),
        "js_ms_per_message": {"mean": round(statistics.fmean(costs), 3) if costs else None,
                              "p95": round(p95, 3), "max": round(costs[-1], 3) if costs else None},
        "heap_mb": {"start": round(heap_start, 3), "end": round(heap_end, 3),
                    "growth": round(heap_end / heap_start - 1, 4)},
        "dom_nodes": {"start": nodes_start, "end": nodes_end},
    })
    print(f"board at {args.size}: {updates} updates in {window_s:.0f} s "
          f"({report['updates_per_s']}/s, {sent[0]} events posted)")
    print(f"JS per message: mean {report['js_ms_per_message']['mean']} ms, p95 {p95:.3f} ms, "
          f"max {report['js_ms_per_message']['max']} ms   TARGET p95 < {TARGET_P95_MS} ms: "
          f"{'met' if p95 < TARGET_P95_MS else 'MISSED'}")
    growth = heap_end / heap_start - 1
    print(f"JS heap after GC: {heap_start:.2f} -> {heap_end:.2f} MB ({growth:+.1%})   "
          f"TARGET growth < {TARGET_HEAP_GROWTH:.0%}: "
          f"{'met' if growth < TARGET_HEAP_GROWTH else 'MISSED'}; "
          f"DOM nodes {nodes_start} -> {nodes_end}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
