"""A source's designed delay is noted on the tiles it feeds, in Debian's chromium.

Zendesk's exports leave out the last minute (`lag_s` 60): the board's ticket tile for the queue
Zendesk feeds says so next to its window, a tile fed only by the webhook does not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import TOKEN
from tests.test_board_browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.test_zendesk_live import NOW_IN_RECORDING, wait_for_snapshot, zendesk_config
from tests.zendesk_peer import ZendeskPeer
from wallboard.kit.source import parse_time


async def test_the_export_lag_is_noted_on_the_tile_of_the_queue_it_feeds(
        live_server: Any, tmp_path: Path) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    now = time.time()
    async with ZendeskPeer(shift_s=now - parse_time(NOW_IN_RECORDING)) as peer:
        peer.stage(1)
        config = zendesk_config(peer.url, tmp_path)
        config["queues"]["sales"] = {"label": "Sales", "channel": "voice"}
        config["sources"]["hook"] = {"type": "webhook", "token": TOKEN}
        config["boards"] = {"ops": {"columns": 2, "tiles": [
            {"type": "tickets", "queue": "support"},
            {"kpi": "waiting", "queue": "sales"}]}}
        live = await live_server(config)
        await wait_for_snapshot(live, lambda q: q["live"]["tickets_open"] > 0, "the export")
        status, _ = await live.post([{"type": "contact.queued", "id": "c1", "ts": time.time(),
                                      "queue": "sales", "channel": "voice",
                                      "contact_id": "call-1"}])
        assert status == 202
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                await page.goto(f"{live.url}/board/ops")
                windows = page.locator(".tile .tile__window")
                await page.wait_for_function(
                    "() => document.querySelector('.tile .tile__window')"
                    ".textContent.includes('behind')", timeout=10_000)
                ticket_caption, sales_caption = await windows.all_text_contents()
            finally:
                await browser.close()
    # Interpolated values come wrapped in Unicode isolates (for right-to-left boards).
    assert ticket_caption.translate({0x2068: None, 0x2069: None}) == "live · ≈1 min behind"
    assert "behind" not in sales_caption, sales_caption
