"""Soak: the board's JS heap and DOM stay flat under a long run of updates, in chromium.

About 90 s of updates every 30-50 ms (with sparklines, the queue table, announcements and alerts all
changing) stand for a 30-minute TV session at one update per second. The heap is read after a
forced garbage collection through the DevTools protocol: after a 30 s warm-up, then every 15 s;
the median of the last three readings must stay within 10 % of the first. (A 300 s run by hand,
WALLBOARD_SOAK_S=300, plateaued at +5 %.) Skipped without chromium/playwright
except under CI=true.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_board_browser import Server, _free_port
from tests.test_board_tv import ADMIN, ALL_TILES, TOKEN, browser  # noqa: F401 (fixture)

SOAK_S = float(os.environ.get("WALLBOARD_SOAK_S", "90"))  # longer by hand: e.g. 3600
WARMUP_S = 30.0  # JIT settled and the page's bounded lists (alerts, sparklines) full
UPDATES = 1800  # 30 minutes at one update per second


def traffic(srv: Server, stop: threading.Event) -> dict[str, int]:
    """Contacts arriving, answered or abandoned, agents moving, surveys and announcements."""
    rng = random.Random(7)
    counts = {"requests": 0, "events": 0}
    serial = 0
    waiting: list[tuple[str, str]] = []
    while not stop.is_set():
        now = time.time()
        batch: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 4)):
            serial += 1
            queue = rng.choice(["sales", "support"])
            batch.append({"type": "contact.queued", "id": f"q{serial}", "ts": now,
                          "queue": queue, "contact_id": f"c{serial}"})
            waiting.append((queue, f"c{serial}"))
        while len(waiting) > rng.randint(0, 12):
            queue, contact = waiting.pop(0)
            kind = rng.choice(["contact.answered", "contact.answered", "contact.abandoned"])
            batch.append({"type": kind, "id": f"l{contact}", "ts": now, "queue": queue,
                          "contact_id": contact, "wait_s": rng.uniform(1, 60)})
        batch.append({"type": "agent.state", "id": f"a{serial}", "ts": now,
                      "agent": f"ag{rng.randint(1, 8)}", "queues": ["sales", "support"],
                      "state": rng.choice(["available", "busy", "wrapup", "away"])})
        batch.append({"type": "survey.response", "id": f"s{serial}", "ts": now,
                      "queue": "sales", "kind": "csat", "score": rng.randint(1, 5)})
        srv.post_events(batch)
        counts["requests"] += 1
        counts["events"] += len(batch)
        if counts["requests"] % 40 == 0:
            request = urllib.request.Request(
                f"{srv.url}/api/announcements", method="POST",
                data=json.dumps({"text": f"Update {serial} <b>x</b>", "ttl_s": 2}).encode(),
                headers={"Authorization": f"Bearer {ADMIN}"})
            urllib.request.urlopen(request, timeout=5).close()
        stop.wait(0.03)
    return counts


@pytest.mark.timeout(SOAK_S + 120)
def test_heap_and_dom_stay_flat_over_a_long_run_of_updates(browser: Any,  # noqa: F811
                                                           tmp_path: Path) -> None:
    config = {
        "site": {"name": "Soak", "timezone": "UTC", "min_survey_sample": 1},
        "server": {"push_interval_ms": 30, "history_step_s": 0.05},
        "queues": {"sales": {"label": "Sales", "legal_rules": [
            {"name": "six", "limit_s": 360, "warn_s": 30}]}, "support": {"label": "Support"}},
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        "journal": {"data_dir": str(tmp_path / "data"), "sync": "normal"},
        "access": {"admin_token": ADMIN},
        "boards": {"all": {"columns": 4, "tiles": ALL_TILES}},
    }
    path = tmp_path / "soak.yaml"
    path.write_text(yaml.safe_dump(config))
    srv = Server(path, _free_port(), tmp_path / "server.log")
    srv.start()
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    stop = threading.Event()
    result: dict[str, dict[str, int]] = {}
    driver = threading.Thread(target=lambda: result.update(t=traffic(srv, stop)), daemon=True)
    try:
        page.goto(f"{srv.url}/board/all")
        page.wait_for_function("window.wallboard && window.wallboard.connected", timeout=10_000)
        cdp = context.new_cdp_session(page)
        cdp.send("HeapProfiler.enable")
        seq_start = page.evaluate("window.wallboard.seq")

        def heap() -> tuple[float, int]:
            cdp.send("HeapProfiler.collectGarbage")
            cdp.send("HeapProfiler.collectGarbage")
            used = cdp.send("Runtime.getHeapUsage")["usedSize"]
            return used, page.evaluate("document.getElementsByTagName('*').length")

        driver.start()
        started = time.monotonic()
        time.sleep(WARMUP_S)  # the first sparkline fill, caches and JIT settle
        base_heap, base_nodes = heap()
        samples = [base_heap]
        while time.monotonic() - started < SOAK_S:
            time.sleep(15)
            samples.append(heap()[0])
        # The median of the last three readings: one GC-timing spike does not decide, a leak
        # (which only grows) does.
        final_heap = statistics.median(samples[-3:])
        final_nodes = page.evaluate("document.getElementsByTagName('*').length")
        updates = page.evaluate("window.wallboard.seq") - seq_start
        alerts = page.evaluate("window.wallboard.alerts.length")
    finally:
        stop.set()
        driver.join(timeout=10)
        context.close()
        srv.stop()
    print(f"\nsoak: {updates} updates applied in {SOAK_S:.0f} s "
          f"({result.get('t')}); JS heap after GC: base {base_heap / 1e6:.2f} MB, "
          f"samples {[round(s / 1e6, 2) for s in samples]} MB, final {final_heap / 1e6:.2f} MB "
          f"({final_heap / base_heap:.3f}x); DOM nodes {base_nodes} -> {final_nodes}; "
          f"alerts kept {alerts}")
    assert errors == []
    # Tiles went red and back (waiting crosses 3 both ways); the page keeps the last 20 only.
    assert 0 < alerts <= 20
    # 80 %: a loaded CI machine may push fewer than the ~2,500 this rate gives when idle.
    assert updates >= UPDATES * 0.8, "too few updates to judge"
    assert final_heap <= base_heap * 1.10, "the JS heap grew by more than 10 %"
    assert final_nodes == base_nodes, "DOM nodes leak"
