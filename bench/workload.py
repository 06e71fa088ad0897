"""The benchmarks' synthetic contact center: a seeded event stream on a virtual clock."""

from __future__ import annotations

import heapq
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from wallboard.base.clock import VirtualClock as VirtualClock  # the benchmarks' clock
from wallboard.model.events import Event

SOURCE = "bench"
# 21:00 UTC: a long run crosses local midnight, so the 'today' window rolls over too.
START_TS = datetime(2025, 1, 15, 21, 0, tzinfo=UTC).timestamp()
CONFIG: dict[str, Any] = {
    "site": {"name": "Bench", "timezone": "UTC"},
    "queues": {
        "sales": {"label": "Sales", "channel": "voice"},
        "support": {"label": "Support", "channel": "voice"},
        "chat": {"label": "Chat", "channel": "chat", "service_level": {"threshold_s": 60}},
        "email": {"label": "Email", "channel": "email",
                  "service_level": {"threshold_s": 3600, "short_abandon_s": 0}},
    },
}
# Per queue: share of arrivals, mean wait when answered, mean wait before abandoning,
# abandon probability, mean talk, mean wrap-up (seconds).
PROFILES: dict[str, tuple[float, float, float, float, float, float]] = {
    "sales": (0.35, 18.0, 35.0, 0.10, 240.0, 30.0),
    "support": (0.35, 30.0, 45.0, 0.14, 360.0, 45.0),
    "chat": (0.20, 50.0, 90.0, 0.08, 420.0, 20.0),
    "email": (0.10, 1500.0, 7200.0, 0.02, 300.0, 60.0),
}
CHANNEL_OF = {name: q["channel"] for name, q in CONFIG["queues"].items()}
SURVEY_SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}



def event_stream(seed: int = 42, arrivals_per_s: float = 6.0, agents: int = 300,
                 start: float = START_TS) -> Iterator[Event]:
    """An endless, time-ordered stream of a busy center's events, with unique ids."""
    rng = random.Random(seed)
    names = list(PROFILES)
    weights = [PROFILES[q][0] for q in names]
    pending: list[tuple[float, int, Event]] = []  # (ts, tiebreak, event) scheduled for later
    seq = 0
    t = start
    contact = 0

    def later(event: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (event.ts, seq, event))

    while True:
        t += rng.expovariate(arrivals_per_s)
        while pending and pending[0][0] <= t:
            yield heapq.heappop(pending)[2]
        contact += 1
        queue = rng.choices(names, weights)[0]
        _, wait_mean, patience_mean, p_abandon, talk_mean, wrap_mean = PROFILES[queue]
        channel = CHANNEL_OF[queue]
        cid = f"c{contact}"
        yield Event(type="contact.queued", ts=t, source=SOURCE, queue=queue, channel=channel,
                    contact_id=cid)
        if rng.random() < p_abandon:
            wait = rng.expovariate(1 / patience_mean)
            later(Event(type="contact.abandoned", ts=t + wait, source=SOURCE, queue=queue,
                        channel=channel, contact_id=cid, wait_s=round(wait, 3)))
            continue
        wait = rng.expovariate(1 / wait_mean)
        talk = rng.expovariate(1 / talk_mean)
        hold = rng.choice((0.0, 0.0, 0.0, rng.uniform(5, 90)))
        wrap = rng.expovariate(1 / wrap_mean)
        agent = f"a{rng.randrange(agents)}"
        answered = t + wait
        ended = answered + talk + hold
        later(Event(type="contact.answered", ts=answered, source=SOURCE, queue=queue,
                    channel=channel, contact_id=cid, agent=agent, wait_s=round(wait, 3)))
        later(Event(type="agent.state", ts=answered, source=SOURCE, agent=agent, state="busy",
                    queue=queue))
        later(Event(type="contact.ended", ts=ended, source=SOURCE, queue=queue, channel=channel,
                    contact_id=cid, agent=agent, talk_s=round(talk, 3), hold_s=round(hold, 3),
                    wrap_s=round(wrap, 3)))
        later(Event(type="agent.state", ts=ended, source=SOURCE, agent=agent, state="wrapup",
                    queue=queue))
        later(Event(type="agent.state", ts=ended + wrap, source=SOURCE, agent=agent,
                    state=rng.choice(("available",) * 9 + ("away",)), queue=queue))
        if rng.random() < 0.25:
            kind = rng.choice(tuple(SURVEY_SCALES))
            low, high = SURVEY_SCALES[kind]
            later(Event(type="survey.response", ts=ended + rng.uniform(10, 120), source=SOURCE,
                        queue=queue, channel=channel, contact_id=cid, kind=kind,
                        score=float(rng.randint(low, high)), scale_min=float(low),
                        scale_max=float(high)))


def with_ids(stream: Iterator[Event]) -> Iterator[Event]:
    """Number the events of a stream: e1, e2, ..."""
    for n, event in enumerate(stream, start=1):
        event.id = f"e{n}"
        yield event


def make_events(count: int, seed: int = 42) -> list[Event]:
    """Pre-generate `count` time-ordered events."""
    return list(islice(with_ids(event_stream(seed)), count))


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC text with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def to_raw(event: Event, text_ts: bool) -> dict[str, Any]:
    """The JSON object a webhook would receive for `event` (no source: the server sets it)."""
    raw = event.to_dict()
    raw.pop("source", None)
    if text_ts:
        raw["ts"] = rfc3339(event.ts)
    return raw


def pin_one_core() -> int | None:
    """Pin this process to a single CPU (the last one allowed); returns it."""
    try:
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None

