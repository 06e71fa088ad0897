"""Interval history in /metrics: intervals stored, waiting, late or lost; report requests."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wallboard.ingest.historian import REPORT_RESULTS, Historian


class HistoryCollector:
    """Prometheus view of the interval history (memory only)."""

    def __init__(self, historian: Historian) -> None:
        self.historian = historian

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        stats, agg = self.historian.stats, self.historian.aggregator
        history = agg.history
        yield CounterMetricFamily("wallboard_history_intervals_written",
                                  "Interval records stored (15 minutes of one queue or team)",
                                  value=stats.written)
        yield CounterMetricFamily("wallboard_history_write_failures",
                                  "Writes of interval records that failed (kept, tried again)",
                                  value=stats.failures)
        yield GaugeMetricFamily("wallboard_history_pending_intervals",
                                "Closed interval records waiting to be stored",
                                value=len(history.closed) + len(self.historian.in_flight))
        yield CounterMetricFamily("wallboard_history_dropped_intervals",
                                  "Closed interval records given up (the store down too long)",
                                  value=history.dropped)
        late = sum(leaf.windows.book.late for leaf in agg.leaves.values()
                   if leaf.windows.book is not None)
        late += sum(book.late for book in history.teams.values())
        yield CounterMetricFamily("wallboard_history_late",
                                  "Facts for an interval already closed: in the live windows, "
                                  "not in the history", value=late)
        yield CounterMetricFamily("wallboard_history_unreadable",
                                  "Stored interval records whose body did not decode "
                                  "(left out of reports)", value=stats.unreadable)
        reports = CounterMetricFamily("wallboard_report_requests",
                                      "GET /api/report by result (ok, bad_request)",
                                      labels=["result"])
        for result in REPORT_RESULTS:
            reports.add_metric([result], stats.reports[result])
        yield reports
