"""The `amazon_connect` source: EventBridge contact events and the real-time metrics API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from wallboard.kit import Source, hookimpl

from .config import AmazonConnectConfig
from .source import ROUTE, AmazonConnectSource, post_event

__all__ = ["AmazonConnectConfig", "AmazonConnectSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The amazon_connect source type."""
    return [AmazonConnectSource]


@hookimpl
def register_routes() -> list[web.AbstractRouteDef]:
    """The EventBridge endpoint; the source name in the path picks the source and its secret."""
    return [web.post(ROUTE, post_event)]
