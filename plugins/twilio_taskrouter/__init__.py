"""The `twilio_taskrouter` source: TaskRouter event callbacks, signed, mapped, de-duplicated."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from wallboard.kit import Source, hookimpl

from .source import ROUTE, TwilioTaskRouterConfig, TwilioTaskRouterSource, post_callback

__all__ = ["TwilioTaskRouterConfig", "TwilioTaskRouterSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The twilio_taskrouter source type."""
    return [TwilioTaskRouterSource]


@hookimpl
def register_routes() -> list[web.AbstractRouteDef]:
    """The callback endpoint; the source name in the path picks the source and its token."""
    return [web.post(ROUTE, post_callback)]
