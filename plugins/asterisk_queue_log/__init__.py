"""Asterisk queue_log source: every queue fact Asterisk logs, gap-free across restarts."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .source import AsteriskQueueLogConfig, AsteriskQueueLogSource

__all__ = ["AsteriskQueueLogConfig", "AsteriskQueueLogSource", "register_source_types"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The asterisk_queue_log source type."""
    return [AsteriskQueueLogSource]
