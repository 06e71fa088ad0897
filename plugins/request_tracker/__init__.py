"""The `request_tracker` source: Request Tracker 5 tickets polled over REST2."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .source import RequestTrackerConfig, RequestTrackerSource

__all__ = ["RequestTrackerConfig", "RequestTrackerSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The request_tracker source type."""
    return [RequestTrackerSource]
