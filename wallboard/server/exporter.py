"""Prometheus collector: a stateless translator of live state into metric families."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric

from wallboard import __version__
from wallboard.fold import counters as c
from wallboard.fold.aggregate import UNASSIGNED, Aggregator
from wallboard.fold.guard import STAGES
from wallboard.ingest.pipeline import Pipeline
from wallboard.ingest.restore import Restored
from wallboard.journal.interface import BATCH_BUCKETS, JournalStatus
from wallboard.kit.source import UP, SourceRunner
from wallboard.model.events import AGENT_STATES
from wallboard.server import families
from wallboard.server.families import Prefixes

# Windowed KPIs exported as gauges: (metric suffix, KPI name, help).
_WINDOW_GAUGES = (
    ("service_level_ratio", "service_level", "Service level in the window (0-1)"),
    ("abandon_ratio", "abandon_rate", "Abandoned after the short-abandon threshold / completed"),
    ("asa_seconds", "asa_s", "Average speed of answer in the window"),
    ("aht_seconds", "aht_s", "Average handle time (talk + hold + wrap) in the window"),
    ("csat_ratio", "csat", "CSAT top-2-box share in the window"),
)


class WallboardCollector:
    """Yields fresh metric families from the aggregator, pipeline, sources and hub each scrape."""

    def __init__(self, aggregator: Aggregator, pipeline: Pipeline,
                 runners: dict[str, SourceRunner], tree: Callable[[], dict[str, Any]],
                 clients: Callable[[], int], dropped: Callable[[], int],
                 journal: JournalStatus | None = None, restored: Restored | None = None) -> None:
        self.aggregator = aggregator
        self.pipeline = pipeline
        self.runners = runners
        self.tree = tree
        self.clients = clients
        self.dropped = dropped
        self.journal = journal
        self.restored = restored or Restored()
        self.prefixes = Prefixes()  # each series' line prefix, written once

    def _gauge(self, name: str, text: str, labels: list[str] | None = None) -> families.Gauge:
        return families.Gauge(name, text, labels or (), self.prefixes)

    def _counter(self, name: str, text: str, labels: list[str] | None = None) -> families.Counter:
        return families.Counter(name, text, labels or (), self.prefixes)

    def _histogram(self, name: str, text: str,
                   labels: list[str] | None = None) -> families.Histogram:
        return families.Histogram(name, text, labels or (), self.prefixes)

    def collect(self) -> Iterator[Metric]:
        """Read memory only: this runs on the event loop.

        Each section is collected whole or not at all: one that raises is left out of this
        scrape (wallboard_fold_errors_total{stage="exporter"}) and the others are served.
        """
        yield from self._info()
        tree = self.tree()
        sections: list[Callable[[], Iterator[Metric]]] = [
            lambda: self._queue_settings(tree), lambda: self._live(tree),
            lambda: self._people(tree), self._counters, lambda: self._windows(tree),
            self._sources, self._pipeline]
        if self.journal is not None:
            journal = self.journal
            sections.append(lambda: self._journal(journal))
        errors = self.aggregator.errors
        for section in sections:
            try:
                families = list(section())
            except Exception as exc:
                errors.record("exporter", exc, what="/metrics")
                continue
            yield from families
        fold_errors = self._counter(
            "wallboard_fold_errors", "Errors caught at a fold boundary (one event, one snapshot "
            "entity, one forecast, one /metrics section), by stage", labels=["stage"])
        for stage in STAGES:
            fold_errors.add_metric([stage], errors.counts[stage])
        yield fold_errors

    def _info(self) -> Iterator[Metric]:
        info = self._gauge("wallboard_build_info", "Build information",
                                 labels=["version"])
        info.add_metric([__version__], 1)
        yield info

    def _queue_settings(self, tree: dict[str, Any]) -> Iterator[Metric]:
        info = self._gauge("wallboard_queue_info", "A known queue: its channel and "
                                 "service-level variant (value 1)",
                                 labels=["queue", "channel", "variant"])
        target = self._gauge("wallboard_queue_service_level_target_ratio",
                                   "Configured service-level target (0-1)", labels=["queue"])
        threshold = self._gauge("wallboard_queue_service_level_threshold_seconds",
                                      "Configured service-level answer threshold",
                                      labels=["queue"])
        limit = self._gauge("wallboard_queue_legal_limit_seconds",
                                  "Configured legal wait limit", labels=["queue", "rule"])
        legal_oldest = self._gauge(
            "wallboard_queue_legal_oldest_contact_age_seconds",
            "Wait now of the oldest contact as the legal rule measures it (0 when empty)",
            labels=["queue", "rule"])
        for name, block in tree.get("queues", {}).items():
            info.add_metric([name, block["channel"], block["sl_variant"]], 1)
            target.add_metric([name], block["sl_target"])
            threshold.add_metric([name], block["sl_threshold_s"])
            for rule, state in block.get("legal", {}).items():
                limit.add_metric([name, rule], state["limit_s"])
                legal_oldest.add_metric([name, rule], state["oldest_s"])
        yield from (info, target, threshold, limit, legal_oldest)

    def _people(self, tree: dict[str, Any]) -> Iterator[Metric]:
        teams = self._gauge("wallboard_team_agents", "Agents of the team, by state",
                                  labels=["team", "state"])
        for team, block in tree.get("teams", {}).items():
            for state in AGENT_STATES:
                teams.add_metric([team, state], block["live"][f"agents_{state}"])
        # Only allow-listed agents get series (metrics.agents): labels stay bounded.
        agent = self._gauge("wallboard_agent_state",
                                  "1 for the allow-listed agent's current state, else 0",
                                  labels=["agent", "state"])
        agents = tree.get("agents", {})
        for name in self.aggregator.settings.metrics.agents:
            current = agents.get(name, {}).get("state")
            for state in AGENT_STATES:
                agent.add_metric([name, state], 1.0 if state == current else 0.0)
        yield from (teams, agent)
        yield from self._reasons(tree)

    def _reasons(self, tree: dict[str, Any]) -> Iterator[Metric]:
        # Labels are the codes of agents.reasons and 'other': bounded by the config, never
        # by what sources send.
        codes = self.aggregator.reasons.codes
        now = self._gauge("wallboard_agents_in_reason",
                          "Agents logged in whose current reason (normalised by "
                          "agents.reasons; unknown texts are 'other') is this code",
                          labels=["reason"])
        counts = dict.fromkeys(codes, 0)
        for live in self.aggregator.state.agents.values():
            if live.code is not None and live.state != "offline":
                counts[live.code] += 1
        for code in codes:
            now.add_metric([code], counts[code])
        seconds = self._gauge("wallboard_reason_seconds",
                              "Seconds agents spent in each reason code over the window, "
                              "site-wide (time in reason)", labels=["window", "reason"])
        total = tree.get("total", {})
        for window in self.aggregator.settings.windows:
            spent = total.get(window, {}).get("time_in_reason", {})
            for code in codes:
                seconds.add_metric([window, code], spent.get(code, 0.0))
        yield from (now, seconds)

    def _live(self, tree: dict[str, Any]) -> Iterator[Metric]:
        waiting = self._gauge("wallboard_queue_contacts_waiting",
                                    "Contacts waiting in the queue now",
                                    labels=["queue", "channel"])
        oldest = self._gauge("wallboard_queue_oldest_contact_age_seconds",
                                   "Wait of the longest-waiting contact now (0 when empty)",
                                   labels=["queue", "channel"])
        agents = self._gauge("wallboard_agents", "Agents serving the queue, by state",
                                   labels=["queue", "state"])
        tickets = self._gauge("wallboard_tickets_open", "Open tickets (backlog)",
                                    labels=["queue"])
        pending = self._gauge("wallboard_tickets_pending",
                                    "Open tickets waiting on the requester or a third party",
                                    labels=["queue"])
        at_risk = self._gauge("wallboard_tickets_at_risk",
                                    "Open tickets due within site.ticket_at_risk_s",
                                    labels=["queue"])
        overdue = self._gauge("wallboard_tickets_overdue", "Open tickets past their due time",
                                    labels=["queue"])
        oldest_ticket = self._gauge("wallboard_tickets_oldest_age_seconds",
                                          "Age of the oldest open ticket (0 when none)",
                                          labels=["queue"])
        callbacks = self._gauge("wallboard_queue_callbacks_pending",
                                      "Callbacks requested and not yet made", labels=["queue"])
        for name, block in tree.get("queues", {}).items():
            live, channel = block["live"], block["channel"]
            waiting.add_metric([name, channel], live["waiting"])
            oldest.add_metric([name, channel], live["oldest_wait_s"])
            for state in AGENT_STATES:
                agents.add_metric([name, state], live[f"agents_{state}"])
            tickets.add_metric([name], live["tickets_open"])
            pending.add_metric([name], live["tickets_pending"])
            at_risk.add_metric([name], live["tickets_at_risk"])
            overdue.add_metric([name], live["tickets_overdue"])
            oldest_ticket.add_metric([name], live["oldest_ticket_s"])
            callbacks.add_metric([name], live["callbacks_pending"])
        yield from (waiting, oldest, agents, tickets, pending, at_risk, overdue, oldest_ticket,
                    callbacks)

    def _counters(self) -> Iterator[Metric]:
        labels = ["queue", "channel"]
        offered = self._counter("wallboard_contacts_offered", "Contacts queued",
                                      labels=labels)
        answered = self._counter("wallboard_contacts_answered", "Contacts answered",
                                       labels=labels)
        abandoned = self._counter("wallboard_contacts_abandoned", "Contacts abandoned",
                                        labels=[*labels, "short"])
        handled = self._counter("wallboard_contacts_handled", "Contacts ended after handling",
                                      labels=labels)
        handle = self._counter("wallboard_handle_seconds", "Talk + hold + wrap time",
                                     labels=labels)
        surveys = self._counter("wallboard_survey_responses", "Survey responses",
                                      labels=["queue", "kind"])
        sl = self._counter("wallboard_service_level_contacts",
                                 "Contacts counted for the service level under the queue's "
                                 "variant, met or missed", labels=[*labels, "outcome"])
        created = self._counter("wallboard_tickets_created", "Tickets created",
                                      labels=labels)
        resolved = self._counter("wallboard_tickets_resolved", "Tickets resolved",
                                       labels=labels)
        breaches = self._counter("wallboard_tickets_sla_breaches",
                                       "Ticket SLA targets breached", labels=labels)
        legal = self._counter("wallboard_legal_breaches",
                                    "Contacts that waited past a legal limit",
                                    labels=[*labels, "rule"])
        hist = self._histogram("wallboard_queue_wait_seconds",
                                     "Queue wait of contacts that left the queue",
                                     labels=[*labels, "outcome"])
        layout = self.aggregator.layout
        les = (*(f"{edge:g}" for edge in layout.edges), "+Inf")
        baseline = self.restored.baseline
        for (queue, channel), leaf in self.aggregator.leaves.items():
            v = leaf.windows.lifetime
            before = baseline.get((queue, channel))
            if before is not None:  # what the start-up replay folded back is not new
                v = [now - then for now, then in zip(v, before, strict=True)]
            key = [leaf.queue or "none", leaf.channel]
            offered.add_metric(key, v[c.OFFERED])
            answered.add_metric(key, v[c.ANSWERED])
            abandoned.add_metric([*key, "true"], v[c.ABANDONED_SHORT])
            abandoned.add_metric([*key, "false"], v[c.ABANDONED] - v[c.ABANDONED_SHORT])
            handled.add_metric(key, v[c.HANDLED])
            handle.add_metric(key, v[c.HANDLE_SUM])
            for kind, index in (("csat", c.CSAT_N), ("nps", c.NPS_N), ("ces", c.CES_N)):
                surveys.add_metric([key[0], kind], v[index])
            created.add_metric(key, v[c.TICKETS_CREATED])
            resolved.add_metric(key, v[c.TICKETS_RESOLVED])
            breaches.add_metric(key, v[c.SLA_BREACHES])
            if leaf.queue == UNASSIGNED:
                continue
            sl.add_metric([*key, "met"], v[c.SL_MET])
            sl.add_metric([*key, "missed"], v[c.SL_MISSED])
            rules = self.aggregator.queue_config(leaf.queue).legal_rules
            for i, rule in enumerate(rules):
                legal.add_metric([*key, rule.name], v[c.LEGAL_BREACH + i])
            for outcome, base, total in (("answered", layout.answered_hist, c.WAIT_ANSWERED_SUM),
                                         ("abandoned", layout.abandoned_hist,
                                          c.WAIT_ABANDONED_SUM)):
                hist.add_cumulative([*key, outcome], les, layout.cumulative(v, base), v[total])
        yield from (offered, answered, abandoned, handled, handle, surveys, hist, sl, created,
                    resolved, breaches, legal)

    def _windows(self, tree: dict[str, Any]) -> Iterator[Metric]:
        for suffix, kpi, text in _WINDOW_GAUGES:
            extra = ["variant"] if kpi == "service_level" else []
            family = self._gauge(f"wallboard_window_{suffix}", text,
                                       labels=["queue", "window", *extra])
            windows = self.aggregator.settings.windows
            for name, block in tree.get("queues", {}).items():
                variant = [block["sl_variant"]] if extra else []
                for window in windows:
                    value = block[window][kpi]
                    # Every queue has its series from start; 0/0 is NaN, not zero (no alert
                    # fires on it, and a zero would read as a miss).
                    family.add_metric([name, window, *variant],
                                      math.nan if value is None else value)
            yield family

    def _sources(self) -> Iterator[Metric]:
        up = self._gauge("wallboard_source_up", "1 when the source is connected and fresh",
                               labels=["source"])
        last = self._gauge("wallboard_source_last_event_timestamp_seconds",
                                 "When the source last delivered an event", labels=["source"])
        crashes = self._counter("wallboard_source_crashes",
                                      "Source failures that were not a SourceError (plugin bugs)",
                                      labels=["source"])
        rejected = self._counter("wallboard_source_requests_rejected",
                                       "Requests refused at a source's webhook route, by reason",
                                       labels=["source", "reason"])
        skipped = self._counter("wallboard_source_skipped",
                                "What a source read and turned into no event, by reason",
                                labels=["source", "reason"])
        for name, runner in self.runners.items():
            for reason, count in sorted(runner.source.skipped.items()):
                skipped.add_metric([name, reason], count)
            up.add_metric([name], 1.0 if runner.status.status == UP else 0.0)
            if runner.status.last_event_ts is not None:
                last.add_metric([name], runner.status.last_event_ts)
            crashes.add_metric([name], runner.status.crashes)
            for reason, count in sorted(runner.status.rejected.items()):
                rejected.add_metric([name, reason], count)
        yield from (up, last, crashes, rejected, skipped)

    def _pipeline(self) -> Iterator[Metric]:
        accepted = self._counter("wallboard_events_accepted", "Events accepted",
                                       labels=["source"])
        for source, count in self.pipeline.accepted.items():
            accepted.add_metric([source], count)
        rejected = self._counter("wallboard_events_rejected", "Events refused, by reason",
                                       labels=["reason"])
        for reason in sorted({"malformed", "missing_field", "bad_value", *self.pipeline.rejected}):
            rejected.add_metric([reason], self.pipeline.rejected.get(reason, 0))
        duplicate = self._counter("wallboard_events_duplicate", "Events seen before (by id)")
        duplicate.add_metric([], self.pipeline.duplicates)
        late = self._counter("wallboard_events_late",
                                   "Events older than every window they belong to")
        late.add_metric([], self.pipeline.late)
        clients = self._gauge("wallboard_websocket_clients", "Connected websocket clients")
        clients.add_metric([], self.clients())
        dropped = self._counter("wallboard_websocket_clients_dropped",
                                      "Websocket clients closed for staying behind")
        dropped.add_metric([], self.dropped())
        yield from (accepted, rejected, duplicate, late, clients, dropped)

    def _journal(self, status: JournalStatus) -> Iterator[Metric]:
        up = self._gauge("wallboard_journal_up",
                               "1 when accepted events are being stored, 0 when ingest answers 503")
        up.add_metric([], 1.0 if status.up else 0.0)
        appended = self._counter("wallboard_journal_events_appended",
                                       "Events made durable in the journal")
        appended.add_metric([], status.appended)
        failed = self._counter(
            "wallboard_journal_events_failed",
            "Events the journal could not store (webhook: answered 503; sources: shown, unstored)")
        failed.add_metric([], status.failed + self.pipeline.unstored)
        batch = self._histogram("wallboard_journal_batch_seconds",
                                      "Time to write and commit one batch of events")
        cumulative, buckets = 0, []
        for edge, count in zip(BATCH_BUCKETS, status.batch_buckets, strict=True):
            cumulative += count
            buckets.append((f"{edge:g}", cumulative))
        buckets.append(("+Inf", status.batches))
        batch.add_metric([], buckets, status.batch_seconds_sum)
        size = self._gauge("wallboard_journal_bytes", "Journal size on disk")
        size.add_metric([], status.bytes)
        replayed = self._gauge("wallboard_journal_replayed_events",
                                     "Events folded back from the journal at start")
        replayed.add_metric([], status.replayed)
        replay_s = self._gauge("wallboard_journal_replay_seconds",
                                     "Time the start-up replay took")
        replay_s.add_metric([], status.replay_seconds)
        yield from (up, appended, failed, batch, size, replayed, replay_s)
