"""A plugin outside plugins/, found only through entry-point metadata, works like ours."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import now
from tests.wsclient import BoardClient

PLUGIN_SOURCE = '''
"""A third-party source: emits one queued contact per run."""
from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from wallboard import hookimpl
from wallboard.kit.source import Source, SourceConfig


class TickConfig(SourceConfig):
    queue: str


class TickSource(Source):
    type: ClassVar[str] = "acme_tick"
    Config: ClassVar[type[SourceConfig]] = TickConfig

    async def run(self, emit):
        self.connected()
        emit({"type": "contact.queued", "id": "acme-1", "ts": time.time(),
              "queue": self.config.queue, "contact_id": "acme-c1"})
        await asyncio.Event().wait()


@hookimpl
def register_source_types():
    return [TickSource]
'''


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A directory holding a module and its dist-info with a `wallboard` entry point."""
    (tmp_path / "acme_wallboard.py").write_text(PLUGIN_SOURCE)
    dist = tmp_path / "acme_wallboard-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-wallboard\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[wallboard]\nacme = acme_wallboard\n")
    return tmp_path


def test_wallboard_plugins_lists_third_party_plugin(plugin_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path])}
    result = subprocess.run([sys.executable, "-m", "wallboard", "plugins"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "acme 1.2.3: source types: acme_tick; hooks: register_source_types" in result.stdout
    assert "webhook" in result.stdout and "simulator" in result.stdout


async def test_config_can_use_third_party_source_type(plugin_dir: Path, live_server,
                                                      monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_dir))
    started = now()
    live = await live_server({
        "queues": {"orders": {"channel": "chat"}},
        "sources": {"tick": {"type": "acme_tick", "queue": "orders"}},
    })
    async with BoardClient(f"{live.ws_url}/ws?board=overview") as board:
        await board.wait_for(lambda s: s.get("queues.orders.live.waiting") == 1)
        assert board.state["sources.tick.status"] == "up"
        assert board.state["queues.orders.sources"] == "tick"
        assert board.state["sources.tick.last_event_ts"] >= started
