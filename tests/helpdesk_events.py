"""Convert the public helpdesk event log (tests/data/helpdesk) into canonical ticket events.

The log has one row per activity of a case (a ticket). The mapping, decided from the data:

* Queue: the ``support_section`` column ("Value 3" -> queue ``section-3``). It never changes
  within a case (``workgroup`` does in 5 cases), so a ticket is created, counted in the
  backlog and resolved in one queue. 7 values, well within ``server.max_queues``.
* Creation: the first "Assign seriousness" or "Insert ticket" of a case. Whenever a case has
  one, it is the case's first row. The 78 cases without one (they start with "Take in charge
  ticket" and the like) have no known creation time and are left out entirely, so they can
  neither skew response times nor leave tickets in the backlog that were never created.
  Later creation activities (425 cases assign seriousness twice) are further work.
* First response: the first "Take in charge ticket" (one per ticket, never repeated).
* Resolution: a "Resolve ticket" while the ticket is open emits ``ticket.resolved``. Further
  "Resolve ticket" rows with no work in between are the same resolution recorded again
  (254 of them, median 1 s after the previous one) and emit nothing: the FIRST resolve of
  each resolution counts.
* Reopen: the first row of further work after a resolution (any activity except
  "Resolve ticket", "Closed" and the linked software anomaly's tracker statuses RESOLVED,
  VERIFIED, INVALID, DUPLICATE) emits ``ticket.reopened`` at that row's time; the next
  resolve emits ``ticket.resolved`` again: 157 reopens of 148 tickets.
* "Closed" is not a canonical event: it emits nothing when the ticket is already resolved;
  it emits ``ticket.resolved`` when the ticket is open (closed without a resolve; this never
  happens in this log). 12 tickets are still open at the end of the log.
* Timestamps ``YYYY/M/D HH:MM:SS`` are taken as UTC. Channel ``ticket``; ``contact_id`` is
  the Case ID; ``agent`` the row's Resource for responses and resolutions; ids
  ``hd-<case number>-<k>`` (the k-th event of the case) are unique and stable.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

CREATE = frozenset({"Assign seriousness", "Insert ticket"})
RESPOND = "Take in charge ticket"
RESOLVE = "Resolve ticket"
CLOSE = "Closed"
# Status changes of the linked software-anomaly record: not work on the ticket itself.
NOT_WORK = frozenset({RESOLVE, CLOSE, "RESOLVED", "VERIFIED", "INVALID", "DUPLICATE"})


def parse_time(text: str) -> float:
    """A log timestamp like '2012/10/9 14:50:17', taken as UTC, in epoch seconds."""
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC text."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def queue_of(row: dict[str, str]) -> str:
    """The queue of a row: its support section, 'Value 3' -> 'section-3'."""
    return "section-" + row["support_section"].removeprefix("Value ").strip()


def read_cases(path: str | Path) -> dict[str, list[dict[str, str]]]:
    """Rows grouped by Case ID, in file order (which is time order within a case)."""
    cases: dict[str, list[dict[str, str]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            cases.setdefault(row["Case ID"], []).append(row)
    return cases


def case_events(case: str, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The canonical events of one case; empty when it has no creation activity."""
    if not any(row["Activity"] in CREATE for row in rows):
        return []
    number = case.removeprefix("Case ").strip()
    queue = queue_of(rows[0])
    out: list[dict[str, Any]] = []

    def emit(etype: str, ts: float, agent: str | None = None) -> None:
        event = {"type": etype, "id": f"hd-{number}-{len(out)}", "ts": rfc3339(ts),
                 "queue": queue, "channel": "ticket", "contact_id": case}
        if agent:
            event["agent"] = "resource-" + agent.removeprefix("Value ").strip()
        out.append(event)

    created = responded = resolved = False
    for row in rows:
        activity, agent = row["Activity"], row["Resource"]
        ts = parse_time(row["Complete Timestamp"])
        if not created:
            if activity in CREATE:  # always the first row of a case that has one
                created = True
                emit("ticket.created", ts)
            continue
        if resolved and activity not in NOT_WORK:
            resolved = False
            emit("ticket.reopened", ts)
        if activity == RESPOND and not responded:
            responded = True
            emit("ticket.first_response", ts, agent)
        elif activity in (RESOLVE, CLOSE) and not resolved:
            resolved = True
            emit("ticket.resolved", ts, agent)
    return out


def helpdesk_events(path: str | Path) -> list[dict[str, Any]]:
    """Every case's canonical ticket events, sorted by time (stable: case order on ties)."""
    events = [e for case, rows in read_cases(path).items() for e in case_events(case, rows)]
    # RFC 3339 'Z' text of one fixed width sorts like the time it stands for.
    events.sort(key=lambda e: e["ts"])
    return events


def write_ndjson(events: list[dict[str, Any]], path: str | Path) -> None:
    """Write events one JSON object per line."""
    with open(path, "wb") as handle:
        for event in events:
            handle.write(orjson.dumps(event) + b"\n")


if __name__ == "__main__":
    import sys

    source = sys.argv[1] if len(sys.argv) > 1 else str(
        Path(__file__).resolve().parent / "data" / "helpdesk" / "helpdesk.csv")
    target = sys.argv[2] if len(sys.argv) > 2 else "helpdesk.ndjson"
    converted = helpdesk_events(source)
    write_ndjson(converted, target)
    print(f"{target}: {len(converted)} events")
