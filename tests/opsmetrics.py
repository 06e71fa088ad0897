"""Helpers for the Prometheus tests: the catalogue, the exposition, and PromQL metric names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import TOKEN

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = REPO / "docs" / "metrics.md"
OPERATIONS = REPO / "docs" / "operations.md"
RULES = REPO / "config" / "prometheus" / "rules.yml"
RULE_TESTS = REPO / "config" / "prometheus" / "tests"
DASHBOARD = REPO / "config" / "grafana" / "wallboard.json"
ALLOWED_AGENTS = ["alice", "bob"]

_ROW = re.compile(r"^\| `(wallboard_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", re.MULTILINE)
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# PromQL words that are not metric names.
_WORDS = """
sum min max avg count stddev stdvar topk bottomk quantile count_values group by without on
ignoring group_left group_right and or unless bool offset rate irate increase delta idelta
deriv predict_linear histogram_quantile abs absent absent_over_time ceil floor round clamp
clamp_min clamp_max changes resets time timestamp vector scalar sort sort_desc label_replace
label_join sum_over_time avg_over_time min_over_time max_over_time count_over_time
last_over_time present_over_time quantile_over_time day_of_week hour minute exp ln log2 log10
sqrt inf nan
"""
PROMQL_WORDS = frozenset(_WORDS.split())


def full_config(data_dir: Path, **queues_extra: Any) -> dict[str, Any]:
    """A site using every metric family: legal rules, allow-listed agents, a journal, a forecast
    tile."""
    return {
        "site": {"name": "Ops test", "timezone": "UTC", "min_survey_sample": 1},
        "server": {"push_interval_ms": 50},
        "queues": {
            # A long threshold: contacts left waiting do not turn into misses during a test.
            "sales": {"channel": "voice", "service_level": {"threshold_s": 120, "target": 0.8},
                      "legal_rules": [{"name": "six_minutes", "limit_s": 360}]},
            "chat": {"channel": "chat", "service_level": {"threshold_s": 60, "target": 0.9}},
            **queues_extra,
        },
        # A survey webhook too: one unsigned request to it fills the per-source refusal family.
        "sources": {"hook": {"type": "webhook", "token": TOKEN},
                    "csat": {"type": "typeform", "secret": "ops-test-secret",
                             "surveys": {"form1": {"questions": {"csat": {"kind": "csat"}},
                                                   "fields": {"queue": "queue"}}}}},
        "metrics": {"agents": ALLOWED_AGENTS},
        "agents": {"reasons": {"Lunch break": "lunch", "Coffee": "break"}},
        "journal": {"data_dir": str(data_dir), "batch_ms": 5},
        # A forecast tile: its reads of the history are counted too.
        "boards": {"ops": {"tiles": [{"kpi": "waiting"}, {"type": "forecast", "queue": "sales"}]}},
    }


def day_events(now: float) -> list[dict[str, Any]]:
    """The last 500 s: contacts answered, abandoned and still waiting (queued 5 s ago, so not
    yet a miss), agents (one not allow-listed), a ticket that breached, a survey answer."""
    t0 = now - 500
    events: list[dict[str, Any]] = []
    waits = [("contact.answered", 10.0), ("contact.answered", 45.0), ("contact.answered", 150.0),
             ("contact.answered", 400.0), ("contact.abandoned", 30.0),
             ("contact.abandoned", 2.0)]
    for i, (kind, wait) in enumerate(waits):
        start = t0 + i
        events.append({"type": "contact.queued", "id": f"q{i}", "ts": start, "queue": "sales",
                       "channel": "voice", "contact_id": f"call-{i}"})
        events.append({"type": kind, "id": f"o{i}", "ts": start + wait, "queue": "sales",
                       "channel": "voice", "contact_id": f"call-{i}", "wait_s": wait})
    for i in range(3):  # still waiting at the end
        events.append({"type": "contact.queued", "id": f"w{i}", "ts": now - 5 + i,
                       "queue": "sales", "channel": "voice", "contact_id": f"wait-{i}"})
    events.append({"type": "contact.ended", "id": "e0", "ts": t0 + 200, "queue": "sales",
                   "contact_id": "call-0", "talk_s": 120.0, "wrap_s": 20.0})
    for agent, state in (("alice", "busy"), ("bob", "available"), ("mallory", "away")):
        events.append({"type": "agent.state", "id": f"a-{agent}", "ts": t0 + 5,
                       "agent": agent, "team": "blue", "state": state, "queues": ["sales"],
                       **({"reason": "Lunch break"} if state == "away" else {})})
    events.append({"type": "ticket.created", "id": "t1", "ts": t0 + 1, "queue": "chat",
                   "contact_id": "ticket-1", "due_ts": t0 + 60})
    events.append({"type": "ticket.sla_breached", "id": "t2", "ts": t0 + 61, "queue": "chat",
                   "contact_id": "ticket-1", "metric": "first_response"})
    events.append({"type": "survey.response", "id": "s1", "ts": t0 + 300, "queue": "sales",
                   "kind": "csat", "score": 5})
    return sorted(events, key=lambda e: e["ts"])


def catalogue(page: str | None = None) -> dict[str, tuple[str, frozenset[str]]]:
    """docs/metrics.md (or `page`, its text): name -> (type, label names)."""
    out = {}
    for name, kind, labels in _ROW.findall(CATALOGUE.read_text() if page is None else page):
        names = frozenset(re.findall(r"`([a-z_]+)`", labels))
        out[name] = (kind, names)
    return out


def exposition(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Live /metrics: family name -> (type, label names seen on its samples)."""
    families = {name: [kind, set()] for name, kind in _TYPE.findall(text)}
    for sample, labels, _ in _SAMPLE.findall(text):
        family = family_of(sample, families)
        families[family][1].update(k for k, _ in _LABEL.findall(labels or ""))
    for kind, labels in families.values():
        if kind == "histogram":
            labels.discard("le")
    return {name: (kind, frozenset(labels)) for name, (kind, labels) in families.items()}


def family_of(sample: str, families: Any) -> str:
    """The family a sample name belongs to (histogram suffixes removed)."""
    if sample in families:
        return sample
    for suffix in _HISTOGRAM_SUFFIXES:
        if sample.endswith(suffix) and sample.removesuffix(suffix) in families:
            return sample.removesuffix(suffix)
    raise AssertionError(f"sample {sample} has no # TYPE line")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample: (name, labels, value)."""
    return [(name, dict(_LABEL.findall(labels or "")), float(value))
            for name, labels, value in _SAMPLE.findall(text)]


def rules() -> list[dict[str, Any]]:
    """Every rule of config/prometheus/rules.yml."""
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def recorded_names() -> set[str]:
    """The names of the recording rules."""
    return {rule["record"] for rule in rules() if "record" in rule}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (label matchers, label lists and strings removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery selectors
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables
    tokens = re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
    return {t for t in tokens if t.lower() not in PROMQL_WORDS}


def known_series(name: str, known: set[str]) -> bool:
    """A catalogued name, a histogram series of one, or a recording rule."""
    if name in known:
        return True
    return any(name.endswith(s) and name.removesuffix(s) in known for s in _HISTOGRAM_SUFFIXES)


def anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings of a markdown file."""
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out
