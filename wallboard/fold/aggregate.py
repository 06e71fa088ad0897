"""Folding events into live state and windows per queue, channel and agent."""

from __future__ import annotations

import heapq
import itertools
import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from wallboard.config.settings import QueueConfig, Settings
from wallboard.config.windows import WindowSpec, parse_window
from wallboard.fold import counters as c
from wallboard.fold.agentfold import AgentFold
from wallboard.fold.counters import Layout
from wallboard.fold.guard import FoldErrors, check_foldable
from wallboard.fold.intervals import IntervalHistory
from wallboard.fold.leaf import AGENT_TYPES, Leaf, QueueLimitError
from wallboard.fold.outcome import MET, MISSED, sl_outcome
from wallboard.fold.sketch import SketchDeltas, bin_of
from wallboard.fold.state import LiveState, Waiting
from wallboard.fold.surveys import CountedSurvey, SurveyMemory
from wallboard.fold.tickets import fold_ticket
from wallboard.fold.windows import WindowSet
from wallboard.model import events as ev
from wallboard.model.events import Event

UNASSIGNED = ""  # surveys and tickets with no queue count in the totals only
_SL = -1  # timer kind for the service-level deadline; legal rules use their index


class Aggregator(AgentFold):
    """Owns live state and windows; `fold` is the only writer."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.site.timezone)
        self.specs: list[WindowSpec] = [parse_window(w) for w in settings.windows]
        self.shift_resets = [clock_time.fromisoformat(t) for t in settings.site.shift_resets]
        self.lateness_s = settings.site.lateness_s
        self.queue_configs = dict(settings.queues)
        edges = [QueueConfig().service_level.threshold_s]
        for q in settings.queues.values():
            edges += [q.service_level.threshold_s, *(r.limit_s for r in q.legal_rules)]
        self.layout = Layout(edges)
        self.state = LiveState()
        self.leaves: dict[tuple[str, str], Leaf] = {}
        self.agent_windows = {}
        self._default_leaf: dict[str, Leaf] = {}
        self.timers: list[tuple[float, int, str, str, float, int]] = []
        self.next_timer = math.inf  # the earliest deadline in `timers`
        self._seq = itertools.count()
        self.late = 0
        self.advanced_to = -math.inf  # the time `advance` last moved everything to
        self.surveys = SurveyMemory()  # counted responses, for revisions to replace
        self.history = IntervalHistory()  # closed intervals, until the ingest layer stores them
        # Refused while folding (a team over server.max_teams); the pipeline's count by reason.
        self.refused: Counter[str] = Counter()
        self.errors = FoldErrors()  # caught at the fold's boundaries (pipeline, snapshot, hub)
        now = clock()
        for name, cfg in settings.queues.items():
            self.state.queue(name)
            self._leaf(name, cfg.channel, now)
        self._seed_roster()

    def queue_config(self, name: str) -> QueueConfig:
        """The configured settings of a queue, or defaults for one learnt from events."""
        return self.queue_configs.get(name) or QueueConfig()

    def zone(self, queue: str) -> ZoneInfo:
        """The time zone of a queue's calendar windows."""
        tz = self.queue_config(queue).timezone
        return ZoneInfo(tz) if tz else self.tz

    def _leaf(self, queue: str, channel: str, now: float) -> Leaf:
        key = (queue, channel)
        leaf = self.leaves.get(key)
        if leaf is None:
            if queue not in self.queue_configs and queue != UNASSIGNED:
                if len(self.queue_configs) >= self.settings.server.max_queues:
                    raise QueueLimitError(queue)
                self.queue_configs[queue] = QueueConfig(channel=channel)
            windows = WindowSet(self.specs, self.layout.size, self.zone(queue), self.shift_resets,
                                now, c.SKETCH_KINDS)
            windows.book = self.history.new_book()
            leaf = self.leaves[key] = Leaf(queue, channel, self.queue_config(queue), windows)
        return leaf

    def fold(self, event: Event) -> bool:
        """Apply one validated event; False when it is later than the allowed lateness."""
        # The per-event path: each line here runs for every event, so lookups are hoisted.
        # Numbers first, before anything changes: a stored event the fold cannot take is
        # refused whole (FoldRangeError), never half-applied.
        check_foldable(event)
        now = self.clock()
        # Ticket events are never too late: a helpdesk's history (a ticket opened last week,
        # read on our first poll) belongs in the backlog; each window counts them only if
        # their time lies inside it.
        if event.ts < now - self.lateness_s and event.type not in ev.TICKET_TYPES:
            self.late += 1
            return False
        agent = event.agent
        if agent is not None and agent not in self.agent_windows and (
                len(self.agent_windows) >= self.settings.server.max_agents
                and event.type in AGENT_TYPES):
            event = self._agent_limit(event)
        if now >= self.next_timer:
            self.fire_timers(now)
        queue = event.queue or UNASSIGNED
        channel = event.channel
        if channel is None:
            leaf = self._default_leaf.get(queue)
            if leaf is None:
                etype = event.type
                channel = (self.queue_config(queue).channel if queue else
                           ("ticket" if etype.startswith("ticket.") else "other"))
                leaf = self._default_leaf[queue] = self._leaf(queue, channel, now)
        else:
            leaf = self.leaves.get((queue, channel)) or self._leaf(queue, channel, now)
        windows = leaf.windows
        if now >= windows.next_edge:
            windows.advance(now)
        source = event.source
        if source not in leaf.sources and source and queue:
            leaf.sources.add(source)
            self.state.queue(queue).sources.add(source)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event, leaf, now)
        elif event.type == ev.QUEUE_SNAPSHOT:
            self.state.queue_snapshot(event)
        return True

    # -- contacts ---------------------------------------------------------------------------

    def _queued(self, e: Event, leaf: Leaf, now: float) -> None:
        contact_id = e.contact_id
        assert contact_id is not None  # parse_event requires it on every contact event
        leaf.windows.add(e.ts, _OFFERED)
        waiting = self.state.enqueue(leaf.queue, contact_id, e.ts, e.entered_ts)
        if waiting is None:
            return
        timers, enqueued = self.timers, waiting.enqueued
        if leaf.expires:
            deadline = enqueued + leaf.threshold_s
            heapq.heappush(timers, (deadline, next(self._seq), leaf.queue, contact_id,
                                    enqueued, _SL))
        for i, (limit, from_call) in enumerate(leaf.legal):
            start = waiting.entered if from_call else enqueued
            heapq.heappush(timers, (start + limit, next(self._seq), leaf.queue, contact_id,
                                    enqueued, i))
        if timers and timers[0][0] < self.next_timer:
            self.next_timer = timers[0][0]

    def fire_timers(self, now: float) -> None:
        """Count deadlines passed by contacts still waiting: SL misses and legal breaches."""
        timers = self.timers
        while timers and timers[0][0] <= now:
            deadline, _, queue, contact_id, enqueued, kind = heapq.heappop(timers)
            waiting = self.state.queue(queue).waiting.get(contact_id)
            if waiting is None or waiting.enqueued != enqueued:
                continue  # it left the queue before its deadline
            leaf = self._leaf(queue, self.queue_config(queue).channel, now)
            leaf.windows.advance(now)  # a stale ring clock would misplace the deadline
            if kind == _SL:
                waiting.sl_missed = True
                leaf.windows.add(deadline, [(c.SL_MISSED, 1.0)])
            else:
                waiting.legal_breached |= 1 << kind
                leaf.windows.add(deadline, [(c.LEGAL_BREACH + kind, 1.0)])
        self.next_timer = timers[0][0] if timers else math.inf

    def _left(self, e: Event, leaf: Leaf, how: str, deltas: c.Deltas,
              sketch: SketchDeltas | None = None) -> float:
        """A contact leaves the queue: fold its deltas, its SL event and legal outcomes."""
        ts, contact_id = e.ts, e.contact_id
        assert contact_id is not None  # parse_event requires it on every contact event
        waiting = self.state.dequeue(leaf.queue, contact_id, ts)
        wait = e.wait_s
        if wait is None:
            wait = ts - waiting.enqueued if waiting is not None else 0.0
            if wait < 0.0:
                wait = 0.0
        threshold = leaf.threshold_s
        # A wait's histogram bin is the first edge >= wait (Prometheus 'le' semantics).
        if how == "answered":
            deltas += [(c.WAIT_ANSWERED_SUM, wait),
                       (self.layout.answered_hist + bisect_left(self.layout.edges, wait), 1.0)]
            if wait <= threshold:
                deltas.append(_ANSWERED_IN_SL)
                outcome = MET
            else:
                outcome = MISSED
            sketch = [(c.SKETCH_WAIT, bin_of(wait), 1)]
        else:
            if how == "abandoned":
                deltas += [(c.WAIT_ABANDONED_SUM, wait),
                           (self.layout.abandoned_hist + bisect_left(self.layout.edges, wait),
                            1.0)]
                if wait < leaf.short_s:
                    deltas.append((c.ABANDONED_SHORT, 1.0))
                elif wait <= threshold:
                    deltas.append((c.ABANDONED_IN_SL, 1.0))
            outcome = sl_outcome(leaf.variant, how, wait, threshold, leaf.short_s)
        if outcome == MET and (waiting is None or not waiting.sl_missed):
            deltas.append(_SL_MET)  # the common case, without the call
        else:
            self._sl_event(ts, wait, leaf, outcome, waiting, deltas)
        later = self._legal(ts, wait, leaf, how, waiting, deltas) if leaf.legal else ()
        leaf.windows.add(ts, deltas, sketch)
        for ts, delta in later:
            leaf.windows.add(ts, [delta])
        return wait

    def _sl_event(self, ts: float, wait: float, leaf: Leaf, outcome: int,
                  waiting: Waiting | None, deltas: c.Deltas) -> None:
        deadline = ts - wait + leaf.threshold_s
        if waiting is not None and waiting.sl_missed:
            if outcome == MISSED and wait > leaf.threshold_s:
                return  # missed at its deadline, where the timer counted it
            # The deadline timer fired before this (late) event, but the contact left within
            # T: take that miss back; a miss (abandons_negative) counts when it left.
            leaf.windows.add(waiting.enqueued + leaf.threshold_s, [(c.SL_MISSED, -1.0)])
        if outcome == MET:
            deltas.append((c.SL_MET, 1.0))
        elif outcome == MISSED:
            at = deadline if leaf.expires and wait > leaf.threshold_s else ts
            leaf.windows.add(at, [(c.SL_MISSED, 1.0)])

    def _legal(self, ts: float, wait: float, leaf: Leaf, how: str, waiting: Waiting | None,
               deltas: c.Deltas) -> list[tuple[float, tuple[int, float]]]:
        later: list[tuple[float, tuple[int, float]]] = []
        for i, (limit, from_call) in enumerate(leaf.legal):
            start = ts - wait
            if waiting is not None and from_call:
                start = waiting.entered
            deadline = start + limit
            breached = waiting is not None and bool(waiting.legal_breached >> i & 1)
            within = ts <= deadline
            if within and breached:
                later.append((deadline, (c.LEGAL_BREACH + i, -1.0)))  # late event: undo
            elif not within and not breached:
                later.append((deadline, (c.LEGAL_BREACH + i, 1.0)))
            if within and how == "answered":
                deltas.append((c.LEGAL_OK + i, 1.0))
        return later

    def _answered(self, e: Event, leaf: Leaf, now: float) -> None:
        self._left(e, leaf, "answered", [_ANSWERED])
        if e.agent:
            self._agent_add(e.agent, e.ts, _ANSWERED_ONLY, now)
            self._agent_channel(e.agent, leaf.channel)

    def _abandoned(self, e: Event, leaf: Leaf, now: float) -> None:
        self._left(e, leaf, "abandoned", [(c.ABANDONED, 1.0)])

    def _transferred(self, e: Event, leaf: Leaf, now: float) -> None:
        if e.contact_id in self.state.queue(leaf.queue).waiting:
            self._left(e, leaf, "transferred", [(c.TRANSFERS, 1.0)])
        else:  # an agent passing a call on after answering it
            leaf.windows.add(e.ts, [(c.TRANSFERS, 1.0)])
        if e.agent:
            self._agent_add(e.agent, e.ts, [(c.TRANSFERS, 1.0)], now)

    def _callback_requested(self, e: Event, leaf: Leaf, now: float) -> None:
        self._left(e, leaf, "callback", [(c.CALLBACKS_REQUESTED, 1.0)])
        promise = e.promise_s or self.queue_config(leaf.queue).callback_promise_s
        assert e.contact_id is not None  # parse_event requires it on every contact event
        self.state.queue(leaf.queue).callbacks[e.contact_id] = e.ts + promise

    def _callback_completed(self, e: Event, leaf: Leaf, now: float) -> None:
        assert e.contact_id is not None  # parse_event requires it on every contact event
        promised = self.state.queue(leaf.queue).callbacks.pop(e.contact_id, None)
        deltas = [(c.CALLBACKS_COMPLETED, 1.0)]
        if promised is not None and e.ts <= promised:
            deltas.append((c.CALLBACKS_IN_PROMISE, 1.0))
        leaf.windows.add(e.ts, deltas)

    def _ended(self, e: Event, leaf: Leaf, now: float) -> None:
        handle = (e.talk_s or 0.0) + (e.hold_s or 0.0) + (e.wrap_s or 0.0)
        deltas = [(c.HANDLED, 1.0), (c.HANDLE_SUM, handle)]
        leaf.windows.add(e.ts, deltas, [(c.SKETCH_HANDLE, bin_of(handle), 1)])
        if e.agent:
            self._agent_add(e.agent, e.ts, deltas, now)

    def _survey(self, e: Event, leaf: Leaf, now: float) -> None:
        at = e.ts if e.ts < now else now
        deltas = self.surveys.count(e, (leaf.queue, leaf.channel), at, self._retract)
        if deltas is None:
            return  # an older revision than the one counted: the newer one stands
        leaf.windows.add(at, deltas)
        if e.agent:
            self._agent_add(e.agent, at, deltas, now)

    def _survey_retracted(self, e: Event, leaf: Leaf, now: float) -> None:
        self.surveys.retract(e, self._retract)

    def _retract(self, prior: CountedSurvey) -> None:
        """Take back what an earlier revision of a survey response added, where it was added."""
        now = self.clock()
        negated = [(k, -d) for k, d in prior.deltas]
        assert prior.leaf is not None  # tombstones have nothing to take back
        windows = self.leaves[prior.leaf].windows
        windows.advance(now)
        windows.add(prior.at, negated)
        if prior.agent:
            self._agent_add(prior.agent, prior.at, negated, now)

    def _ticket(self, e: Event, leaf: Leaf, now: float) -> None:
        fold_ticket(self.state, leaf.windows, e)

    def advance(self, now: float) -> None:
        """Fire due deadlines, move every window to `now`, expire forgotten state."""
        self.advanced_to = now
        self.fire_timers(now)
        for leaf in self.leaves.values():
            leaf.windows.advance(now)
            leaf.windows.flush()  # reads add the batch to copies: the tick stores it
        for windows in self.agent_windows.values():
            windows.advance(now)
            windows.store()
        self.state.expire(now)
        self.surveys.forget(now)
        # Intervals no live event can reach any more (lateness past their end) are closed.
        self.history.close(self.leaves.values(), now - self.lateness_s)


# Shared delta lists and pairs: windows never modify the deltas they are given.
_OFFERED: c.Deltas = [(c.OFFERED, 1.0)]
_ANSWERED = (c.ANSWERED, 1.0)
_ANSWERED_ONLY: c.Deltas = [_ANSWERED]
_ANSWERED_IN_SL = (c.ANSWERED_IN_SL, 1.0)
_SL_MET = (c.SL_MET, 1.0)
_HANDLERS: dict[str, Callable[[Aggregator, Event, Leaf, float], None]] = {
    ev.CONTACT_QUEUED: Aggregator._queued,
    ev.CONTACT_ANSWERED: Aggregator._answered,
    ev.CONTACT_ABANDONED: Aggregator._abandoned,
    ev.CONTACT_TRANSFERRED: Aggregator._transferred,
    ev.CALLBACK_REQUESTED: Aggregator._callback_requested,
    ev.CALLBACK_COMPLETED: Aggregator._callback_completed,
    ev.CONTACT_ENDED: Aggregator._ended,
    ev.SURVEY_RESPONSE: Aggregator._survey,
    ev.SURVEY_RETRACTED: Aggregator._survey_retracted,
    ev.AGENT_STATE: Aggregator._agent_state,
    **{t: Aggregator._ticket for t in (ev.TICKET_CREATED, ev.TICKET_FIRST_RESPONSE,
                                       ev.TICKET_RESOLVED, ev.TICKET_REOPENED,
                                       ev.TICKET_SLA_BREACHED, ev.TICKET_STATUS)},
}
