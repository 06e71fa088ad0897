"""The `freshdesk` source: tickets polled with `updated_since` and `include=stats`."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .source import FreshdeskConfig, FreshdeskSource

__all__ = ["FreshdeskConfig", "FreshdeskSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The freshdesk source type."""
    return [FreshdeskSource]
