"""Hook specifications: plugins wire things up at start, never on the per-event path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from wallboard.kit.source import Source

hookspec = pluggy.HookspecMarker("wallboard")


@hookspec
def register_source_types() -> list[type[Source[Any]]]:
    """Return source classes, each with a unique `type` name and a pydantic `Config` model."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' hookimpls


@hookspec
def register_routes() -> list[web.AbstractRouteDef]:
    """Return extra HTTP routes (webhooks, plugin pages) to add to the app."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' hookimpls
