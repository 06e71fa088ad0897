"""`python -m wallboard serve` in a subprocess for the journal tests: start, kill -9, restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from tests.conftest import TOKEN, free_port

REPO = Path(__file__).resolve().parents[1]


def midday_zone(now: float | None = None) -> str:
    """An Etc/GMT zone where it is about noon now: 'today' cannot roll over during a test."""
    hour = datetime.fromtimestamp(now or time.time(), UTC).hour
    offset = 12 - hour  # -11 .. +12 hours east of UTC
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs are inverted


def journal_config(data_dir: Path, **journal: Any) -> dict[str, Any]:
    """A site with two queues, a webhook and a journal in `data_dir`."""
    return {
        "site": {"name": "Journal test", "timezone": midday_zone(), "min_survey_sample": 1},
        "server": {"push_interval_ms": 50},
        "queues": {"sales": {"channel": "voice"}, "chat": {"channel": "chat"}},
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        "journal": {"data_dir": str(data_dir), "batch_ms": 5, "retry_s": 0.5, **journal},
    }


class ServerProcess:
    """One server process on a fixed port, so that it can be killed and started again."""

    def __init__(self, workdir: Path, config: dict[str, Any],
                 preexec: Callable[[], None] | None = None) -> None:
        self.workdir = workdir
        self.config_path = workdir / "wallboard.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.preexec = preexec
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"server-{self.starts}.log"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (cwd: the work dir, never the repo)."""
        self.starts += 1
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wallboard", "serve", "--config", str(self.config_path),
                 "--port", str(self.port)],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=self.preexec)
        return self.proc

    async def start(self, timeout: float = 30.0) -> None:
        """Start and wait until /healthz answers; fail with the log if it exits."""
        proc = self.spawn()
        deadline = time.monotonic() + timeout
        # Each probe bounded: a server that accepts but never answers must not hold the test.
        probe = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=probe) as http:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited with {proc.returncode}:\n"
                                         f"{self.log.read_text()}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        self.kill()
        raise AssertionError(f"server not healthy within {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to end; its return code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    async def post(self, http: aiohttp.ClientSession, events: Any
                   ) -> tuple[int, Any, dict[str, str]]:
        """POST events to the webhook: (status, body, headers)."""
        async with http.post(f"{self.url}/api/events", data=orjson.dumps(events),
                             headers={"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/json"}) as resp:
            return resp.status, await resp.json(), dict(resp.headers)

    async def snapshot(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """GET /api/snapshot."""
        async with http.get(f"{self.url}/api/snapshot") as resp:
            assert resp.status == 200
            return await resp.json()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `wallboard ARGS --config <this server's config>`."""
        return subprocess.run([sys.executable, "-m", "wallboard", *args, "--config",
                               str(self.config_path)], capture_output=True, text=True,
                              timeout=60, cwd=self.workdir)
