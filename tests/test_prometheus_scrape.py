"""A real Prometheus (Debian package) scrapes a real server: its answers equal /api/snapshot's,
the rules load and evaluate without error, and every dashboard expression runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import free_port, require_program
from tests.opsmetrics import DASHBOARD, RULES, day_events, full_config, rules
from tests.test_prometheus_rules import dashboard_expressions

PROMETHEUS = "/usr/bin/prometheus"


class Prometheus:
    """A prometheus process on a loopback port with its own data dir; /api/v1 helpers."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path,
                 http: aiohttp.ClientSession) -> None:
        self.proc, self.url, self.log, self.http = proc, url, log, http

    async def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/PATH; the `data` of a successful answer."""
        async with self.http.get(f"{self.url}/api/v1/{path}", params=params) as resp:
            body = await resp.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector."""
        data = await self.api("query", query=expr)
        return data["result"]

    async def value(self, expr: str) -> float:
        """The single value of an instant query."""
        result = await self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    async def wait(self, what: str, check: Any, timeout: float = 60) -> Any:
        """Poll an async check until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log.read_text()[-3000:]}"
            found = await check()
            if found:
                return found
            assert time.monotonic() < deadline, f"{what}: not within {timeout}s\n" \
                                                f"{self.log.read_text()[-3000:]}"
            await asyncio.sleep(0.25)


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[Any]:
    """Factory: start prometheus scraping a target every second, with rules.yml loaded."""
    require_program(PROMETHEUS, "Debian package prometheus provides the server")
    started: list[subprocess.Popen[bytes]] = []
    http = aiohttp.ClientSession()

    async def start(target: str) -> Prometheus:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "wallboard",
                                "static_configs": [{"targets": [target]}]}],
        }
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        log = tmp_path / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        server = Prometheus(proc, f"http://127.0.0.1:{port}", log, http)

        async def ready() -> bool:
            try:
                async with http.get(f"{server.url}/-/ready") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await server.wait("prometheus ready", ready)
        return server

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    await http.close()


async def test_prometheus_sees_the_boards_numbers(live_server, prometheus, tmp_path) -> None:
    live = await live_server(full_config(tmp_path / "journal"))
    prom = await prometheus(f"127.0.0.1:{live.server.port}")
    status, body = await live.post(day_events(time.time()))
    assert status == 202 and body["rejected"] == [], body
    scrapes = 'count_over_time(up{job="wallboard"}[1h])'

    async def scraped() -> float | None:
        result = await prom.query(scrapes)
        return float(result[0]["value"][1]) if result else None

    before = await prom.wait("a first scrape", scraped)
    # Two more scrapes: the second of them started after the events were stored.
    await prom.wait("two scrapes after the events",
                    lambda: _at_least(scraped, before + 2))
    snapshot = await live.get_json("/api/snapshot")
    sales = snapshot["queues"]["sales"]
    waiting = await prom.value('wallboard_queue_contacts_waiting{queue="sales"}')
    service_level = await prom.value(
        'wallboard_window_service_level_ratio{queue="sales",window="15m"}')
    assert waiting == sales["live"]["waiting"] == 3
    assert service_level == pytest.approx(sales["15m"]["service_level"])
    assert 0 < service_level < 1
    assert await prom.value('up{job="wallboard"}') == 1

    # The rules load into a real server and each one evaluates without error.
    async def evaluated() -> list[dict[str, Any]] | None:
        groups = (await prom.api("rules"))["groups"]
        found = [rule for group in groups for rule in group["rules"]]
        return found if found and all(r["health"] != "unknown" for r in found) else None

    found = await prom.wait("every rule evaluated", evaluated)
    assert len(found) == len(rules())
    assert [(r["name"], r.get("lastError")) for r in found if r["health"] != "ok"] == []
    available = await prom.value('queue:wallboard_agents_available:sum{queue="sales"}')
    assert available == sales["live"]["agents_available"] == 1

    # Every dashboard expression is valid PromQL against the real server and finds data.
    dashboard = json.loads(DASHBOARD.read_text())
    empty = []
    for expr in dashboard_expressions(dashboard):
        concrete = expr.replace("$queue", ".*").replace("$window", ".*")
        if not await prom.query(concrete):
            empty.append(expr)
    assert empty == []


async def _at_least(check: Any, target: float) -> bool:
    value = await check()
    return value is not None and value >= target


async def test_metrics_declares_the_format_it_writes(live_server, tmp_path) -> None:
    """/metrics says text format 0.0.4, and its body is that: promtool, which reads 0.0.4 text,
    has nothing to say, and prometheus_client's 0.0.4 parser reads every line."""
    from prometheus_client.parser import text_string_to_metric_families

    live = await live_server(full_config(tmp_path / "journal"))
    status, body = await live.post(day_events(time.time()))
    assert status == 202 and body["rejected"] == [], body
    async with live.session.get(f"{live.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert "wallboard_queue_contacts_waiting" in families
    require_program("/usr/bin/promtool", "Debian package prometheus provides promtool")
    result = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
