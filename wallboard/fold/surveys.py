"""Survey responses: counter deltas on the declared scale; revisions replace earlier ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from wallboard.fold import counters as c
from wallboard.model.events import Event

# How long a counted response is remembered for a revision to replace it: longer than any
# window reaches back (yesterday starts at most 50 hours ago), so an update never finds its
# earlier revision forgotten while that one still counts somewhere.
SURVEY_MEMORY_S = 3 * 86_400


def survey_deltas(event: Event) -> c.Deltas:
    """Counter deltas for one survey response, on its declared scale."""
    low, high, score = event.scale_min or 0.0, event.scale_max or 0.0, event.score or 0.0
    if event.kind == "csat":
        # Top-2-box: the two highest points of the scale (4–5 on 1–5).
        return [(c.CSAT_N, 1.0), (c.CSAT_GOOD, 1.0 if score >= high - 1 else 0.0)]
    if event.kind == "nps":
        on_ten = (score - low) * 10.0 / (high - low)
        return [(c.NPS_N, 1.0), (c.NPS_PROMOTERS, 1.0 if on_ten >= 9 else 0.0),
                (c.NPS_DETRACTORS, 1.0 if on_ten <= 6 else 0.0)]
    return [(c.CES_N, 1.0), (c.CES_SUM, score), (c.CES_SQ, score * score)]


class CountedSurvey(NamedTuple):
    """What one revision of a response added, kept so that a later revision can take it back."""

    ts: float  # the revision's event time: an older revision never replaces a newer one
    at: float  # where its deltas were folded (event time, or the clock when ahead of it)
    leaf: tuple[str, str] | None  # the (queue, channel) it was folded into; None: deleted
    agent: str | None
    deltas: tuple[tuple[int, float], ...]


class SurveyMemory:
    """Counted responses by (source, response_id), oldest first, for at most SURVEY_MEMORY_S."""

    def __init__(self) -> None:
        self.counted: dict[tuple[str | None, str], CountedSurvey] = {}
        self.replaced = 0  # revisions that replaced an earlier one
        self.superseded = 0  # revisions that arrived after a newer one and were not counted
        self.retracted = 0  # responses taken back by a survey.retracted

    def count(self, event: Event, leaf: tuple[str, str], at: float,
              retract: Callable[[CountedSurvey], None]) -> c.Deltas | None:
        """The deltas to fold for `event`, after retracting the revision it replaces.

        None when a newer revision of the same response is already counted.
        """
        deltas = survey_deltas(event)
        if event.response_id is None:
            return deltas
        key = (event.source, event.response_id)
        prior = self.counted.pop(key, None)
        if prior is not None:
            if event.ts < prior.ts:
                self.counted[key] = prior
                self.superseded += 1
                return None
            if prior.deltas:  # not a tombstone
                retract(prior)
                self.replaced += 1
        # Re-inserted at the end: the dict stays (nearly) in time order for forget().
        self.counted[key] = CountedSurvey(event.ts, at, leaf, event.agent, tuple(deltas))
        return deltas

    def retract(self, event: Event, retract: Callable[[CountedSurvey], None]) -> None:
        """A deleted response: take back its counted revision and keep a tombstone in its place.

        The tombstone (no deltas, the deletion's time) makes a revision older than the deletion,
        delivered late, change nothing.
        """
        key = (event.source, event.response_id or "")
        prior = self.counted.pop(key, None)
        if prior is not None and event.ts < prior.ts:
            self.counted[key] = prior  # deleted before its latest revision: that one stands
            self.superseded += 1
            return
        if prior is not None and prior.deltas:
            retract(prior)
            self.retracted += 1
        self.counted[key] = CountedSurvey(event.ts, event.ts, None, None, ())

    def forget(self, now: float) -> None:
        """Drop responses older than every window; an out-of-order one only waits longer."""
        counted, horizon = self.counted, now - SURVEY_MEMORY_S
        while counted:
            key, first = next(iter(counted.items()))
            if first.at >= horizon:
                return
            del counted[key]
