"""Asterisk Manager Interface (AMI) source: queue calls and members as canonical events."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .source import AsteriskAmiConfig, AsteriskAmiSource

__all__ = ["AsteriskAmiConfig", "AsteriskAmiSource", "register_source_types"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The asterisk_ami source type."""
    return [AsteriskAmiSource]
