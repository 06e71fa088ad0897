"""The `freshdesk` source: tickets polled with `updated_since` and `include=stats`."""

from __future__ import annotations

from wallboard import hookimpl
from wallboard.kit.source import Source

from .source import FreshdeskConfig, FreshdeskSource

__all__ = ["FreshdeskConfig", "FreshdeskSource"]


@hookimpl
def register_source_types() -> list[type[Source]]:
    """The freshdesk source type."""
    return [FreshdeskSource]
