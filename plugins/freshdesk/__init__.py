"""The `freshdesk` source: tickets polled with `updated_since` and `include=stats`."""

from __future__ import annotations

from wallboard.kit import Source, hookimpl

from .source import FreshdeskConfig, FreshdeskSource

__all__ = ["FreshdeskConfig", "FreshdeskSource"]


@hookimpl
def register_source_types() -> list[type[Source]]:
    """The freshdesk source type."""
    return [FreshdeskSource]
