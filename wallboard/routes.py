"""HTTP and websocket endpoints of the core: board pages, /ws, /api, /metrics, /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import socket
from pathlib import Path
from urllib.parse import quote

import jinja2
import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST

from wallboard import __version__
from wallboard import appkeys as keys
from wallboard.boards import text_direction
from wallboard.exposition import encode
from wallboard.hub import Client
from wallboard.plugins import plugin_info

SEND_BUFFER_BYTES = 128 * 1024
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates")
STATIC_DIR = Path(str(importlib.resources.files("wallboard_web") / "static"))


def make_templates() -> jinja2.Environment:
    """Jinja environment over the packaged templates, autoescaping on."""
    return jinja2.Environment(loader=jinja2.PackageLoader("wallboard_web", "templates"),
                              autoescape=True)


def _render(request: web.Request, name: str, **context: object) -> web.Response:
    settings = request.app[keys.SETTINGS]
    locale = settings.site.locale
    html = request.app[TEMPLATES].get_template(name).render(
        site=settings.site.name, version=__version__, locale=locale,
        dir=text_direction(locale), **context)
    return web.Response(text=html, content_type="text/html")


async def index(request: web.Request) -> web.Response:
    """List the boards."""
    boards = [{"id": b["id"], "title": b["title"]} for b in request.app[keys.BOARDS].values()]
    return _render(request, "index.html", boards=boards)


async def board_page(request: web.Request) -> web.Response:
    """Render one board; the page then lives on the websocket."""
    board = request.app[keys.BOARDS].get(request.match_info["board"])
    if board is None:
        raise web.HTTPNotFound(text=f"no board {request.match_info['board']!r}")
    settings = request.app[keys.SETTINGS]
    config = {
        "board": board["id"],
        "ws_path": f"/ws?board={quote(board['id'])}",
        "push_interval_ms": settings.server.push_interval_ms,
        # The hub refreshes every second; five silent seconds mean the link is dead.
        "stale_after_s": 5,
        "locale": settings.site.locale,
        "tiles": board["tiles"],
    }
    return _render(request, "board.html", board=board, tiles=board["tiles"], config=config)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Push a snapshot on connect, then coalesced deltas, to one board."""
    board = request.query.get("board", "")
    if board not in request.app[keys.BOARDS]:
        raise web.HTTPNotFound(text=f"no board {board!r}")
    settings = request.app[keys.SETTINGS]
    ws = web.WebSocketResponse(heartbeat=settings.server.heartbeat_s, max_msg_size=65536)
    await ws.prepare(request)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        # A bounded kernel buffer per TV: a client that stops reading blocks our sender soon,
        # and is cut after send_timeout_s instead of holding megabytes of stale updates.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    hub = request.app[keys.HUB]
    client = Client(hub, ws, board, request.transport)
    hub.add(client)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                if orjson.loads(message.data).get("type") == "resync":
                    client.resync()
    finally:
        await hub.remove(client)
    return ws


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers; with several nodes, this node's role, lag and sources."""
    body: dict[str, object] = {"status": "ok", "version": __version__}
    cluster = request.app[keys.CLUSTER]
    if cluster is not None:
        body.update(cluster.health())
    return web.json_response(body)


async def api_snapshot(request: web.Request) -> web.Response:
    """Every current KPI as JSON: the numbers the board shows."""
    return web.Response(body=orjson.dumps(request.app[keys.HUB].current()),
                        content_type="application/json")


async def api_plugins(request: web.Request) -> web.Response:
    """Loaded plugins: name, version, hooks implemented, source types provided."""
    app = request.app
    return web.json_response(plugin_info(app[keys.PLUGIN_MANAGER], app[keys.SOURCE_REGISTRY]))


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    body = encode(request.app[keys.METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def close_websockets(app: web.Application) -> None:
    """On shutdown, tell every board we are going away."""
    clients = list(app[keys.HUB].clients)
    await asyncio.gather(*(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                           for c in clients), return_exceptions=True)


def core_routes() -> list[web.AbstractRouteDef]:
    """The core's own routes."""
    return [
        web.get("/", index),
        web.get("/board/{board}", board_page),
        web.get("/ws", websocket),
        web.get("/healthz", healthz),
        web.get("/api/snapshot", api_snapshot),
        web.get("/api/plugins", api_plugins),
        web.get("/metrics", metrics),
        web.static("/static", STATIC_DIR),
    ]
