"""The admin API: announcements, access and board status; the build id TVs reload on."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from typing import Any

import orjson
from aiohttp import web

from wallboard import __version__
from wallboard.server import keys
from wallboard.server.access import check_admin, describe, refuse
from wallboard.server.announcements import AnnouncementError


def build_id() -> str:
    """The version plus a hash of the page's files: a TV reloads when either changes."""
    stamp = os.environ.get("WALLBOARD_BUILD")  # a deployment may stamp its own build id
    if stamp:
        return stamp
    digest = hashlib.sha256()
    root = importlib.resources.files("wallboard_web")
    for folder in ("static", "templates", "locales"):
        for entry in sorted((root / folder).iterdir(), key=lambda e: e.name):
            if entry.is_file():
                digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


async def post_announcement(request: web.Request) -> web.Response:
    """Post a text announcement with an expiry (ttl_s) to every board or to some."""
    check_admin(request, "announcements")
    try:
        body: Any = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise refuse(request, "announcements", 400, f"body: invalid JSON: {exc}") from None
    boards = request.app[keys.BOARDS]
    try:
        item = request.app[keys.ANNOUNCEMENTS].post(body, set(boards))
    except AnnouncementError as exc:
        raise refuse(request, "announcements", 400, str(exc)) from None
    return web.json_response({"id": item.id, "expires": item.expires}, status=201)


async def list_announcements(request: web.Request) -> web.Response:
    """The active announcements."""
    check_admin(request, "announcements")
    store = request.app[keys.ANNOUNCEMENTS]
    return web.json_response(store.active(store.clock()))


async def delete_announcement(request: web.Request) -> web.Response:
    """Withdraw an announcement before it expires."""
    check_admin(request, "announcements")
    try:
        item_id = int(request.match_info["id"])
    except ValueError:
        raise refuse(request, "announcements", 400, "id: must be an integer") from None
    if not request.app[keys.ANNOUNCEMENTS].remove(item_id):
        raise web.HTTPNotFound(text=f"no announcement {item_id}")
    return web.Response(status=204)


async def admin_access(request: web.Request) -> web.Response:
    """Access settings in force (token counts, never tokens) and their reloads."""
    check_admin(request, "admin")
    return web.json_response(describe(request.app[keys.ACCESS]))


async def admin_boards(request: web.Request) -> web.Response:
    """Boards, playlists and the TVs connected to each board."""
    check_admin(request, "admin")
    clients: dict[str, int] = {}
    for client in request.app[keys.HUB].clients:
        clients[client.board] = clients.get(client.board, 0) + 1
    boards = {b["id"]: {"title": b["title"], "locale": b["locale"], "tiles": len(b["tiles"]),
                        "clients": clients.get(b["id"], 0)}
              for b in request.app[keys.BOARDS].values()}
    playlists = {name: p.model_dump() for name, p in request.app[keys.PLAYLISTS].items()}
    return web.json_response({"build": request.app[keys.BUILD], "boards": boards,
                              "playlists": playlists})


def admin_routes() -> list[web.AbstractRouteDef]:
    """The admin API's routes."""
    return [
        web.post("/api/announcements", post_announcement),
        web.get("/api/announcements", list_announcements),
        web.delete("/api/announcements/{id}", delete_announcement),
        web.get("/api/admin/access", admin_access),
        web.get("/api/admin/boards", admin_boards),
    ]
