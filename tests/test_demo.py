"""The README's first command: the demo serves a live board, websocket and /metrics."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.wsclient import BoardClient

ROOT = Path(__file__).resolve().parents[1]
# The tile types of the README's screenshot (docs/screenshots/board-en.png).
README_TILES = {"number", "ring", "sparkline", "queue_table", "agents", "staffing", "legal",
                "survey", "tickets", "announcements", "clock"}
FAMILIES = {
    "wallboard_queue_contacts_waiting", "wallboard_queue_oldest_contact_age_seconds",
    "wallboard_agents", "wallboard_contacts_offered", "wallboard_contacts_answered",
    "wallboard_contacts_abandoned", "wallboard_queue_wait_seconds",
    "wallboard_window_service_level_ratio", "wallboard_source_up",
    "wallboard_source_last_event_timestamp_seconds", "wallboard_websocket_clients",
    "wallboard_events_rejected",
}


@pytest.fixture
def demo() -> Iterator[tuple[str, float]]:
    """`wallboard serve` with no config, as the README starts it, on a free port."""
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield f"127.0.0.1:{port}", started
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0 or proc.returncode == -15, out.decode()[-2000:]


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install . && .venv/bin/wallboard serve" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert test_command in readme


def test_readme_apt_line_is_the_list_ci_installs() -> None:
    """The README's apt-get line names exactly the packages .ci/run's script installs."""
    readme = (ROOT / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("sudo apt-get install "))
    script = (ROOT / "scripts" / "system-packages.sh").read_text()
    listed = script.split("PACKAGES=(", 1)[1].split(")", 1)[0].split()
    assert sorted(line.removeprefix("sudo apt-get install ").split()) == sorted(listed)
    assert "scripts/system-packages.sh" in (ROOT / ".ci" / "run").read_text()


async def test_demo_board_loads_within_5s_and_its_numbers_change(demo) -> None:
    address, started = demo
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://{address}/board/floor") as resp:
                    if resp.status == 200:
                        page = await resp.text()
                        break
            except aiohttp.ClientConnectorError:
                pass
            assert time.monotonic() - started < 5, "demo board did not load within 5 s"
            await asyncio.sleep(0.05)
        assert "board-config" in page
        async with BoardClient(f"ws://{address}/ws?board=floor") as board:
            first = await board.receive()
            assert first["type"] == "snapshot"
            # The simulator warms up with the last two hours: numbers are there at once.
            ready = await board.wait_for(lambda s: s["sources.demo.status"] == "up"
                                         and s["total.15m.offered"] > 0, timeout=5)
            assert ready - started < 5
            watched = ("total.today.offered", "total.live.waiting", "total.live.oldest_wait_s",
                       "total.live.agents_available", "total.today.answered")
            before = {k: board.state[k] for k in watched}
            await board.wait_for(lambda s: any(s[k] != v for k, v in before.items()), timeout=20)
        async with session.get(f"http://{address}/metrics") as resp:
            text = await resp.text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names >= FAMILIES, FAMILIES - names


async def _get(session: aiohttp.ClientSession, url: str, started: float,
               budget_s: float = 20.0) -> str:
    """GET a page of the demo once it answers (the 5 s promise is checked above)."""
    while True:
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return await resp.text()
        except aiohttp.ClientConnectorError:
            pass
        assert time.monotonic() - started < budget_s, f"{url} did not answer in {budget_s} s"
        await asyncio.sleep(0.05)


def _board_config(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="board-config">(.*?)</script>', page,
                      re.S)
    assert match, "no board-config in the page"
    return json.loads(match.group(1))


async def test_the_demo_serves_the_readme_board_first_with_a_hebrew_board_and_a_playlist(
        demo) -> None:
    address, started = demo
    async with aiohttp.ClientSession() as session:
        index = await _get(session, f"http://{address}/", started)
        links = re.findall(r'href="(/(?:board|play)/[^"]+)"', index)
        assert links[0] == "/board/floor", links
        assert "/board/floor_he" in links and any(x.startswith("/play/") for x in links)
        floor = _board_config(await _get(session, f"http://{address}/board/floor", started))
        hebrew = _board_config(await _get(session, f"http://{address}/board/floor_he", started))
    assert {t["type"] for t in floor["tiles"]} >= README_TILES
    assert hebrew["locale"] == "he"
    site = "Demo contact center"
    assert not [t["label"] for t in floor["tiles"] if site in t["label"]]


async def test_the_demo_counts_its_warm_up_and_its_windows_differ(demo) -> None:
    """No warm-up event is dropped as late; 15 min, 1 h and today hold different totals."""
    address, started = demo
    async with aiohttp.ClientSession() as session:
        await _get(session, f"http://{address}/healthz", started)
        async with BoardClient(f"ws://{address}/ws?board=floor") as board:
            await board.receive()
            # The whole warm-up is in once the 1 h window holds more than 15 min's worth.
            state = await board.wait_for(
                lambda s: s["sources.demo.status"] == "up" and s["total.1h.offered"]
                > 2 * s["total.15m.offered"] > 0, timeout=20)
            await asyncio.sleep(1.0)
            state = board.state
    assert state["meta.late_events"] == 0
    offered = [state[f"total.{w}.offered"] for w in ("15m", "1h", "today")]
    assert offered[0] < offered[1] and offered[1] != offered[2], offered
    texts = [a["text"] for a in state["announcements.floor"]]
    assert texts, "the floor board has no announcement at start"


def test_configured_announcements_name_configured_boards() -> None:
    from wallboard.config.settings import ConfigError, parse_settings

    board = {"tiles": [{"kpi": "waiting"}]}
    ok = parse_settings({"boards": {"floor": board},
                         "announcements": [{"text": "Drill at 3", "ttl_s": 60}]})
    assert ok.announcements[0].boards == []
    with pytest.raises(ConfigError, match=r"announcements\[0\]\.boards\[0\]: unknown board"):
        parse_settings({"boards": {"floor": board},
                        "announcements": [{"text": "x", "ttl_s": 60, "boards": ["flor"]}]})
    with pytest.raises(ConfigError, match="ttl_s"):
        parse_settings({"announcements": [{"text": "x", "ttl_s": 8 * 86400}]})
