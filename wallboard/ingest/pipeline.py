"""Ingest: validation, de-duplication, the journal and folding, with counts of what was refused.

An event is folded once the journal holds it, in the journal's order, so the state a restart
rebuilds from the journal is the state the board showed. Webhook events are acknowledged only
after that; events from push and poll sources are folded at once while the journal is down.

A stored event whose fold raises is caught there, alone (the others of its batch are folded),
counted in wallboard_fold_errors_total{stage="fold"}, logged once per cause and quarantined in
the journal, so a restart skips it instead of failing on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import orjson

from wallboard.base.recent import Recent
from wallboard.fold.aggregate import Aggregator
from wallboard.fold.guard import reason
from wallboard.fold.leaf import AgentLimitError, QueueLimitError
from wallboard.ingest.admission import Admission
from wallboard.journal.interface import Journal, JournalDown, JournalFenced
from wallboard.model.events import (
    TICKET_TYPES,
    Event,
    EventError,
    check_event,
    parse_event,
)
from wallboard.model.limits import WIDEST_LIMITS, limits_of
from wallboard.model.wire import Wire

ACCEPTED, DUPLICATE, LATE = "accepted", "duplicate", "late"
FAILED = "failed"  # stored (if there is a journal) but its fold raised: quarantined, uncounted
Key = tuple[str | None, str]


class Ack(NamedTuple):
    """What became of a request's events: new and stored, seen before, late, and failed."""

    accepted: int  # new events, stored and folded (counted unless late)
    duplicates: int  # ids seen before within the retention (or earlier in the request)
    late: int  # of the accepted: older than site.lateness_s, stored but in no window
    failed: int = 0  # new events stored but not counted: their fold raised or hit a limit


class Pipeline:
    """The one entry point for events: sources and webhooks call `ingest`."""

    def __init__(self, aggregator: Aggregator, on_change: Callable[[], None] | None = None,
                 dedupe_size: int = 200_000, journal: Journal | None = None) -> None:
        # dedupe_size ids in memory: all the de-duplication without a journal, and a cache in
        # front of the journal's id table (exact over the retention) with one.
        self.aggregator = aggregator
        self.on_change = on_change
        self.dedupe_size = dedupe_size
        self.journal = journal
        self._seen = Recent(dedupe_size)  # between half and all of the newest dedupe_size ids
        # Ids written to the journal but not yet durable: a retry waits for the first copy.
        self._pending: dict[Key, asyncio.Future[None]] = {}
        self.accepted: dict[str, int] = {}  # by source
        self.rejected: Counter[str] = aggregator.refused  # by reason, the fold's refusals too
        self.admission = Admission(aggregator, self.rejected)
        settings = aggregator.settings
        self.limits = limits_of(settings.server, settings.journal)
        self.wire = Wire(self.limits)  # typed structs decoding JSON text: see parse_json
        self.duplicates = 0
        self.late = 0
        self.unstored = 0  # events refused at once because the journal was down
        # The journal position of the last stored event folded (an unshared journal): what a
        # checkpoint of this state covers. Set by the restore, moved by each settled append.
        self.position: str | None = None
        # When an event was last folded without being stored (journal down): until it has left
        # every window, the state is no journal prefix and no checkpoint is taken of it.
        self.unstored_at: float | None = None

    @property
    def dedupe_ids(self) -> int:
        """How many event ids are remembered for de-duplication now."""
        return len(self._seen)

    def reject(self, reason: str) -> None:
        """Count an event refused before it became an Event (bad JSON, bad field)."""
        self.rejected[reason] += 1

    def parse(self, raw: Any, source: str) -> Event:
        """Validate a decoded object; a failure is counted under its error code and re-raised.

        Times are bounded around the aggregator's clock now (the virtual one of a replay).
        """
        try:
            return parse_event(raw, source, self.aggregator.clock(), self.limits)
        except EventError as exc:
            self.rejected[exc.code] += 1
            raise

    def parse_json(self, data: bytes | str, source: str) -> Event:
        """One JSON object's text (an NDJSON line) validated like `parse`: typed structs first.

        What they refuse goes to `parse`, whose check names the problem; text that is not JSON
        raises orjson.JSONDecodeError (a ValueError), uncounted: the caller says how."""
        event = self.wire.decode(data, source, self.aggregator.clock())
        if event is None:
            return self.parse(orjson.loads(data), source)
        return event

    def check(self, event: Event, source: str) -> Event:
        """An Event a connector built, checked by the rules of `parse`; counted if refused."""
        event.source = source
        try:
            return check_event(event, self.aggregator.clock(), self.limits)
        except EventError as exc:
            self.rejected[exc.code] += 1
            raise

    def admit(self, event: Event) -> None:
        """Refuse, before it is stored, an event over server.max_queues, max_teams or max_agents."""
        self.admission.admit(event)

    def _is_duplicate(self, key: Key | None) -> bool:
        return key is not None and (key in self._seen or key in self._pending)

    def _remember(self, key: Key | None) -> None:
        if key is not None:
            self._seen.add(key)

    def ingest(self, event: Event, fence: tuple[str, str] | None = None) -> str:
        """A source's event (one `parse` or `check` returned): de-duplicate, store, fold.

        Raises EventError. `fence` (lease key, holder) lets a shared journal refuse a stale
        holder's events.
        """
        key = (event.source, event.id) if event.id is not None else None
        if self.journal is None:  # `wallboard replay` and journal-less servers: the short way
            # One call (check and remember): this is the replay's per-event path.
            if key is not None and not self._seen.first(key):
                self.duplicates += 1
                return DUPLICATE
            return self.fold(event)
        if self._is_duplicate(key):
            self.duplicates += 1
            return DUPLICATE
        self.admit(event)
        recv = self.aggregator.clock()
        try:
            future = self.journal.append([event], recv, fence=fence)
        except JournalDown:
            # Nobody waits for an acknowledgement here: show the event now, even though a
            # restart will not know it (counted in wallboard_journal_events_failed).
            self.unstored += 1
            self.unstored_at = self.aggregator.clock()
        else:
            if key is not None:
                self._pending[key] = future
            future.add_done_callback(partial(self._stored, [event], [key], False, recv, None))
            return ACCEPTED
        self._remember(key)
        return self.fold(event)

    def is_late(self, event: Event) -> bool:
        """Whether the fold would drop `event` as late now (the aggregator's rule)."""
        return (event.ts < self.aggregator.clock() - self.aggregator.lateness_s
                and event.type not in TICKET_TYPES)

    async def ingest_acknowledged(self, events: list[Event]) -> Ack:
        """Store events durably and fold them, then say what became of them (`Ack`).

        Raises JournalDown when they could not be stored: then nothing was counted and the
        sender's retry will be. The events are ones `parse` or `check` returned; call `admit`
        on each first.
        """
        fresh: list[Event] = []
        keys: list[Key | None] = []
        waits: list[asyncio.Future[Any]] = []
        own: asyncio.Future[Any] | None = None
        duplicates = 0
        batch: set[Key] = set()
        for event in events:
            key = (event.source, event.id) if event.id is not None else None
            if key is not None:
                if key in self._seen or key in batch:
                    duplicates += 1
                    continue
                pending = self._pending.get(key)
                if pending is not None:  # only a duplicate once the first copy is durable
                    waits.append(pending)
                    duplicates += 1
                    continue
                batch.add(key)
            fresh.append(event)
            keys.append(key)
        # The folds' verdicts [late, failed], filled in by _stored before the sender is
        # answered.
        tally = [0, 0]
        if self.journal is None:
            for event, key in zip(fresh, keys, strict=True):
                self._remember(key)
                self._tally(self._fold_counted(event), tally)
            self.duplicates += duplicates
            return Ack(len(fresh) - tally[1], duplicates, tally[0], tally[1])
        if fresh:
            recv = self.aggregator.clock()
            try:
                future = self.journal.append(fresh, recv)
            except JournalDown:
                self.unstored += len(fresh)
                raise
            for key in keys:
                if key is not None:
                    self._pending[key] = future
            if self.journal.replicated:  # folded when the stream delivers it: foreseen now
                tally[0] = sum(map(self.is_late, fresh))  # (a failed fold is not foreseen)
            # Added before anyone awaits it: folding happens before the sender is answered.
            future.add_done_callback(partial(self._stored, fresh, keys, True, recv, tally))
            waits.append(future)
            own = future
        known: list[int] = []
        for wait in waits:
            # Shielded: a sender hanging up must not cancel the write others depend on.
            result = await asyncio.shield(wait)
            if wait is own:
                known = result  # ids the journal held (earlier, or stored by another node)
        self.duplicates += duplicates  # the journal's own are counted as they settle
        if known and self.journal.replicated:
            tally[0] -= sum(self.is_late(fresh[at]) for at in known)
        return Ack(len(fresh) - len(known) - tally[1], duplicates + len(known), tally[0],
                   tally[1])

    @staticmethod
    def _tally(outcome: str | None, tally: list[int]) -> None:
        """Count a fold's outcome into [late, failed]: None is a limit the fold refused."""
        if outcome == LATE:
            tally[0] += 1
        elif outcome is None or outcome == FAILED:
            tally[1] += 1

    def _stored(self, events: list[Event], keys: list[Key | None], acknowledged: bool,
                recv: float, tally: list[int] | None,
                future: asyncio.Future[list[int]]) -> None:
        """Fold events the journal settled; futures settle in append order, so folds do too.

        `tally` (acknowledged appends on an unshared journal) collects [late, failed].
        """
        for key in keys:
            if key is not None:
                self._pending.pop(key, None)
        error = future.exception()
        known = (future.result() or ()) if error is None else ()
        # Ids the journal held though this memory had forgotten them: duplicates, not folded.
        self.duplicates += len(known)
        if self.journal is not None and self.journal.replicated:
            # Every node folds the shared journal in its order (`apply`), this one included.
            if error is None:
                for key in keys:
                    self._remember(key)
                return
            if isinstance(error, JournalFenced):
                self.rejected["fenced"] += len(events)  # the lease's new holder reads them
                return
        if error is not None and acknowledged:
            return  # the sender gets a 503 and retries; forget the ids so the retry counts
        if error is not None:  # folded all the same, unstored
            self.unstored_at = self.aggregator.clock()
        skip = set(known)
        for at, (event, key) in enumerate(zip(events, keys, strict=True)):
            self._remember(key)
            if at not in skip:
                outcome = self._fold_counted(event, recv)
                if tally is not None:
                    self._tally(outcome, tally)
        # An empty result is falsy: the position is read from the future itself.
        position = getattr(future.result(), "position", None) if error is None else None
        if position is not None:
            self.position = position

    def _fold_counted(self, event: Event, recv: float | None = None) -> str | None:
        """Fold a stored event; one whose fold raises is quarantined at `recv`, its arrival."""
        with contextlib.suppress(EventError):  # counted under queue_limit; nobody to tell
            return self.fold(event, recv)
        return None

    def apply(self, batch: list[tuple[float, Event]]) -> None:
        """Fold what a shared journal delivers, in its order, on every node alike."""
        remember, fold = self._remember, self._fold_counted
        for recv, event in batch:
            if event.id is not None:
                remember((event.source, event.id))
            fold(event, recv)

    def replay(self, event: Event, recv: float | None = None) -> Exception | None:
        """Fold an event read back from the journal: remembered for de-duplication, not stored.

        The event is checked again by the rules of `parse`, its times around `recv` (its
        arrival): a journal written before a rule existed may hold what the rule refuses.
        The configurable limits are taken at their widest: an event accepted before a
        setting was lowered is not quarantined for it. Returns the exception its check or
        fold raised (counted; the caller quarantines it), or None.
        """
        try:
            check_event(event, recv, WIDEST_LIMITS)
        except EventError as exc:  # stored by an older version, before a rule existed
            self.rejected[exc.code] += 1
            self.aggregator.errors.record("restore", exc, event)
            return exc
        key = (event.source, event.id) if event.id is not None else None
        if self._is_duplicate(key):
            return None
        self._remember(key)
        try:
            self.aggregator.fold(event)
        except QueueLimitError:
            self.rejected["queue_limit"] += 1
        except AgentLimitError:
            pass  # counted by the aggregator
        except Exception as exc:  # a poisoned stored event must not stop the start
            self.aggregator.errors.record("restore", exc, event)
            return exc
        return None

    def fold(self, event: Event, recv: float | None = None) -> str:
        """Fold one valid, de-duplicated event; returns accepted, late or failed.

        `recv` is the event's arrival in the journal: given, a fold that raises quarantines it.
        """
        try:
            counted = self.aggregator.fold(event)
        except QueueLimitError as exc:
            self.rejected["queue_limit"] += 1
            raise EventError("queue", f"queue {exc} would exceed server.max_queues",
                             "queue_limit") from None
        except AgentLimitError as exc:  # counted by the aggregator
            raise EventError("agent", f"agent {exc} would exceed server.max_agents",
                             "agent_limit") from None
        except Exception as exc:  # one event's fold never stops its batch, its source or the hub
            self.aggregator.errors.record("fold", exc, event)
            if recv is not None and self.journal is not None:
                self.journal.quarantine([(recv, event, "fold", reason(exc))])
            return FAILED
        source = event.source or ""
        # A plain dict: a Counter's += costs more than the rest of this method together.
        if source in self.accepted:
            self.accepted[source] += 1
        else:
            self.accepted[source] = 1
        if self.on_change is not None:
            self.on_change()
        if not counted:
            self.late += 1
            return LATE
        return ACCEPTED
