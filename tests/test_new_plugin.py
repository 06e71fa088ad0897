"""`wallboard new-plugin` writes a package that installs, passes its tests and feeds a board."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.wsclient import BoardClient
from wallboard.kit.testing import HttpReplay, ReplayPeer

CONTRACT = ("test_config_model_accepts_the_declared_config",
            "test_config_model_rejects_bad_values_with_clear_messages",
            "test_every_emitted_event_is_valid",
            "test_reports_status_when_its_peer_drops_and_returns",
            "test_stops_cleanly_and_quickly_when_cancelled",
            "test_never_blocks_the_event_loop",
            "test_survives_malformed_payloads_from_its_peer")


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run a command with this interpreter; fail with its output when it fails."""
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120, env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def install(project: Path, site: Path) -> None:
    """pip-install the project into `site` (kept out of the test venv, offline, no deps)."""
    run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
        "--target", str(site), str(project))


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """`wallboard new-plugin demo_source`, pip-installed into a directory of its own."""
    tmp = tmp_path_factory.mktemp("new-plugin")
    result = run("-m", "wallboard", "new-plugin", "demo_source", "--dir", str(tmp))
    assert "wrote" in result.stdout
    project, site = tmp / "demo_source", tmp / "site"
    install(project, site)
    yield project, site


def test_generated_package_has_entry_point_source_config_fixture_and_tests(
        demo_source: tuple[Path, Path]) -> None:
    project, site = demo_source
    pyproject = (project / "pyproject.toml").read_text()
    assert '[project.entry-points.wallboard]\ndemo_source = "wallboard_demo_source"' in pyproject
    assert (project / "tests" / "fixtures" / "recording.json").is_file()
    points = next(site.glob("wallboard_demo_source-0.1.0.dist-info")) / "entry_points.txt"
    assert "demo_source = wallboard_demo_source" in points.read_text()


def test_generated_tests_pass_with_the_contract_suite(demo_source: tuple[Path, Path]) -> None:
    project, site = demo_source
    # From the project directory but importing the installed copy: src/ is not on the path.
    result = run("-m", "pytest", "-v", "-p", "no:cacheprovider", cwd=project,
                 env={"PYTHONPATH": str(site)})
    for name in CONTRACT:
        assert f"TestDemoSourceContract::{name} PASSED" in result.stdout, result.stdout


def test_generated_push_plugin_passes_its_tests_and_lint(tmp_path: Path) -> None:
    run("-m", "wallboard", "new-plugin", "acme_stream", "--style", "push", "--dir",
        str(tmp_path))
    project = tmp_path / "acme_stream"
    install(project, tmp_path / "site")
    result = run("-m", "pytest", "-v", "-p", "no:cacheprovider", cwd=project,
                 env={"PYTHONPATH": str(tmp_path / "site")})
    for name in CONTRACT:
        assert f"TestAcmeStreamSourceContract::{name} PASSED" in result.stdout, result.stdout
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select",
                           "E,F,W,I,UP,B,SIM,RUF", "--line-length", "100", "src", "tests"],
                          cwd=project, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout


def test_new_plugin_refuses_a_bad_or_taken_name(tmp_path: Path) -> None:
    for name, message in (("Demo-Source", "lower-case letters"),
                          ("webhook", "already installed")):
        result = subprocess.run([sys.executable, "-m", "wallboard", "new-plugin", name,
                                 "--dir", str(tmp_path)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


async def test_config_with_the_new_source_type_serves_its_events_on_the_board(
        demo_source: tuple[Path, Path], tmp_path: Path) -> None:
    project, site = demo_source
    async with ReplayPeer(HttpReplay(project / "tests" / "fixtures" / "recording.json")) as pbx:
        config = tmp_path / "wallboard.yaml"
        config.write_text(
            "queues:\n  sales: {channel: voice}\n  support: {channel: voice}\n"
            "sources:\n  pbx:\n    type: demo_source\n"
            f"    url: {pbx.url}/api/queues\n    interval_s: 1\n"
            f"journal:\n  data_dir: {tmp_path / 'journal'}\n")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "wallboard", "serve", "--config", str(config), "--port",
             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"})
        try:
            await wait_until_serving(port, server)
            async with BoardClient(f"ws://127.0.0.1:{port}/ws?board=overview") as board:
                await board.wait_for(lambda s: s.get("queues.sales.live.waiting") == 3
                                     and s.get("sources.pbx.status") == "up", timeout=10)
                assert board.state["queues.sales.live.oldest_wait_s"] >= 42
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{port}/api/plugins") as resp:
                plugins = {p["name"]: p for p in await resp.json()}
            assert plugins["demo_source"]["version"] == "0.1.0"
            assert plugins["demo_source"]["source_types"] == ["demo_source"]
            assert pbx.served >= 1 and b"GET /api/queues " in pbx.requests[0]
        finally:
            server.terminate()
            out = server.communicate(timeout=10)[0].decode()
        assert "Traceback" not in out, out


async def wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    """Wait for /healthz, failing early with the server's output if it exits."""
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"server exited: {server.communicate()[0].decode()[-2000:]}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectorError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail("server did not answer /healthz within 15 s")
