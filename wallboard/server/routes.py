"""HTTP and websocket endpoints of the core: board pages, /ws, /api, /metrics, /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from wallboard import __version__
from wallboard.server import keys
from wallboard.server.access import check_board_token, check_reader, client_scope, refuse
from wallboard.server.boards import board_scope, text_direction
from wallboard.server.connections import origin_ok
from wallboard.server.exposition import CONTENT_TYPE, encode
from wallboard.server.hub import Client
from wallboard.server.plugins import plugin_info
from wallboard.server.report_page import report_config

SEND_BUFFER_BYTES = 128 * 1024
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates")
STATIC_DIR = Path(str(importlib.resources.files("wallboard_web") / "static"))
LOCALES_DIR = Path(str(importlib.resources.files("wallboard_web") / "locales"))


def make_templates() -> jinja2.Environment:
    """Jinja environment over the packaged templates, autoescaping on."""
    return jinja2.Environment(loader=jinja2.PackageLoader("wallboard_web", "templates"),
                              autoescape=True)


def render(request: web.Request, name: str, locale: str | None = None,
           **context: object) -> web.Response:
    """A page of the site from its template, never cached."""
    settings = request.app[keys.SETTINGS]
    locale = locale or settings.site.locale
    html = request.app[TEMPLATES].get_template(name).render(
        site=settings.site.name, version=request.app[keys.BUILD], locale=locale,
        dir=text_direction(locale), **context)
    # A TV page is never cached: after an upgrade the reload must fetch the new page.
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def index(request: web.Request) -> web.Response:
    """List the boards and playlists; with access on, only those the token may open."""
    access = request.app[keys.ACCESS]
    token = request.query.get("token", "")
    # The admin token (Authorization header) sees every board; no token: none.
    everything = (not access.config.enabled or
                  access.admin_status(request.headers.get("Authorization", "")) is None)

    def board_ok(board: str) -> bool:
        return everything or (bool(token) and access.board_ok(board, token))

    def playlist_ok(name: str) -> bool:
        return everything or (bool(token) and access.playlist_ok(name, token))

    suffix = f"?token={quote(token)}" if token and not everything else ""
    boards = [{"id": b["id"], "title": b["title"], "query": suffix}
              for b in request.app[keys.BOARDS].values() if board_ok(b["id"])]
    playlists = [{"id": name, "boards": ", ".join(p.boards), "query": suffix}
                 for name, p in request.app[keys.PLAYLISTS].items()
                 if playlist_ok(name)]
    return render(request, "index.html", boards=boards, playlists=playlists,
                   # The report asks for the admin token itself; a TV has no use for it.
                   reports=not access.config.enabled or not token,
                   locked=access.config.enabled and not everything and not token,
                   denied=access.config.enabled and not everything and bool(token))


def page_config(request: web.Request, board: dict[str, Any], token: str) -> dict[str, Any]:
    """What a board's page reads (embedded in it, and /board/NAME/layout after an edit)."""
    settings = request.app[keys.SETTINGS]
    ws_path = f"/ws?board={quote(board['id'])}" + (f"&token={quote(token)}" if token else "")
    return {
        "board": board["id"],
        "title": board["title"],
        "columns": board["columns"],
        "rows": board["rows"],
        # The board editor's revision (layouts.<board> in the snapshot): a TV redraws on a change.
        "layout": request.app[keys.EDITOR].revisions.get(board["id"], 0),
        "ws_path": ws_path,
        "build": request.app[keys.BUILD],
        "push_interval_ms": settings.server.push_interval_ms,
        # The hub refreshes every second; five silent seconds mean the link is dead.
        "stale_after_s": 5,
        "data_stale_after_s": board["stale_after_s"],
        "locale": board["locale"],
        "timezone": settings.site.timezone,
        "messages": board["messages"],
        "alert": board["alert"],
        "pixel_shift_px": board["pixel_shift_px"],
        "embedded": request.query.get("embed") == "1",
        "tiles": board["tiles"],
    }


async def board_page(request: web.Request) -> web.Response:
    """Render one board; the page then lives on the websocket."""
    board = request.app[keys.BOARDS].get(request.match_info["board"])
    if board is None:
        raise web.HTTPNotFound(text=f"no board {request.match_info['board']!r}")
    token = check_board_token(request, "board", board["id"])
    config = page_config(request, board, token)
    return render(request, "board.html", locale=board["locale"], board=board,
                  tiles=board["tiles"], config=config, msg=board["messages"])


async def board_layout(request: web.Request) -> web.Response:
    """A board's page settings as JSON: a TV redraws with them after the editor saved it."""
    board = request.app[keys.BOARDS].get(request.match_info["board"])
    if board is None:
        raise web.HTTPNotFound(text=f"no board {request.match_info['board']!r}")
    token = check_board_token(request, "board", board["id"])
    return web.json_response(page_config(request, board, token),
                             headers={"Cache-Control": "no-store"})


def _play_config(request: web.Request) -> dict[str, Any]:
    name = request.match_info["playlist"]
    playlist = request.app[keys.PLAYLISTS].get(name)
    if playlist is None:
        raise web.HTTPNotFound(text=f"no playlist {name!r}")
    token = request.query.get("token", "")
    if not request.app[keys.ACCESS].playlist_ok(name, token):
        raise refuse(request, "play", 401 if not token else 403,
                     f"playlist {name!r} needs a valid ?token= (access is enabled)")
    suffix = f"&token={quote(token)}" if token else ""
    frames = [{"board": b, "src": f"/board/{quote(b)}?embed=1{suffix}"} for b in playlist.boards]
    # The editor's revision: the page asks for this every second and follows a change.
    revision = request.app[keys.PLAYLIST_EDITOR].revisions.get(name, 0)
    return {"playlist": name, "interval_s": playlist.interval_s, "frames": frames,
            "revision": revision,
            "config_path": f"/play/{quote(name)}/config" + (f"?token={quote(token)}"
                                                             if token else "")}


async def play_page(request: web.Request) -> web.Response:
    """One URL per TV: the playlist's boards in turn, each kept live in its own frame."""
    config = _play_config(request)
    return render(request, "play.html", playlist=config["playlist"], frames=config["frames"],
                  config=config)


async def play_config(request: web.Request) -> web.Response:
    """A playlist's boards and interval as JSON: the /play page follows the editor's saves."""
    return web.json_response(_play_config(request), headers={"Cache-Control": "no-store"})


async def report_page(request: web.Request) -> web.Response:
    """The interval report: a shell whose script reads /api/report with the admin token."""
    config = report_config(request)
    return render(request, "report.html", locale=config["locale"], config=config,
                   msg=config["messages"])


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Push a snapshot on connect, then coalesced deltas, to one board."""
    board = request.query.get("board", "")
    if board not in request.app[keys.BOARDS]:
        raise web.HTTPNotFound(text=f"no board {board!r}")
    token = check_board_token(request, "ws", board)
    settings = request.app[keys.SETTINGS]
    origin = request.headers.get("Origin")
    # Browsers send Origin on every websocket handshake and cookies or not, any page on the
    # LAN could otherwise read the board; kiosks' own pages are same-origin, tools send none.
    if not origin_ok(origin, request.headers.get("Host"), settings.server.allowed_origins):
        request.app[keys.CONNECTIONS].refuse_origin(origin or "")
        raise web.HTTPForbidden(text=f"websocket Origin {origin!r} is neither this server's "
                                     "nor listed in server.allowed_origins")
    # No permessage-deflate: a compressed frame depends on each connection's compressor, so
    # it could not be framed once and written to every TV; deltas are a few KB on a LAN.
    ws = web.WebSocketResponse(heartbeat=settings.server.heartbeat_s, max_msg_size=65536,
                               compress=False)
    writer = await ws.prepare(request)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        # A bounded kernel buffer per TV: a client that stops reading blocks our sender soon,
        # and is cut after send_timeout_s instead of holding megabytes of stale updates.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    hub = request.app[keys.HUB]
    client = Client(hub, ws, board, request.transport, writer)
    client.token = token
    # Tokens separate audiences (one board per client of an outsourcer): with access on, a TV
    # gets only the numbers its board shows, not the other boards' queues or agents' names.
    client.scope = client_scope(request.app, board)
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
    body: dict[str, object] = {"status": "ok", "version": __version__,
                               "build": request.app[keys.BUILD]}
    cluster = request.app[keys.CLUSTER]
    if cluster is not None:
        body.update(cluster.health())
    # A failed reload shows here; the status stays "ok": the board serves the last good config.
    body["config"] = request.app[keys.CONFIG].health()
    return web.json_response(body)


async def api_snapshot(request: web.Request) -> web.Response:
    """Every current KPI as JSON: the numbers the board shows."""
    boards = check_reader(request, "snapshot")
    paths = None
    if boards is not None:  # a TV token: the numbers of the boards it opens, no more
        all_boards = request.app[keys.BOARDS]
        paths = tuple(sorted({p for b in boards for p in board_scope(all_boards[b])}))
    return web.Response(body=request.app[keys.HUB].api_body(paths),
                        content_type="application/json")


async def api_plugins(request: web.Request) -> web.Response:
    """Loaded plugins: name, version, hooks implemented, source types provided."""
    app = request.app
    return web.json_response(plugin_info(app[keys.PLUGIN_MANAGER], app[keys.SOURCE_REGISTRY]))


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    errors = request.app[keys.AGGREGATOR].errors
    body = encode(request.app[keys.METRICS_REGISTRY],
                  lambda exc: errors.record("exporter", exc, what="/metrics"))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


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
        web.get("/board/{board}/layout", board_layout),
        web.get("/play/{playlist}", play_page),
        web.get("/play/{playlist}/config", play_config),
        web.get("/report", report_page),
        web.get("/ws", websocket),
        web.get("/healthz", healthz),
        web.get("/api/snapshot", api_snapshot),
        web.get("/api/plugins", api_plugins),
        web.get("/metrics", metrics),
        web.static("/static", STATIC_DIR),
        web.static("/locales", LOCALES_DIR),
    ]
