"""TaskRouter event callbacks to canonical events (protocols §3.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHANNELS = {"voice": "voice", "chat": "chat", "sms": "messaging", "email": "email",
            "video": "video", "default": "other"}
DEFAULT_ACTIVITIES = {"available": "available", "offline": "offline", "unavailable": "away",
                      "break": "away", "busy": "busy", "wrapup": "wrapup",
                      "wrap-up": "wrapup", "wrapping": "wrapup"}
PENDING = ("pending", "reserved")
MAX_TASKS = 100_000  # tasks remembered between acceptance and completion


class MappingError(ValueError):
    """A callback the mapping cannot use; `field` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message
        self.code = "missing_field" if message.startswith("is required") else "bad_value"


@dataclass
class TaskMemo:
    """What was seen of one task: where it queued and its age at each step."""

    queue: str | None = None
    accepted_age: float | None = None
    wrapup_age: float | None = None
    agent: str | None = None


def _number(params: Mapping[str, str], name: str) -> float | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise MappingError(name, f"{value[:32]!r} is not a number") from None


def event_time(params: Mapping[str, str]) -> float:
    """The event's time in epoch seconds: TimestampMs when present, else Timestamp."""
    ms = _number(params, "TimestampMs")
    if ms is not None:
        return ms / 1000.0
    seconds = _number(params, "Timestamp")
    if seconds is None:
        raise MappingError("Timestamp", "is required")
    return seconds


class Mapper:
    """Turns callbacks into events (`map`, no side effect); `remember` notes open tasks."""

    def __init__(self, queues: Mapping[str, str] | None = None,
                 activities: Mapping[str, str] | None = None, unknown_activity: str = "away",
                 queued_on: str = "task.created", max_tasks: int = MAX_TASKS) -> None:
        self.queues = dict(queues or {})
        self.activities = {**DEFAULT_ACTIVITIES,
                           **{k.lower(): v for k, v in (activities or {}).items()}}
        self.unknown_activity = unknown_activity
        self.queued_on = queued_on
        self.max_tasks = max_tasks
        self.tasks: dict[str, TaskMemo] = {}

    def _memo(self, task: str) -> TaskMemo:
        memo = self.tasks.get(task)
        if memo is None:
            if len(self.tasks) >= self.max_tasks:  # forget the oldest task
                del self.tasks[next(iter(self.tasks))]
            memo = self.tasks[task] = TaskMemo()
        return memo

    def queue_of(self, params: Mapping[str, str], memo: TaskMemo | None) -> str | None:
        """The wallboard queue: configured by TaskQueueSid or name, else the name itself."""
        sid, name = params.get("TaskQueueSid"), params.get("TaskQueueName")
        for key in (sid, name):
            if key and key in self.queues:
                return self.queues[key]
        return name or (memo.queue if memo else None)

    def map(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        """The canonical event for one callback, or None for event types not counted."""
        event = self._map(params)
        return None if event is None else {k: v for k, v in event.items() if v is not None}

    def _map(self, params: Mapping[str, str]) -> dict[str, Any] | None:
        etype = params.get("EventType", "")
        if not etype:
            raise MappingError("EventType", "is required")
        if etype == "worker.activity.update":
            return self._agent_state(params)
        if not (etype.startswith("task") or etype.startswith("reservation.")):
            return None
        task = params.get("TaskSid") or ""
        if not task:
            raise MappingError("TaskSid", f"is required for {etype}")
        base: dict[str, Any] = {"id": params.get("Sid") or params.get("EventSid") or None,
                                "ts": event_time(params), "contact_id": task}
        channel = CHANNELS.get(params.get("TaskChannelUniqueName", "").lower())
        age = _number(params, "TaskAge")
        memo = self.tasks.get(task)
        queue = self.queue_of(params, memo)
        if etype == self.queued_on:
            event = {**base, "type": "contact.queued", "queue": queue}
            return {**event, "channel": channel} if channel else event
        if etype == "reservation.accepted":
            return {**base, "type": "contact.answered", "queue": queue,
                    "agent": params.get("WorkerName") or None, "wait_s": age}
        if etype == "task.completed":
            return self._ended(base, queue, memo, age)
        if etype == "task.canceled" or (etype == "task.deleted" and params.get(
                "TaskAssignmentStatus") in PENDING):
            if memo is not None and memo.accepted_age is not None:
                return None  # answered, then canceled: its end is not known
            return {**base, "type": "contact.abandoned", "queue": queue, "wait_s": age}
        return None

    def remember(self, params: Mapping[str, str]) -> None:
        """Note what a callback says of its task; called once its event is stored."""
        etype, task = params.get("EventType", ""), params.get("TaskSid") or ""
        if not task:
            return
        if etype in (self.queued_on, "reservation.accepted", "task.wrapup"):
            if etype == "task.wrapup" and task not in self.tasks:
                return
            memo = self._memo(task)
            memo.queue = self.queue_of(params, memo)
            age = _number(params, "TaskAge")
            if etype == "reservation.accepted":
                memo.accepted_age, memo.agent = age, params.get("WorkerName") or None
            elif etype == "task.wrapup":
                memo.wrapup_age = age
        elif etype in ("task.completed", "task.canceled") or (
                etype == "task.deleted" and params.get("TaskAssignmentStatus") in PENDING):
            self.tasks.pop(task, None)

    def _ended(self, base: dict[str, Any], queue: str | None, memo: TaskMemo | None,
               age: float | None) -> dict[str, Any]:
        event = {**base, "type": "contact.ended", "queue": queue,
                 "agent": memo.agent if memo else None}
        if memo is None or memo.accepted_age is None or age is None:
            return event  # accepted before a restart: the handle time is unknown
        talk_end = memo.wrapup_age if memo.wrapup_age is not None else age
        event["talk_s"] = max(talk_end - memo.accepted_age, 0.0)
        event["wrap_s"] = max(age - talk_end, 0.0)
        return event

    def _agent_state(self, params: Mapping[str, str]) -> dict[str, Any]:
        agent = params.get("WorkerName") or params.get("WorkerSid")
        if not agent:
            raise MappingError("WorkerName", "is required for worker.activity.update")
        activity = params.get("WorkerActivityName", "")
        state = self.activities.get(activity.lower(), self.unknown_activity)
        event = {"type": "agent.state", "id": params.get("Sid") or params.get("EventSid") or None,
                 "ts": event_time(params), "agent": agent, "state": state}
        # The reason field holds 128 characters: a longer activity name is cut, not refused.
        return {**event, "reason": activity[:128]} if activity and state == "away" else event
