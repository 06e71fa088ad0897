"""/metrics against docs/metrics.md: same families both ways, naming rules, bounded labels,
series from the start, and `promtool check metrics` on the live demo."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from tests.conftest import free_port, require_program
from tests.opsmetrics import (
    ALLOWED_AGENTS,
    catalogue,
    day_events,
    exposition,
    full_config,
    samples,
)
from wallboard.config.settings import ConfigError, parse_settings
from wallboard.server import keys
from wallboard.server.exposition import encode

REPO = Path(__file__).resolve().parents[1]
PROMTOOL = "/usr/bin/promtool"


async def full_metrics(live_server, tmp_path: Path) -> tuple[str, dict]:
    """/metrics and /api/snapshot of a server that has seen a morning's events."""
    config = full_config(tmp_path / "journal")
    # A file source that reads a line not of its format: the per-source skipped family.
    (tmp_path / "queue_log").write_text("not a queue_log line\n")
    config["sources"]["pbx-log"] = {"type": "asterisk_queue_log",
                                    "path": str(tmp_path / "queue_log"),
                                    "state_dir": str(tmp_path / "state"),
                                    "first_start": "beginning", "poll_interval_s": 0.05}
    live = await live_server(config)
    status, body = await live.post(day_events(time.time()))
    assert status == 202, body
    assert body["rejected"] == []
    async with live.session.post(f"{live.url}/api/surveys/csat", data=b"{}") as resp:
        assert resp.status == 401  # unsigned: refused and counted by source and reason
    async with live.session.post(f"{live.url}/api/announcements", json={"text": "x"}) as resp:
        assert resp.status == 403  # no admin token configured: the admin API is off, counted
    deadline = time.monotonic() + 10
    while True:
        _, text = await live.get_text("/metrics")
        if 'wallboard_source_skipped_total{' in text or time.monotonic() > deadline:
            return text, await live.get_json("/api/snapshot")
        await asyncio.sleep(0.05)


async def test_live_families_and_the_catalogue_agree_both_ways(live_server, tmp_path) -> None:
    text, _ = await full_metrics(live_server, tmp_path)
    live, documented = exposition(text), catalogue()
    assert len(documented) >= 50
    assert sorted(set(live) - set(documented)) == [], "emitted but not in docs/metrics.md"
    assert sorted(set(documented) - set(live)) == [], "in docs/metrics.md but never emitted"
    wrong = {name: (live[name], documented[name]) for name in live
             if live[name] != documented[name]}
    assert wrong == {}, "type or labels differ from docs/metrics.md"


def test_the_catalogue_parser_sees_a_missing_row() -> None:
    documented = catalogue()
    assert documented["wallboard_queue_contacts_waiting"] == (
        "gauge", frozenset({"queue", "channel"}))
    assert documented["wallboard_events_duplicate_total"] == ("counter", frozenset())
    # A row taken out of the page is missing from what the parser reads.
    page = (REPO / "docs" / "metrics.md").read_text()
    row = next(line for line in page.splitlines()
               if line.startswith("| `wallboard_events_duplicate_total`"))
    assert "wallboard_events_duplicate_total" not in catalogue(page.replace(row + "\n", ""))


async def test_names_follow_prometheus_conventions(live_server, tmp_path) -> None:
    text, _ = await full_metrics(live_server, tmp_path)
    families = exposition(text)
    for name, (kind, _) in families.items():
        assert name.startswith("wallboard_"), name
        assert (kind == "counter") == name.endswith("_total"), name
        for unit in ("_ms", "_minutes", "_hours", "_percent", "_milliseconds"):
            assert unit not in name, f"{name}: use base units"
    for name, labels, value in samples(text):
        if name.endswith("_ratio"):
            assert math.isnan(value) or 0.0 <= value <= 1.0, (name, labels, value)
        if name.endswith("_info"):
            assert value == 1.0, (name, labels)
        if name.endswith("_seconds") or name.endswith("_total") or name.endswith("_bytes"):
            assert math.isnan(value) or value >= 0, (name, labels, value)


async def test_labels_are_bounded_agents_only_from_the_allow_list(live_server, tmp_path) -> None:
    text, snapshot = await full_metrics(live_server, tmp_path)
    # mallory sent events too: on the board, not in /metrics.
    assert "mallory" in snapshot["agents"]
    values = {(key, value) for _, labels, _ in samples(text) for key, value in labels.items()}
    agents = {value for key, value in values if key == "agent"}
    assert agents == set(ALLOWED_AGENTS)
    assert not any("mallory" in value for _, value in values)
    assert not any(value.startswith(("call-", "wait-", "ticket-")) for _, value in values)
    states = {(labels["agent"], labels["state"]): value for name, labels, value in samples(text)
              if name == "wallboard_agent_state"}
    assert states[("alice", "busy")] == 1 and states[("bob", "available")] == 1
    assert sum(states.values()) == 2  # one state each
    allowed_keys = {"queue", "channel", "team", "source", "window", "variant", "state",
                    "outcome", "short", "kind", "reason", "rule", "agent", "version", "le",
                    "endpoint", "code", "result", "stage", "action", "cache"}
    assert {key for key, _ in values} <= allowed_keys


async def test_numbers_match_an_independent_count(live_server, tmp_path) -> None:
    text, snapshot = await full_metrics(live_server, tmp_path)
    events = day_events(time.time())
    threshold = full_config(tmp_path)["queues"]["sales"]["service_level"]["threshold_s"]
    outcomes = [e for e in events if e["type"] in ("contact.answered", "contact.abandoned")]
    met = sum(1 for e in outcomes if e["type"] == "contact.answered" and e["wait_s"] <= threshold)
    # abandons_negative: answered late and abandons after 5 s are misses.
    missed = sum(1 for e in outcomes if e["wait_s"] > threshold
                 or (e["type"] == "contact.abandoned" and e["wait_s"] >= 5))

    def value(name: str, **want: str) -> float:
        found = [v for n, labels, v in samples(text)
                 if n == name and all(labels.get(k) == w for k, w in want.items())]
        assert len(found) == 1, (name, want, found)
        return found[0]

    assert value("wallboard_service_level_contacts_total", queue="sales", outcome="met") == met
    assert value("wallboard_service_level_contacts_total", queue="sales",
                 outcome="missed") == missed
    assert value("wallboard_window_service_level_ratio", queue="sales", window="15m") == \
        pytest.approx(met / (met + missed))
    assert value("wallboard_legal_breaches_total", queue="sales", rule="six_minutes") == \
        sum(1 for e in outcomes if e["wait_s"] > 360)
    assert value("wallboard_queue_contacts_waiting", queue="sales") == \
        snapshot["queues"]["sales"]["live"]["waiting"] == 3
    assert value("wallboard_tickets_sla_breaches_total", queue="chat") == 1
    assert value("wallboard_tickets_overdue", queue="chat") == 1
    assert value("wallboard_team_agents", team="blue", state="away") == 1
    assert value("wallboard_queue_service_level_target_ratio", queue="chat") == 0.9


async def test_every_configured_queue_has_its_series_before_any_event(live_server,
                                                                      tmp_path) -> None:
    config = full_config(tmp_path / "journal", email={"channel": "email"})
    live = await live_server(config)
    _, text = await live.get_text("/metrics")
    seen: dict[str, set[str]] = {}
    for name, labels, _ in samples(text):
        if "queue" in labels:
            family = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
            seen.setdefault(family, set()).add(labels["queue"])
    queues = set(config["queues"])
    per_queue = [name for name, (_, labels) in catalogue().items()
                 if "queue" in labels and "rule" not in labels]
    missing = {name: sorted(queues - seen.get(name, set())) for name in per_queue
               if queues - seen.get(name, set())}
    assert missing == {}
    for name, labels, value in samples(text):
        if name.endswith("_total") and "queue" in labels:
            assert value == 0, (name, labels)
        if name.startswith("wallboard_window_") and name.endswith("_ratio"):
            assert math.isnan(value), (name, labels)  # 0/0, not a 0 % service level


def test_the_agent_allow_list_is_validated_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"metrics": {"agents": ["alice", "alice"]}}, "site.yaml")
    assert info.value.problems == ["site.yaml: metrics.agents: agent names must be unique"]
    with pytest.raises(ConfigError) as info:
        parse_settings({"metrics": {"agent": ["alice"]}}, "site.yaml")
    assert info.value.problems[0].startswith("site.yaml: metrics.agent:")


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on an exposition."""
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def demo() -> Iterator[str]:
    """`wallboard serve` with the embedded demo config, on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wallboard", "serve", "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_promtool_check_metrics_reports_nothing_on_the_live_demo(demo: str) -> None:
    require_program(PROMTOOL, "Debian package prometheus provides promtool")
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{demo}/api/snapshot") as resp:
                    snapshot = await resp.json()
                    if snapshot["sources"]["demo"]["status"] == "up" and \
                            snapshot["total"]["15m"]["offered"] > 0:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "the demo did not come up"
            await asyncio.sleep(0.1)
        async with http.get(f"{demo}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert "wallboard_contacts_offered_total" in text
    result = promtool_check(text)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


async def test_promtool_check_metrics_reports_nothing_with_every_family(live_server,
                                                                        tmp_path) -> None:
    require_program(PROMTOOL, "Debian package prometheus provides promtool")
    text, _ = await full_metrics(live_server, tmp_path)
    result = promtool_check(text)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # The check is not vacuous: a counter without _total is reported.
    bad = promtool_check("# HELP x_events Events\n# TYPE x_events counter\nx_events 1\n")
    assert "counter metrics should have \"_total\" suffix" in bad.stdout + bad.stderr


class _Awkward:
    """A collector with every family type, special values and label values to escape."""

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("x_gauge", 'Help with a \\ backslash\nand a newline',
                                  labels=["queue", "b"])
        for i, value in enumerate((math.nan, math.inf, -math.inf, 1234567.0, 0.1, -0.0, 2e-9)):
            gauge.add_metric([f'q"{i}\\', "line\nbreak"], value)
        counter = CounterMetricFamily("x_events", "Events", labels=["z", "a"])
        counter.add_metric(["1", "2"], 3)
        hist = HistogramMetricFamily("x_wait_seconds", "Waits", labels=["queue"])
        hist.add_metric(["sales"], [("5", 1), ("20", 4), ("+Inf", 6)], 77.5)
        info = InfoMetricFamily("x_build", "Build", value={"version": "1.0"})
        empty = GaugeMetricFamily("x_nothing", "No samples")
        yield from (gauge, counter, hist, info, empty)


async def test_the_lean_writer_writes_what_prometheus_client_writes(live_server,
                                                                    tmp_path) -> None:
    awkward = CollectorRegistry()
    awkward.register(_Awkward())
    assert encode(awkward) == generate_latest(awkward)
    assert b'x_gauge{b="line\\nbreak",queue="q\\"0\\\\"} NaN' in encode(awkward)
    live = await live_server(full_config(tmp_path / "journal"))
    await live.post(day_events(time.time()))
    registry = live.app[keys.METRICS_REGISTRY]
    assert encode(registry) == generate_latest(registry)
