"""Freshdesk ticket objects (with `include=stats`) mapped to canonical ticket events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wallboard.kit import SourceError, parse_time

OPEN, PENDING, RESOLVED, CLOSED = 2, 3, 4, 5
DONE = frozenset({RESOLVED, CLOSED})
# Unresolved statuses on the board: 6 and 7 are Freshdesk's default "Waiting on Customer" and
# "Waiting on Third Party"; custom statuses count as open (keyed by object: looked up with
# whatever the API sent).
WORKING: dict[object, str] = {OPEN: "open", PENDING: "pending", 6: "pending", 7: "hold"}
FIRST_RESPONSE, RESOLUTION = "first_response_time", "resolution_time"


def iso(ts: float) -> str:
    """Epoch seconds as the UTC text Freshdesk's `updated_since` takes."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(kind: str, ticket_id: str, ts: float, base: dict[str, Any],
           **extra: Any) -> dict[str, Any]:
    """One ticket event with a deterministic id: ticket id, kind and event time."""
    return {"type": f"ticket.{kind}", "id": f"fd-{ticket_id}-{kind}-{int(ts)}", "ts": ts,
            **base, **extra}


class Deadline:
    """An open ticket's SLA deadlines, watched between re-reads for a breach."""

    __slots__ = ("base", "due", "fr_due")

    def __init__(self, base: dict[str, Any], fr_due: float | None, due: float | None) -> None:
        self.base, self.fr_due, self.due = base, fr_due, due

    def to_json(self) -> dict[str, Any]:
        """The deadline as saved in the state file."""
        return {"base": self.base, "fr_due": self.fr_due, "due": self.due}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deadline:
        """A deadline read back from the state file."""
        return cls(dict(data["base"]), data.get("fr_due"), data.get("due"))


def breach(ticket_id: str, metric: str, due: float, base: dict[str, Any]) -> dict[str, Any]:
    """A ticket.sla_breached event at the deadline; one per ticket and metric."""
    return {"type": "ticket.sla_breached", "id": f"fd-{ticket_id}-breach-{metric}", "ts": due,
            "metric": metric, **base}


def check_deadlines(watch: dict[str, Deadline], now: float) -> list[dict[str, Any]]:
    """Breaches of watched deadlines that have passed; passed deadlines stop being watched."""
    out: list[dict[str, Any]] = []
    for ticket_id in list(watch):
        deadline = watch[ticket_id]
        if deadline.fr_due is not None and deadline.fr_due <= now:
            out.append(breach(ticket_id, FIRST_RESPONSE, deadline.fr_due, deadline.base))
            deadline.fr_due = None
        if deadline.due is not None and deadline.due <= now:
            out.append(breach(ticket_id, RESOLUTION, deadline.due, deadline.base))
            deadline.due = None
        if deadline.fr_due is None and deadline.due is None:
            del watch[ticket_id]
    return out


class Mapper:
    """Turns one Freshdesk ticket into its lifecycle events and tracks open deadlines."""

    def __init__(self, groups: dict[str, str], default_queue: str) -> None:
        self.groups, self.default_queue = groups, default_queue

    def queue_of(self, ticket: dict[str, Any]) -> str:
        """The board queue of a ticket: its group mapped by `groups`, else the default."""
        group = ticket.get("group_id")
        return self.groups.get(str(group), self.default_queue) if group is not None \
            else self.default_queue

    def ticket_events(self, ticket: Any, now: float,
                      watch: dict[str, Deadline]) -> list[dict[str, Any]]:
        """The events one ticket's current record implies, oldest first."""
        if not isinstance(ticket, dict) or ticket.get("id") is None:
            raise SourceError("tickets: expected ticket objects with an 'id'")
        ticket_id = str(ticket["id"])
        created = parse_time(ticket.get("created_at"))
        if created is None:
            raise SourceError(f"ticket {ticket_id}: no valid created_at")
        stats = raw if isinstance(raw := ticket.get("stats"), dict) else {}
        status = ticket.get("status")
        base: dict[str, Any] = {"contact_id": ticket_id, "queue": self.queue_of(ticket),
                                "channel": "ticket"}
        if isinstance(ticket.get("priority"), int):
            base["priority"] = ticket["priority"]
        fr_due, due = parse_time(ticket.get("fr_due_by")), parse_time(ticket.get("due_by"))
        responded = parse_time(stats.get("first_responded_at"))
        resolved = parse_time(stats.get("resolved_at")) or parse_time(stats.get("closed_at"))
        reopened = parse_time(stats.get("reopened_at"))
        created_extra = {"due_ts": due} if due is not None else {}
        events = [_event("created", ticket_id, created, base, **created_extra)]
        if responded is not None:
            events.append(_event("first_response", ticket_id, responded, base))
            if fr_due is not None and responded > fr_due:
                events.append(breach(ticket_id, FIRST_RESPONSE, fr_due, base))
        if reopened is not None and resolved is not None and resolved < reopened:
            events.append(_event("resolved", ticket_id, resolved, base))
            events.append(_event("reopened", ticket_id, reopened, base))
        if status in DONE:
            current = resolved is not None and (reopened is None or resolved >= reopened)
            done = resolved if current else (parse_time(stats.get("status_updated_at"))
                                             or parse_time(ticket.get("updated_at")))
            if done is not None:
                events.append(_event("resolved", ticket_id, done, base))
                if due is not None and done > due:
                    events.append(breach(ticket_id, RESOLUTION, due, base))
            watch.pop(ticket_id, None)
        else:
            # The backlog's pending split, as of the status's last change.
            since = (parse_time(stats.get("status_updated_at"))
                     or parse_time(ticket.get("updated_at")) or created)
            events.append(_event("status", ticket_id, max(since, created), base,
                                 status=WORKING.get(status, "open")))
            pending_fr = fr_due if responded is None else None
            watch.pop(ticket_id, None)
            one = {ticket_id: Deadline(base, pending_fr, due)}
            events.extend(check_deadlines(one, now))
            watch.update(one)  # empty when both deadlines have passed
        events.sort(key=lambda e: e["ts"])
        return events
