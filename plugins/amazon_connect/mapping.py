"""Amazon Connect contact events (as EventBridge delivers them) to canonical events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wallboard.kit import parse_time

DETAIL_TYPE = "Amazon Connect Contact Event"
CHANNELS = {"VOICE": "voice", "CHAT": "chat", "TASK": "other", "EMAIL": "email"}
# Event types that may carry a queue leg; the others (CONNECTED_TO_SYSTEM, CONTACT_DATA_UPDATED,
# COMPLETED, ...) are answered but not counted.
COUNTED = ("QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED")
MAX_WAITING = 100_000  # contacts remembered between their QUEUED and their end


class MappingError(ValueError):
    """An event the mapping cannot use; `field` names the JSON path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def resource_id(arn: str, kind: str) -> str:
    """The id at the end of an ARN (`.../queue/<id>`, `.../agent/<id>`); other text as is."""
    marker = f"/{kind}/"
    return arn.rsplit(marker, 1)[1] if marker in arn else arn


def _text(obj: Mapping[str, Any], key: str, path: str) -> str:
    """A required non-empty string of `obj`, else MappingError naming its path."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MappingError(f"{path}.{key}", "is required (a non-empty string)")
    return value


def _time(obj: Mapping[str, Any], key: str, path: str) -> float:
    """A required RFC 3339 time of `obj` as epoch seconds, else MappingError."""
    seconds = parse_time(obj.get(key))
    if seconds is None:
        raise MappingError(f"{path}.{key}", "is required (an RFC 3339 time with offset)")
    return seconds


def _object(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A member of `obj` if it is an object, else None."""
    value = obj.get(key)
    return value if isinstance(value, dict) else None


class Mapper:
    """Maps one EventBridge event (`map`, no side effect); `remember` notes waiting contacts.

    The ids depend on the event alone, so a re-delivery maps to the same ids. The memory of
    waiting contacts only turns a second QUEUED of one contact, in another queue, into a
    transfer out of the first.
    """

    def __init__(self, queues: Mapping[str, str] | None = None,
                 agents: Mapping[str, str] | None = None) -> None:
        # Keys may be given as ids or ARNs; an event names ARNs, so both are cut to the id.
        self.queues = {resource_id(k, "queue"): v for k, v in (queues or {}).items()}
        self.agents = {resource_id(k, "agent"): v for k, v in (agents or {}).items()}
        self.waiting: dict[str, tuple[str, float]] = {}  # contact -> (queue, enqueued)

    def queue_of(self, arn: str) -> str:
        """The board queue of a queue ARN: configured, else the queue id itself."""
        queue_id = resource_id(arn, "queue")
        return self.queues.get(queue_id, queue_id)

    def agent_of(self, arn: str) -> str:
        """The board agent of an agent ARN (a user): configured, else the user id."""
        user_id = resource_id(arn, "agent")
        return self.agents.get(user_id, user_id)

    def _leg(self, payload: Any) -> tuple[str, str, str, float, dict[str, Any]] | None:
        """(eventType, contact, queue, enqueued, detail) of a counted event; None otherwise."""
        if not isinstance(payload, dict):
            raise MappingError("$", "expected a JSON object (one EventBridge event)")
        if payload.get("detail-type") != DETAIL_TYPE:
            raise MappingError("detail-type", f"expected {DETAIL_TYPE!r}")
        detail = _object(payload, "detail")
        if detail is None:
            raise MappingError("detail", "is required (an object)")
        etype = _text(detail, "eventType", "detail")
        if etype not in COUNTED:
            return None
        contact = _text(detail, "contactId", "detail")
        queue_info = _object(detail, "queueInfo")
        # No queue (an outbound call, an IVR-only call) or an agent's personal queue (a transfer
        # to one agent): not a leg of a board queue.
        if (queue_info is None or not queue_info.get("queueArn")
                or queue_info.get("queueType") == "AGENT"):
            return None
        queue = self.queue_of(_text(queue_info, "queueArn", "detail.queueInfo"))
        enqueued = _time(queue_info, "enqueueTimestamp", "detail.queueInfo")
        return etype, contact, queue, enqueued, detail

    def _moved_from(self, contact: str, queue: str, enqueued: float) -> tuple[str, float] | None:
        """The queue a contact waited in before this later QUEUED in another queue, if any."""
        before = self.waiting.get(contact)
        # An earlier enqueue time: a re-delivered older QUEUED, not a move.
        if before is None or before[0] == queue or enqueued <= before[1]:
            return None
        return before

    def remember(self, payload: Any) -> None:
        """Note what a stored event says of its contact: waiting in a queue, or no longer."""
        try:
            leg = self._leg(payload)
        except MappingError:
            return
        if leg is None:
            return
        etype, contact, queue, enqueued, _ = leg
        if etype != "QUEUED":
            self.waiting.pop(contact, None)
            return
        before = self.waiting.get(contact)
        if before is None or enqueued > before[1]:
            if before is None and len(self.waiting) >= MAX_WAITING:
                del self.waiting[next(iter(self.waiting))]  # forget the oldest contact
            self.waiting[contact] = (queue, enqueued)

    def map(self, payload: Any) -> list[dict[str, Any]]:
        """The canonical events of one EventBridge event; none for one not counted.

        MappingError for a body that is not an Amazon Connect contact event, or that lacks a
        field its event type needs.
        """
        leg = self._leg(payload)
        if leg is None:
            return []
        etype, contact, queue, enqueued, detail = leg
        leg_id = f"{contact}@{queue}"
        if etype == "QUEUED":
            event: dict[str, Any] = {"type": "contact.queued", "id": f"{leg_id}:queued",
                                     "ts": enqueued, "queue": queue, "contact_id": contact}
            channel = CHANNELS.get(str(detail.get("channel", "")).upper())
            if channel is not None:
                event["channel"] = channel
            moved = self._moved_from(contact, queue, enqueued)
            if moved is None:
                return [event]
            # Moved while waiting (a flow's Transfer to queue): the first leg ends here.
            return [{"type": "contact.transferred", "id": f"{contact}@{moved[0]}:transferred",
                     "ts": enqueued, "queue": moved[0], "contact_id": contact,
                     "to_queue": queue, "wait_s": max(enqueued - moved[1], 0.0)}, event]
        return [self._after_queue(etype, contact, queue, enqueued, detail)]

    def _after_queue(self, etype: str, contact: str, queue: str, enqueued: float,
                     detail: dict[str, Any]) -> dict[str, Any]:
        """contact.answered, contact.abandoned or contact.ended of one queue leg."""
        leg = f"{contact}@{queue}"
        agent_info = _object(detail, "agentInfo")
        connected = parse_time(agent_info.get("connectedToAgentTimestamp")) \
            if agent_info is not None else None
        if etype == "CONNECTED_TO_AGENT":
            if agent_info is None or connected is None:
                raise MappingError("detail.agentInfo.connectedToAgentTimestamp",
                                   "is required for CONNECTED_TO_AGENT")
            return {"type": "contact.answered", "id": f"{leg}:answered", "ts": connected,
                    "queue": queue, "contact_id": contact,
                    "agent": self.agent_of(_text(agent_info, "agentArn", "detail.agentInfo")),
                    "wait_s": max(connected - enqueued, 0.0)}
        ended = _time(detail, "disconnectTimestamp", "detail")
        if agent_info is None or connected is None:
            # Queued and gone before an agent took it: an abandon.
            return {"type": "contact.abandoned", "id": f"{leg}:abandoned", "ts": ended,
                    "queue": queue, "contact_id": contact, "wait_s": max(ended - enqueued, 0.0)}
        return {"type": "contact.ended", "id": f"{leg}:ended", "ts": ended, "queue": queue,
                "contact_id": contact,
                "agent": self.agent_of(_text(agent_info, "agentArn", "detail.agentInfo")),
                "talk_s": max(ended - connected, 0.0)}
