"""Synthetic days of contacts for the report tests, and their interval rows recounted by hand.

The recount follows docs/reports.md, not the fold: each contact's facts land in the interval
holding their own time (offered at queue time, answered or abandoned when it left the queue,
handled when it ended, a miss past the threshold at its deadline).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

THRESHOLD_S = {"sales": 20.0, "chat": 60.0}
SHORT_S = 5.0
CHANNEL = {"sales": "voice", "chat": "chat"}


@dataclass
class Call:
    """One contact: when it queued, how long it waited, how it left, its handling time."""

    cid: str
    queue: str
    queued: float
    wait: float
    answered: bool
    handle: float


def day_of_calls(rng: random.Random, day_start: float, n: int, prefix: str) -> list[Call]:
    """`n` contacts between 08:00 and 18:00 of the day starting at `day_start` (UTC)."""
    calls = []
    for i in range(n):
        queue = rng.choice(("sales", "chat"))
        queued = day_start + 8 * 3600 + rng.uniform(0, 10 * 3600)
        calls.append(Call(f"{prefix}-{i}", queue, round(queued, 3),
                          round(rng.choice((rng.uniform(0.5, 15), rng.uniform(15, 200))), 3),
                          rng.random() < 0.8, round(rng.uniform(30, 400), 3)))
    return sorted(calls, key=lambda c: c.queued)


def events_of(calls: list[Call]) -> list[dict[str, Any]]:
    """The canonical events the contacts make, in time order."""
    events = []
    for c in calls:
        base = {"queue": c.queue, "contact_id": c.cid}
        events.append({"type": "contact.queued", "id": f"{c.cid}-q", "ts": c.queued, **base})
        left = c.queued + c.wait
        if c.answered:
            events.append({"type": "contact.answered", "id": f"{c.cid}-a", "ts": left,
                           "wait_s": c.wait, "agent": "a1", **base})
            events.append({"type": "contact.ended", "id": f"{c.cid}-e", "ts": left + c.handle,
                           "talk_s": c.handle, **base})
        else:
            events.append({"type": "contact.abandoned", "id": f"{c.cid}-x", "ts": left,
                           "wait_s": c.wait, **base})
    return sorted(events, key=lambda e: e["ts"])


def _start(ts: float, width: int) -> int:
    return int(ts // width) * width  # UTC site: local buckets are UTC buckets


def recount(calls: list[Call], width: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (queue, bucket start) and ("", start) for the site: every report field by hand."""
    acc: dict[tuple[str, int], dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    waits: dict[tuple[str, int], list[float]] = defaultdict(list)
    for c in calls:
        threshold = THRESHOLD_S[c.queue]
        left = c.queued + c.wait
        for q in (c.queue, ""):
            acc[(q, _start(c.queued, width))]["offered"] += 1
            if c.answered:
                a = acc[(q, _start(left, width))]
                a["answered"] += 1
                a["wait_sum"] += c.wait
                waits[(q, _start(left, width))].append(c.wait)
                e = acc[(q, _start(left + c.handle, width))]
                e["handled"] += 1
                e["handle_sum"] += c.handle
                if c.wait <= threshold:
                    a["met"] += 1
            else:
                a = acc[(q, _start(left, width))]
                a["abandoned"] += 1
                if c.wait < SHORT_S:
                    a["short"] += 1
                elif c.wait <= threshold:
                    a["missed"] += 1  # abandons_negative: a long abandon within T misses
            if c.wait > threshold:  # missed at its deadline, however it left
                acc[(q, _start(c.queued + threshold, width))]["missed"] += 1
    out = {}
    for key, a in acc.items():
        long_abandons = a["abandoned"] - a["short"]
        out[key] = {
            "offered": int(a["offered"]), "answered": int(a["answered"]),
            "abandoned": int(a["abandoned"]), "abandoned_short": int(a["short"]),
            "handled": int(a["handled"]),
            "asa_s": _ratio(a["wait_sum"], a["answered"]),
            "aht_s": _ratio(a["handle_sum"], a["handled"]),
            "service_level": _ratio(a["met"], a["met"] + a["missed"]),
            "abandon_rate": _ratio(long_abandons, a["answered"] + long_abandons),
            "wait_p90_s": _nearest_rank(waits.get(key, []), 0.9),
        }
    return out


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def _nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def iso(ts: float) -> str:
    """RFC 3339 in UTC as the report writes it for a UTC site."""
    return datetime.fromtimestamp(ts, UTC).isoformat()
