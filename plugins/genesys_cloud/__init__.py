"""Genesys Cloud source: queue conversations and user states over the Notifications API."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .source import GenesysCloudConfig, GenesysCloudSource

__all__ = ["GenesysCloudConfig", "GenesysCloudSource", "register_source_types"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The genesys_cloud source type."""
    return [GenesysCloudSource]
