"""The `zendesk` source: incremental ticket and SLA exports polled, optional signed webhooks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from wallboard.kit import Source, hookimpl

from .source import ZendeskConfig, ZendeskSource
from .webhook import ROUTE, STATUS_ROUTE, get_status, post_webhook

__all__ = ["ZendeskConfig", "ZendeskSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The zendesk source type."""
    return [ZendeskSource]


@hookimpl
def register_routes() -> list[web.AbstractRouteDef]:
    """The webhook receiver and the status (export lag, cursors) of each zendesk source."""
    return [web.post(ROUTE, post_webhook), web.get(STATUS_ROUTE, get_status)]
