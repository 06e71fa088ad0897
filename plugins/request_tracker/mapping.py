"""RT 5 REST2 payloads (search pages, tickets, history, queues) mapped to ticket events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wallboard.kit import SourceError

Out = list[dict[str, Any]]
# RT's default lifecycle: leaving these statuses closes a ticket for the board.
INACTIVE = frozenset({"resolved", "rejected", "deleted"})
STALLED = "stalled"


def rt_time(value: Any) -> float | None:
    """Epoch seconds from an RT date; None when absent or RT's "unset" epoch 0."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # REST2 speaks UTC
    seconds = parsed.timestamp()
    return seconds if seconds > 0 else None  # RT sends 1970-01-01T00:00:00Z for "not set"


def sql_time(epoch: float) -> str:
    """An epoch as a TicketSQL date literal (read by RT in the user's zone: keep it UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def page_items(payload: Any, what: str) -> tuple[list[dict[str, Any]], int]:
    """The items of one REST2 collection page, and how many pages there are."""
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise SourceError(f"{what}: expected a REST2 page with an 'items' list")
    pages = payload.get("pages")
    items = [item for item in payload["items"] if isinstance(item, dict)]
    return items, pages if isinstance(pages, int) and pages > 0 else 1


@dataclass(frozen=True)
class Stub:
    """A ticket as the search lists it: enough to know whether it changed."""

    id: str
    last_updated: float | None


def search_stubs(payload: Any) -> tuple[list[Stub], int]:
    """The tickets on one search page, and the page count."""
    items, pages = page_items(payload, "ticket search")
    stubs = [Stub(str(item["id"]), rt_time(item.get("LastUpdated")))
             for item in items if item.get("type", "ticket") == "ticket" and "id" in item
             and isinstance(item["id"], str | int)]
    return stubs, pages


def ref_id(value: Any) -> str | None:
    """The id of a REST2 reference such as {"type": "queue", "id": "1", "_url": ...}."""
    if isinstance(value, dict) and isinstance(value.get("id"), str | int):
        return str(value["id"])
    if isinstance(value, str | int):
        return str(value)
    return None


@dataclass(frozen=True)
class Queue:
    """An RT queue: its name and whether RT's SLA drives its tickets' Due."""

    name: str
    sla_on: bool


def to_queue(payload: Any) -> Queue:
    """A queue from GET /queue/{id}."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Name"), str):
        raise SourceError("queue: expected an object with a 'Name'")
    return Queue(payload["Name"], str(payload.get("SLADisabled", "1")) == "0")


@dataclass
class Ticket:
    """The fields of GET /ticket/{id} the board uses."""

    id: str
    queue_id: str
    status: str
    created: float
    due: float | None
    priority: int | None
    requestors: frozenset[str]


def to_ticket(payload: Any) -> Ticket:
    """A ticket from GET /ticket/{id}."""
    if not isinstance(payload, dict):
        raise SourceError("ticket: expected an object")
    ticket_id, queue_id = ref_id(payload.get("id")), ref_id(payload.get("Queue"))
    created = rt_time(payload.get("Created"))
    if ticket_id is None or queue_id is None or created is None:
        raise SourceError(f"ticket {ticket_id}: missing id, Queue or Created")
    people = payload.get("Requestor")
    requestors = frozenset(r for r in map(ref_id, people) if r) if isinstance(people, list) \
        else frozenset()
    raw_priority = payload.get("Priority")
    try:
        priority = int(raw_priority) if raw_priority is not None else None
    except (TypeError, ValueError):
        priority = None
    status = payload.get("Status")
    return Ticket(ticket_id, queue_id, status if isinstance(status, str) else "",
                  created, rt_time(payload.get("Due")), priority, requestors)


@dataclass(frozen=True)
class Txn:
    """One history transaction."""

    id: str
    type: str
    ts: float
    creator: str | None
    field: str
    old: str
    new: str


def history_txns(payload: Any) -> tuple[list[Txn], int]:
    """The transactions on one history page, and the page count."""
    items, pages = page_items(payload, "ticket history")
    txns = []
    for item in items:
        ts = rt_time(item.get("Created"))
        if item.get("type", "transaction") != "transaction" or ts is None or "id" not in item:
            continue
        txns.append(Txn(str(item["id"]), str(item.get("Type") or ""), ts,
                        ref_id(item.get("Creator")), str(item.get("Field") or ""),
                        str(item.get("OldValue") or ""), str(item.get("NewValue") or "")))
    return txns, pages


def ticket_events(ticket: Ticket, queue: Queue, txns: list[Txn], board_queue: str,
                  now: float) -> Out:
    """The ticket's lifecycle as events with ids that are the same on every re-read."""
    key = f"rt-{ticket.id}"
    due = ticket.due if queue.sla_on else None  # without RT's SLA, Due is just a free date
    base = {"queue": board_queue, "channel": "ticket", "contact_id": key}
    created: dict[str, Any] = {**base, "type": "ticket.created", "id": f"{key}:created",
                               "ts": ticket.created}
    if ticket.priority is not None and ticket.priority >= 0:
        created["priority"] = ticket.priority
    if due is not None:
        created["due_ts"] = due
    out: Out = [created]
    responded = False
    closed_at: float | None = None
    for txn in sorted(txns, key=lambda t: (t.ts, _int(t.id))):
        if txn.type == "Correspond" and not responded and txn.creator not in ticket.requestors:
            # A requester's own follow-up by mail is a Correspond too: it is not a response.
            responded = True
            out.append({**base, "type": "ticket.first_response",
                        "id": f"{key}:first_response:{txn.id}", "ts": txn.ts})
        elif txn.type == "Status" or (txn.type == "Set" and txn.field == "Status"):
            was, now_closed = txn.old in INACTIVE, txn.new in INACTIVE
            if now_closed and not was:
                closed_at = txn.ts
                out.append({**base, "type": "ticket.resolved",
                            "id": f"{key}:resolved:{txn.id}", "ts": txn.ts})
            elif was and not now_closed:
                closed_at = None
                out.append({**base, "type": "ticket.reopened",
                            "id": f"{key}:reopened:{txn.id}", "ts": txn.ts})
            if txn.new == STALLED or (txn.old == STALLED and not now_closed):
                # RT's "stalled" is the pending split of the backlog: waiting on someone else.
                out.append({**base, "type": "ticket.status", "id": f"{key}:status:{txn.id}",
                            "ts": txn.ts, "status": "pending" if txn.new == STALLED else "open"})
    if due is not None and (closed_at if closed_at is not None else now) > due:
        # Still open past the deadline, or closed after it: one breach per deadline.
        out.append(breach(key, board_queue, due))
    return out


def breach(key: str, board_queue: str, due: float) -> dict[str, Any]:
    """The SLA breach of one deadline; the id names the deadline, so it is counted once."""
    return {"type": "ticket.sla_breached", "id": f"{key}:sla:{int(due)}", "ts": due,
            "queue": board_queue, "channel": "ticket", "contact_id": key, "metric": "due"}


def _int(text: str) -> int:
    """Transaction ids sort numerically; anything else first."""
    return int(text) if text.isdigit() else -1
