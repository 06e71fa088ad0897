"""Optional reconciliation: TaskQueue real-time statistics as `queue.snapshot` events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wallboard.kit import SourceError

STATISTICS_PATH = "/v1/Workspaces/{workspace}/TaskQueues/{queue}/RealTimeStatistics"
WAITING_STATUSES = ("pending", "reserved")


class ReconcileConfig(BaseModel):
    """Which TaskQueues to read, how often, and where the API is."""

    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    workspace_sid: str = Field(pattern=r"^WS[0-9a-fA-F]{32}$")
    task_queues: dict[str, str] = Field(min_length=1)  # TaskQueueSid -> board queue
    interval_s: float = Field(60.0, ge=1)
    api_url: str = Field("https://taskrouter.twilio.com", pattern=r"^https?://\S+$")


def statistics_url(config: ReconcileConfig, task_queue: str) -> str:
    """The TaskQueue's RealTimeStatistics URL."""
    path = STATISTICS_PATH.format(workspace=config.workspace_sid, queue=task_queue)
    return config.api_url.rstrip("/") + path


def _count(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SourceError(f"TaskQueue statistics: {what} is not a count: {str(value)[:40]}")
    return value


def to_snapshot(queue: str, payload: Any, activities: Mapping[str, str],
                unknown_activity: str, ts: float) -> dict[str, Any]:
    """One queue.snapshot from a RealTimeStatistics body; SourceError if its shape is wrong."""
    if not isinstance(payload, dict) or not isinstance(payload.get("tasks_by_status"), dict):
        raise SourceError("TaskQueue statistics: expected an object with 'tasks_by_status'")
    by_status = payload["tasks_by_status"]
    waiting = sum(_count(by_status.get(s, 0), f"tasks_by_status.{s}")
                  for s in WAITING_STATUSES)
    event: dict[str, Any] = {"type": "queue.snapshot", "ts": ts, "queue": queue,
                             "waiting": waiting}
    oldest = payload.get("longest_task_waiting_age")
    if oldest is not None:
        event["oldest_wait_s"] = _count(oldest, "longest_task_waiting_age")
    stats = payload.get("activity_statistics")
    if stats is not None:
        if not isinstance(stats, list):
            raise SourceError("TaskQueue statistics: activity_statistics is not a list")
        agents: dict[str, int] = {}
        for item in stats:
            if not isinstance(item, dict) or not isinstance(item.get("friendly_name"), str):
                raise SourceError("TaskQueue statistics: an activity has no friendly_name")
            state = activities.get(item["friendly_name"].lower(), unknown_activity)
            agents[state] = agents.get(state, 0) + int(_count(item.get("workers", 0),
                                                              "activity workers"))
        event["agents"] = agents
    return event
