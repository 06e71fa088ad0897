"""Webhook traffic for the journal tests, and the KPIs it must give, computed independently."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

THRESHOLD_S, SHORT_S = 20.0, 5.0  # the default service level: 80/20, 5 s short abandons


@dataclass
class Contact:
    """One contact's story and the events that tell it."""

    queue: str
    outcome: str  # answered, abandoned, waiting
    wait: float
    handle: float = 0.0
    csat: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def contacts(rng: random.Random, prefix: str) -> Iterator[Contact]:
    """An endless stream of contacts whose events all lie in the last five minutes."""
    for n in itertools.count(1):
        now = time.time()
        queue = rng.choice(("sales", "chat"))
        cid = f"{prefix}-c{n}"
        outcome = rng.choices(("answered", "abandoned", "waiting"), (0.75, 0.15, 0.10))[0]
        wait = round(rng.uniform(0.5, 60.0), 3)
        start = now - 270 + rng.uniform(0, 20)
        base = {"queue": queue, "contact_id": cid}
        contact = Contact(queue, outcome, wait)
        contact.events.append({"type": "contact.queued", "id": f"{cid}-q", "ts": start, **base})
        if outcome == "waiting":
            # Still waiting: its service-level deadline has passed, so it counts as missed.
            contact.wait = 0.0
        elif outcome == "abandoned":
            contact.events.append({"type": "contact.abandoned", "id": f"{cid}-x",
                                   "ts": start + wait, "wait_s": wait, **base})
        else:
            talk, wrap = round(rng.uniform(20, 150), 3), round(rng.uniform(0, 30), 3)
            contact.handle = talk + wrap
            contact.events += [
                {"type": "contact.answered", "id": f"{cid}-a", "ts": start + wait,
                 "wait_s": wait, "agent": f"a{rng.randrange(9)}", **base},
                {"type": "contact.ended", "id": f"{cid}-e", "ts": start + wait + talk + wrap,
                 "talk_s": talk, "wrap_s": wrap, **base}]
            if rng.random() < 0.3:
                contact.csat = rng.randint(1, 5)
                contact.events.append({"type": "survey.response", "id": f"{cid}-s",
                                       "ts": start + wait + talk + wrap + 1, "queue": queue,
                                       "kind": "csat", "score": contact.csat})
        yield contact


def expected_today(group: Iterable[Contact]) -> dict[str, Any]:
    """Today's KPIs for these contacts, from the definitions in docs/kpis.md."""
    group = list(group)
    answered = [c for c in group if c.outcome == "answered"]
    abandoned = [c for c in group if c.outcome == "abandoned"]
    short = [c for c in abandoned if c.wait < SHORT_S]
    long_abandons = len(abandoned) - len(short)
    met = sum(c.wait <= THRESHOLD_S for c in answered)
    missed = (len(answered) - met + long_abandons
              + sum(c.outcome == "waiting" for c in group))
    surveys = [c.csat for c in group if c.csat is not None]

    def ratio(num: float, den: float) -> float | None:
        return round(num / den, 6) if den else None

    return {
        "offered": len(group), "answered": len(answered), "abandoned": len(abandoned),
        "abandoned_short": len(short), "sl_met": met, "sl_missed": missed,
        "service_level": ratio(met, met + missed),
        "asa_s": ratio(sum(c.wait for c in answered), len(answered)),
        "aht_s": ratio(sum(c.handle for c in answered), len(answered)),
        "abandon_rate": ratio(long_abandons, len(answered) + long_abandons),
        "csat_n": len(surveys), "csat": ratio(sum(s >= 4 for s in surveys), len(surveys)),
    }


def observed_today(block: dict[str, Any]) -> dict[str, Any]:
    """The same KPIs read from a snapshot's window block."""
    return {key: block[key] for key in expected_today([])}


def approx_equal(observed: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Counts exactly; ratios and means to 1e-6 (the snapshot rounds them to six places)."""
    for key, want in expected.items():
        got = observed[key]
        if isinstance(want, float) and isinstance(got, float):
            if abs(got - want) > 2e-6:
                return False
        elif got != want:
            return False
    return True


WINDOWS = ("15m", "1h", "today")


def windows_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Every window block of the site and of each queue: what must survive a restart."""
    blocks = {f"total.{w}": snapshot["total"][w] for w in WINDOWS}
    for name, queue in snapshot["queues"].items():
        blocks.update({f"{name}.{w}": queue[w] for w in WINDOWS})
    return blocks
