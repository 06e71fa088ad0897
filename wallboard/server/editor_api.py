"""The board editor's HTTP API (/api/editor/…) and its page (/edit).

Who: the admin token or an editor's token (`access.editors`), always in the Authorization
header, never in a URL. Every write also needs the CSRF token: the `wb_csrf` cookie (set by
/edit and /api/editor/session, SameSite=Strict) repeated in the `X-CSRF-Token` header, and an
Origin (when a browser sends one) of this server. Refused writes are counted by reason.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from typing import Any

import orjson
from aiohttp import web

from wallboard.config.boards import TILE_KPIS, TILE_TYPES, TYPE_KPI, BoardConfig, PlaylistConfig
from wallboard.config.kpis import KPI_FORMATS, LIVE_KPIS, WINDOW_KPIS
from wallboard.config.store import MAX_BOARDS, MAX_TILES, NAME_RULE, StoreError
from wallboard.model.events import CHANNELS
from wallboard.server import keys
from wallboard.server.access import refuse
from wallboard.server.connections import origin_ok
from wallboard.server.editor import Conflict, Editor
from wallboard.server.keys import EDITOR, PLAYLIST_EDITOR
from wallboard.server.locales import messages, shipped
from wallboard.server.playlist_editor import PlaylistEditor
from wallboard.server.routes import render

CSRF_COOKIE = "wb_csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 256 * 1024
# Why a write was refused: the label values of wallboard_editor_refused_total.
REASONS = ("off", "no_token", "bad_token", "tv_token", "token_in_url", "csrf", "origin",
           "bad_request", "invalid", "conflict", "exists", "limit", "read_only", "not_found",
           "too_large", "in_use")


def _refused(request: web.Request, reason: str, write: bool) -> None:
    if write:
        request.app[EDITOR].refused[reason] += 1


def who(request: web.Request, *, write: bool) -> str:
    """The editor making the request ('admin', 'editor:NAME'); raises 401/403 otherwise."""
    access = request.app[keys.ACCESS]
    if "token" in request.query:
        _refused(request, "token_in_url", write)
        raise refuse(request, "editor", 400, "the editor takes its token in the Authorization "
                                             "header, never in the URL")
    if not access.config.admin_token and not access.config.editors:
        _refused(request, "off", write)
        raise refuse(request, "editor", 403, "the editor is off: set access.admin_token or "
                                             "access.editors")
    authorization = request.headers.get("Authorization", "")
    person = access.editor(authorization)
    if person is None:
        reason = ("no_token" if not authorization else
                  "tv_token" if access.tv_token(authorization) else "bad_token")
        _refused(request, reason, write)
        raise refuse(request, "editor", 403 if reason == "tv_token" else 401,
                     "a TV token cannot edit boards" if reason == "tv_token" else
                     "Authorization: Bearer <an editor's token or the admin token> needed")
    if write:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        header = request.headers.get(CSRF_HEADER, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
            _refused(request, "csrf", write)
            raise refuse(request, "editor", 403, f"a write needs the {CSRF_HEADER} header "
                                                 f"equal to the {CSRF_COOKIE} cookie")
        settings = request.app[keys.SETTINGS]
        if not origin_ok(request.headers.get("Origin"), request.headers.get("Host"),
                         settings.server.allowed_origins):
            _refused(request, "origin", write)
            raise refuse(request, "editor", 403, "a write from another site's page is refused")
    return person


def _error(request: web.Request, exc: StoreError) -> web.Response:
    request.app[EDITOR].refused[exc.reason] += 1
    body: dict[str, Any] = {"error": str(exc), "reason": exc.reason,
                            "problems": [{"path": p, "message": m} for p, m in exc.problems]}
    if isinstance(exc, Conflict):
        body["current_version"] = exc.version
        body["diff"] = exc.diff
    return web.json_response(body, status=exc.status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise StoreError(413, "too_large", [("", f"the body is larger than {MAX_BODY} bytes")])
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoreError(400, "bad_request", [("", f"body: invalid JSON: {exc}")]) from None
    if not isinstance(body, dict):
        raise StoreError(400, "bad_request", [("", "body: must be a JSON object")])
    return body


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int or not 0 <= value <= 1_000_000_000:
        raise StoreError(400, "bad_request", [(key, "must be a whole number ≥ 0")])
    return value


def _name(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise StoreError(400, "bad_request", [(key, f"must be a board name: {NAME_RULE}")])
    return value


async def session(request: web.Request) -> web.Response:
    """Who the token is, and the CSRF token (also set as the cookie) for writes."""
    person = who(request, write=False)
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = web.json_response({"who": person, "csrf": token})
    response.set_cookie(CSRF_COOKIE, token, samesite="Strict", path="/")
    return response


def _target(request: web.Request) -> tuple[Editor | PlaylistEditor, str]:
    """The boards' editor or the playlists', by the route: and the body's key for it."""
    if request.path.startswith("/api/editor/playlists"):
        return request.app[PLAYLIST_EDITOR], "playlist"
    return request.app[EDITOR], "board"


async def list_boards(request: web.Request) -> web.Response:
    """Every board (or playlist): the config's (read-only) and the store's."""
    who(request, write=False)
    editor, kind = _target(request)
    return web.json_response({f"{kind}s": editor.listing()})


async def get_board(request: web.Request) -> web.Response:
    """One board (or playlist) with its kept versions."""
    who(request, write=False)
    try:
        return web.json_response(_target(request)[0].get(request.match_info["name"]))
    except StoreError as exc:
        return _error(request, exc)


async def _write(request: web.Request, action: str) -> web.Response:
    person = who(request, write=True)
    (editor, kind), name = _target(request), request.match_info["name"]
    try:
        if action == "delete":
            await editor.delete(name, _int({"version": _query_int(request)}, "version"), person)
            return web.json_response({"deleted": name})
        body = await _body(request)
        if action == "save":
            item = await editor.save(name, body.get(kind), _int(body, "version"), person)
        elif action == "duplicate":
            name = _name(body, "to")
            item = await editor.duplicate(request.match_info["name"], name, person)
        elif action == "rename":
            name = _name(body, "to")
            item = await editor.rename(request.match_info["name"], name, _int(body, "version"),
                                       person)
        else:
            item = await editor.rollback(name, _int(body, "to"), _int(body, "version"), person)
    except StoreError as exc:
        return _error(request, exc)
    return web.json_response({"name": name, "version": item.version, "saved_by": item.saved_by,
                              "saved_at": item.saved_at})


def _query_int(request: web.Request) -> Any:
    value = request.query.get("version", "")
    return int(value) if value.isdigit() and len(value) < 10 else None


async def save_board(request: web.Request) -> web.Response:
    """Create (version 0) or save a board: `{"version": N, "board": {...}}`."""
    return await _write(request, "save")


async def duplicate_board(request: web.Request) -> web.Response:
    """Copy a board (a read-only one too) into the store: `{"to": NAME}`."""
    return await _write(request, "duplicate")


async def rename_board(request: web.Request) -> web.Response:
    """Rename a board of the store: `{"to": NAME, "version": N}`."""
    return await _write(request, "rename")


async def rollback_board(request: web.Request) -> web.Response:
    """Save a kept version again: `{"to": VERSION, "version": N}`."""
    return await _write(request, "rollback")


async def delete_board(request: web.Request) -> web.Response:
    """Delete a board of the store: `?version=N`."""
    return await _write(request, "delete")


def schema(editor: Editor, playlists: PlaylistEditor,
           live_teams: Collection[str]) -> dict[str, Any]:
    """The board's JSON Schema (from the models) and the choices that exist on this server."""
    settings = editor.settings
    # Agent tiles' teams: the roster's, and those the events have named so far.
    teams = sorted({e.team for e in settings.agents.roster.values() if e.team} | set(live_teams))
    # A forecast tile needs the server's forecast, a legal one a queue with a legal rule.
    legal = any(q.legal_rules for q in settings.queues.values())
    types = [t for t in TILE_TYPES if (t != "forecast" or editor.forecast)
             and (t != "legal" or legal) and (t != "staffing" or settings.queues)]
    kpis = {t: sorted(KPI_FORMATS) if TILE_KPIS[t] is None else list(TILE_KPIS[t] or ())
            for t in types}
    queues = {name: {"label": q.label or name, "channel": q.channel,
                     "legal_rules": [r.name for r in q.legal_rules]}
              for name, q in settings.queues.items()}
    return {"json_schema": BoardConfig.model_json_schema(),
            "playlist_schema": PlaylistConfig.model_json_schema(),
            "boards": playlists.boards(), "tile_types": types, "kpis": kpis,
            "type_kpi": {t: TYPE_KPI[t] for t in types}, "formats": KPI_FORMATS,
            "live_kpis": sorted(LIVE_KPIS), "window_kpis": sorted(WINDOW_KPIS),
            "windows": list(settings.windows), "queues": queues,
            "channels": sorted(CHANNELS), "locales": sorted(shipped()), "teams": teams,
            "site_locale": settings.site.locale, "max_tiles": MAX_TILES,
            "max_boards": MAX_BOARDS, "name_rule": NAME_RULE}


async def get_schema(request: web.Request) -> web.Response:
    """What the editor may offer: nothing the server would refuse."""
    who(request, write=False)
    teams = request.app[keys.HUB].tree.get("teams") or {}  # the last flush's: a read
    return web.json_response(schema(request.app[EDITOR], request.app[PLAYLIST_EDITOR],
                                    [t for t in teams if isinstance(t, str)]))


async def get_values(request: web.Request) -> web.Response:
    """The current numbers (the whole snapshot) for the threshold preview."""
    who(request, write=False)
    return web.Response(body=request.app[keys.HUB].api_body(), content_type="application/json")


async def edit_page(request: web.Request) -> web.Response:
    """The editor's page: it asks for the token and keeps it in the tab (sessionStorage)."""
    settings = request.app[keys.SETTINGS]
    lang = request.query.get("lang", "")
    locale = lang if lang in shipped() else settings.site.locale
    prefixes = ("edit.", "kpi.", "type.", "window.")
    msg = {k: v for k, v in messages(locale).items() if k.startswith(prefixes)}
    response = render(request, "edit.html", locale=locale,
                      config={"locale": locale, "messages": msg}, msg=msg)
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response.set_cookie(CSRF_COOKIE, token, samesite="Strict", path="/")
    return response


def editor_routes() -> list[web.AbstractRouteDef]:
    """The editor's routes."""
    routes: list[web.AbstractRouteDef] = [
        web.get("/edit", edit_page),
        web.get("/api/editor/session", session),
        web.get("/api/editor/schema", get_schema),
        web.get("/api/editor/values", get_values),
    ]
    # Boards and playlists share their handlers: the path's kind picks the editor.
    for kind in ("boards", "playlists"):
        item = f"/api/editor/{kind}/{{name}}"
        routes += [
            web.get(f"/api/editor/{kind}", list_boards),
            web.get(item, get_board),
            web.put(item, save_board),
            web.delete(item, delete_board),
            web.post(f"{item}/duplicate", duplicate_board),
            web.post(f"{item}/rename", rename_board),
            web.post(f"{item}/rollback", rollback_board),
        ]
    return routes
