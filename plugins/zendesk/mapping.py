"""Zendesk tickets (with metric_sets) and ticket metric events as canonical ticket events."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from wallboard.kit import SourceError, parse_time

PRIORITIES = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
RESOLVED = frozenset({"solved", "closed"})
# Unresolved statuses as the board's backlog split: pending waits on the requester.
WORKING = {"new": "open", "open": "open", "pending": "pending", "hold": "hold"}
KNOWN_LIMIT = 50_000  # tickets whose queue and deadline are remembered in memory


def _minutes(value: Any) -> float | None:
    """The calendar minutes of a `{calendar, business}` metric, or None."""
    if isinstance(value, dict):
        value = value.get("calendar")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _items(payload: Any, key: str, what: str) -> list[Any]:
    """The list under `key` of a page, or a SourceError naming what was expected."""
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise SourceError(f"{what}: expected an object with a {key!r} list")
    return items


class Mapper:
    """Maps tickets and metric events; remembers each ticket's queue and first-reply deadline."""

    def __init__(self, groups: dict[str, str], queue: str | None, channel: str) -> None:
        self.groups = groups
        self.queue = queue
        self.channel = channel
        self.known: OrderedDict[str, str | None] = OrderedDict()  # ticket id -> queue
        self.due: OrderedDict[str, float] = OrderedDict()  # ticket id -> first-reply deadline

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > KNOWN_LIMIT:
            table.popitem(last=False)

    def queue_of(self, ticket: dict[str, Any]) -> str | None:
        """The board queue of a ticket: its group mapped, else the configured default."""
        group = ticket.get("group_id")
        return self.groups.get(str(group), self.queue) if group is not None else self.queue

    def _event(self, etype: str, tid: str, suffix: str, ts: float,
               queue: str | None, **extra: Any) -> dict[str, Any]:
        return {"type": etype, "id": f"zendesk:{tid}:{suffix}", "ts": ts, "queue": queue,
                "channel": self.channel, "contact_id": tid, **extra}

    def ticket(self, ticket: Any, sideloaded: dict[str, Any] | None = None
               ) -> list[dict[str, Any]]:
        """Events of one exported ticket: created, first response, resolved or reopened."""
        if not isinstance(ticket, dict) or ticket.get("id") is None:
            return []
        tid = str(ticket["id"])
        created = parse_time(ticket.get("created_at"))
        if created is None:
            return []
        updated = parse_time(ticket.get("updated_at")) or created
        queue = self.queue_of(ticket)
        self._remember(self.known, tid, queue)
        extra: dict[str, Any] = {}
        priority = str(ticket.get("priority") or "").lower()  # a trigger's placeholder: "High"
        if priority in PRIORITIES:
            extra["priority"] = PRIORITIES[priority]
        if tid in self.due:
            extra["due_ts"] = self.due[tid]
        events = [self._event("ticket.created", tid, "created", created, queue, **extra)]
        metrics = ticket.get("metric_set") or (sideloaded or {}).get(tid)
        metrics = metrics if isinstance(metrics, dict) else {}
        reply = _minutes(metrics.get("reply_time_in_minutes"))
        if reply is not None:
            events.append(self._event("ticket.first_response", tid, "first_response",
                                      min(created + reply * 60.0, max(updated, created)), queue))
        reopens = metrics.get("reopens")
        reopens = reopens if isinstance(reopens, int) and not isinstance(reopens, bool) else 0
        status = str(ticket.get("status") or "").lower()
        if status in RESOLVED:
            solved = parse_time(metrics.get("solved_at")) or updated
            events.append(self._event("ticket.resolved", tid, f"resolved:{reopens}",
                                      max(solved, created), queue))
        elif reopens > 0:
            when = parse_time(metrics.get("status_updated_at")) or updated
            events.append(self._event("ticket.reopened", tid, f"reopened:{reopens}",
                                      max(when, created), queue))
        if status in WORKING:
            # The backlog's pending split; the id names the status and when it was set, so a
            # re-read repeats it and a change is a new event.
            when = max(parse_time(metrics.get("status_updated_at")) or updated, created)
            events.append(self._event("ticket.status", tid, f"status:{status}:{int(when)}",
                                      when, queue, status=WORKING[status]))
        return events

    def tickets(self, payload: Any) -> list[dict[str, Any]]:
        """The events of one page of the incremental ticket export."""
        tickets = _items(payload, "tickets", "ticket export")
        # `include=metric_sets` side-loads one array beside the tickets, joined by ticket_id;
        # a metric_set inside the ticket (as some accounts return it) is read as well.
        sets = payload.get("metric_sets")
        sideloaded = {str(m["ticket_id"]): m for m in sets
                      if isinstance(m, dict) and m.get("ticket_id") is not None
                      } if isinstance(sets, list) else {}
        return [e for t in tickets for e in self.ticket(t, sideloaded)]

    def metric_event(self, item: Any) -> list[dict[str, Any]]:
        """A breach, a first-reply fulfil, or (no event) an apply_sla deadline remembered."""
        if not isinstance(item, dict) or item.get("ticket_id") is None:
            return []
        tid, kind, metric = str(item["ticket_id"]), item.get("type"), item.get("metric")
        ts = parse_time(item.get("time"))
        if ts is None:
            return []
        queue = self.known.get(tid, self.queue)
        first_reply = metric == "reply_time" and item.get("instance_id", 1) == 1
        if kind == "apply_sla" and first_reply:
            sla = raw if isinstance(raw := item.get("sla"), dict) else {}
            target_s = sla.get("target_in_seconds")
            if not isinstance(target_s, int | float):
                minutes = _minutes(sla.get("target"))
                target_s = minutes * 60.0 if minutes is not None else None
            if target_s is not None and not isinstance(target_s, bool):
                self._remember(self.due, tid, ts + float(target_s))
            return []
        if kind == "breach":
            extra = {"metric": str(metric)} if metric else {}
            return [self._event("ticket.sla_breached", tid, f"breach:{item.get('id')}", ts,
                                queue, **extra)]
        if kind == "fulfill" and first_reply and tid in self.known:
            # Same id as the metric_set's first reply, so whichever arrives first counts.
            return [self._event("ticket.first_response", tid, "first_response", ts, queue)]
        return []

    def metric_events(self, payload: Any) -> list[dict[str, Any]]:
        """The events of one page of the ticket metric events export."""
        items = _items(payload, "ticket_metric_events", "ticket metric events")
        return [e for item in items for e in self.metric_event(item)]
