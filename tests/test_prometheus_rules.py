"""config/prometheus/rules.yml and config/grafana/wallboard.json: promtool checks and unit
tests, every alert tested firing and not firing, runbooks that exist, known metric names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_program
from tests.opsmetrics import (
    DASHBOARD,
    OPERATIONS,
    RULE_TESTS,
    RULES,
    anchors,
    catalogue,
    known_series,
    metric_names,
    recorded_names,
    rules,
)

PROMTOOL = "/usr/bin/promtool"
LISTED_ALERTS = {  # the list, in its order
    "WallboardServiceLevelBelowTarget", "WallboardOldestContactNearLegalLimit",
    "WallboardAbandonRateHigh", "WallboardNoAgentAvailableWhileContactsWait",
    "WallboardTicketSlaBreachesRising", "WallboardSourceDown", "WallboardJournalDown",
    "WallboardDown",
}


def alert_names() -> set[str]:
    """Alert names in rules.yml."""
    return {rule["alert"] for rule in rules() if "alert" in rule}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool."""
    require_program(PROMTOOL, "Debian package prometheus provides promtool")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_promtool_check_rules_passes() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    files = sorted(str(p) for p in RULE_TESTS.glob("*.yml"))
    assert files
    result = promtool("test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def rule_test_cases() -> list[tuple[str, bool]]:
    """(alert name, fires?) of every alert_rule_test in the unit tests."""
    cases = []
    for path in RULE_TESTS.glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.append((case["alertname"], bool(case.get("exp_alerts"))))
    return cases


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    names = alert_names()
    assert names == LISTED_ALERTS
    cases = rule_test_cases()
    assert sorted(names - {name for name, fires in cases if fires}) == [], "never firing"
    assert sorted(names - {name for name, fires in cases if not fires}) == [], \
        "never tested silent"
    assert {name for name, _ in cases} <= names, "a test names an alert that does not exist"


def mutated(tmp_path: Path, alert: str, expr: str) -> subprocess.CompletedProcess[str]:
    """promtool test rules with one alert's expression replaced (and its `for` dropped)."""
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
                rule.pop("for", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(groups))
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    for path in RULE_TESTS.glob("*.yml"):
        shutil.copy(path, tests / path.name)
    return promtool("test", "rules", *sorted(p.name for p in tests.glob("*.yml")), cwd=tests)


@pytest.mark.parametrize("alert", sorted(LISTED_ALERTS))
def test_the_unit_tests_fail_when_an_alert_never_fires_or_always_fires(
        tmp_path: Path, alert: str) -> None:
    never = mutated(tmp_path, alert, "vector(1) == 2")
    assert never.returncode != 0 and alert in never.stdout + never.stderr
    always = mutated(tmp_path, alert, "vector(1)")
    assert always.returncode != 0 and alert in always.stdout + always.stderr


def test_every_alert_has_a_runbook_section_in_operations_md() -> None:
    sections = anchors(OPERATIONS.read_text())
    for rule in rules():
        if "alert" not in rule:
            continue
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md", url
        assert anchor in sections, f"{rule['alert']}: no heading for #{anchor}"
        assert rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in ("warning", "critical")
    assert "service-level-below-target" in sections


def test_recording_rules_follow_level_metric_operations() -> None:
    recorded = recorded_names()
    assert len(recorded) >= 5
    for name in recorded:
        level, metric, operations = name.split(":")
        assert level == "queue" and metric.startswith("wallboard_") and operations, name


def known() -> set[str]:
    """Catalogued metrics, recording rules, and Prometheus's own `up`."""
    return set(catalogue()) | recorded_names() | {"up"}


def unknown_names(expr: str) -> list[str]:
    """Metric names an expression uses that exist nowhere."""
    return sorted(n for n in metric_names(expr) if not known_series(n, known()))


def test_rule_expressions_name_only_known_metrics() -> None:
    for rule in rules():
        assert unknown_names(rule["expr"]) == [], rule.get("alert") or rule.get("record")


def test_the_name_checker_catches_unknown_metrics() -> None:
    assert metric_names('sum by (queue) (rate(wallboard_x_total{queue=~"$queue"}[5m]))') == \
        {"wallboard_x_total"}
    assert unknown_names("wallboard_queue_wait_seconds_bucket + wallboard_nope") == \
        ["wallboard_nope"]
    assert unknown_names('histogram_quantile(0.9, sum by (le) (rate('
                         'wallboard_queue_wait_seconds_bucket[5m])))') == []
    assert unknown_names("queue:wallboard_service_level:ratio_rate15m > 0.8") == []
    assert unknown_names("queue:wallboard_service_level:ratio_rate5m") == \
        ["queue:wallboard_service_level:ratio_rate5m"]


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    exprs = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            exprs += [target["expr"] for target in inner.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query", "")
        if variable["type"] == "query":
            exprs += re.findall(r"label_values\((\w+)", query)
    return exprs


def test_grafana_dashboard_parses_and_names_only_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_expressions(dashboard)
    assert len(exprs) >= 25
    problems = {expr: unknown_names(expr) for expr in exprs if unknown_names(expr)}
    assert problems == {}
    used = set().union(*(metric_names(expr) for expr in exprs))
    # The views the issue asks for: queues, service level by window, waits, agents, sources.
    for name in ("wallboard_queue_contacts_waiting", "wallboard_window_service_level_ratio",
                 "wallboard_window_asa_seconds", "queue:wallboard_queue_wait_seconds:p90_rate15m",
                 "wallboard_agents", "wallboard_source_up"):
        assert name in used, name
    titles = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert titles == ["Queues", "Service level", "Waits and handling", "Agents",
                      "Sources and the server"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "queue", "window"}
    sources = {json.dumps(p.get("datasource")) for p in dashboard["panels"] if p["type"] != "row"}
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"})}


def test_links_in_the_ops_docs_resolve() -> None:
    root = RULES.parents[2]
    for doc in (root / "README.md", root / "docs" / "metrics.md", OPERATIONS):
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            where = (doc.parent / path).resolve() if path else doc
            assert where.exists(), f"{doc.name}: broken link {target}"
            if anchor:
                assert anchor in anchors(where.read_text()), f"{doc.name}: no anchor {target}"
