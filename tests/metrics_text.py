"""Reading counters out of a /metrics text in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def rejected_by_reason(metrics_text: str) -> dict[str, float]:
    """wallboard_events_rejected_total by reason."""
    return {s.labels["reason"]: s.value
            for f in text_string_to_metric_families(metrics_text)
            for s in f.samples if s.name == "wallboard_events_rejected_total"}


def refused_by_source(metrics_text: str, source: str) -> dict[str, float]:
    """wallboard_source_requests_rejected_total of one source, by reason."""
    return {s.labels["reason"]: s.value
            for f in text_string_to_metric_families(metrics_text) for s in f.samples
            if s.name == "wallboard_source_requests_rejected_total"
            and s.labels["source"] == source}
