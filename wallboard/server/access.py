"""Who may see which board: TV tokens per board and playlist, an admin token for the API.

The `access` section is re-read from the config file whenever it changes (configwatch.py), so
a token is revoked by editing the file: no restart, and TVs holding it are disconnected at once.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric
from pydantic import Secret

from wallboard.config.boards import AccessConfig, BoardConfig, PlaylistConfig
from wallboard.server import keys
from wallboard.server.boards import board_scope
from wallboard.server.scope import Scope


def _matches(token: str, allowed: list[Secret[str]]) -> bool:
    # Compare with every token in constant time: the answer must not leak a prefix.
    found = False
    for candidate in allowed:
        found |= hmac.compare_digest(token.encode(), candidate.get_secret_value().encode())
    return found


class Access:
    """The current access settings, their reloads, and the requests they refused."""

    def __init__(self, config: AccessConfig, path: str | Path | None,
                 boards: dict[str, BoardConfig], playlists: dict[str, PlaylistConfig]) -> None:
        self.config = config
        self.path = Path(path) if path else None
        self.boards = boards
        self.playlists = playlists
        self.rejected: Counter[tuple[str, int]] = Counter()
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str | None = None
        self.edited: set[str] = set()  # the boards of the boards store (the editor's)
        self.edited_playlists: set[str] = set()  # and its playlists

    def apply(self, config: AccessConfig) -> bool:
        """Put a re-read, valid access section in force; True when it changed anything."""
        # Boards and playlists new in the file are not running until a restart: their
        # tokens open nothing yet (and a playlist token must not name a missing playlist).
        config = config.model_copy(update={
            "boards": {b: t for b, t in config.boards.items() if b in self.boards},
            "playlists": {p: t for p, t in config.playlists.items() if p in self.playlists}})
        self.reloads += 1
        self.last_error = None
        changed = config != self.config
        self.config = config
        return changed

    def failed(self, error: str) -> None:
        """Count a re-read that failed: the tokens in force stay in force."""
        self.reload_errors += 1
        self.last_error = error

    def board_ok(self, board: str, token: str) -> bool:
        """May a TV with this token show this board?"""
        if not self.config.enabled:
            return True
        if _matches(token, self.config.boards.get(board, [])):
            return True
        if board in self.edited and _matches(token, self.config.edited_boards):
            return True
        # A playlist's token opens the boards it rotates through.
        return any(_matches(token, tokens) for name, tokens in self.config.playlists.items()
                   if board in self.playlists[name].boards)

    def playlist_ok(self, name: str, token: str) -> bool:
        """May a TV with this token show this playlist (its own token, or one for every board)?"""
        if not self.config.enabled:
            return True
        if _matches(token, self.config.playlists.get(name, [])):
            return True
        if name in self.edited_playlists and _matches(token, self.config.edited_boards):
            return True
        return all(_matches(token, self.config.boards.get(b, []))
                   for b in self.playlists[name].boards)

    def admin_status(self, authorization: str) -> int | None:
        """None if the admin token is right, else 403 (no admin token configured) or 401."""
        if not self.config.admin_token:
            return 403
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not _matches(token.strip(),
                                                      [self.config.admin_token]):
            return 401
        return None

    def editor(self, authorization: str) -> str | None:
        """Who an editor's request is ('admin', 'editor:NAME'), None for any other token."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if self.config.admin_token and _matches(token, [self.config.admin_token]):
            return "admin"
        for name, tokens in self.config.editors.items():
            if _matches(token, tokens):
                return f"editor:{name}"
        return None

    def tv_token(self, authorization: str) -> bool:
        """Is this a TV's token (a board's, a playlist's, the edited boards')?"""
        token = authorization.partition(" ")[2].strip()
        every = [*self.config.edited_boards,
                 *(t for ts in self.config.boards.values() for t in ts),
                 *(t for ts in self.config.playlists.values() for t in ts)]
        return bool(token) and _matches(token, every)

    def count_rejected(self, endpoint: str, status: int) -> None:
        """Count a refused request for /metrics."""
        self.rejected[(endpoint, status)] += 1


class AccessCollector:
    """Prometheus view of refused requests and access reloads."""

    def __init__(self, access: Access) -> None:
        self.access = access

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        rejected = CounterMetricFamily("wallboard_http_rejected",
                                       "Requests refused for a missing or wrong token",
                                       labels=["endpoint", "code"])
        for (endpoint, status), count in sorted(self.access.rejected.items()):
            rejected.add_metric([endpoint, str(status)], count)
        yield rejected
        reloads = CounterMetricFamily("wallboard_access_reloads",
                                      "Access section re-read after the config file changed",
                                      labels=["result"])
        reloads.add_metric(["ok"], self.access.reloads)
        reloads.add_metric(["error"], self.access.reload_errors)
        yield reloads


def describe(access: Access) -> dict[str, Any]:
    """What /api/admin/access shows: no tokens, only how many there are."""
    config = access.config
    return {"enabled": config.enabled, "file": str(access.path) if access.path else None,
            "boards": {b: len(t) for b, t in config.boards.items()},
            "playlists": {p: len(t) for p, t in config.playlists.items()},
            "editors": {e: len(t) for e, t in config.editors.items()},
            "edited_boards": len(config.edited_boards),
            "reloads": access.reloads, "reload_errors": access.reload_errors,
            "last_error": access.last_error}


def refuse(request: web.Request, endpoint: str, status: int, text: str) -> web.HTTPException:
    """An HTTP error for a refused request, counted for /metrics."""
    request.app[keys.ACCESS].count_rejected(endpoint, status)
    if status == 401:
        return web.HTTPUnauthorized(text=text, headers={"WWW-Authenticate": "Bearer"})
    if status == 403:
        return web.HTTPForbidden(text=text)
    return web.HTTPBadRequest(text=text)


def check_board_token(request: web.Request, endpoint: str, board: str) -> str:
    """The request's TV token if it may see the board; raises 401 (none) or 403 (wrong)."""
    access = request.app[keys.ACCESS]
    token = request.query.get("token", "")
    if access.board_ok(board, token):
        return token
    if not token:
        raise refuse(request, endpoint, 401, f"board {board!r} needs ?token= (access is enabled)")
    raise refuse(request, endpoint, 403, f"the token is not valid for board {board!r}")


def check_admin(request: web.Request, endpoint: str) -> None:
    """Raise 401/403 unless the request carries the admin token."""
    status = request.app[keys.ACCESS].admin_status(request.headers.get("Authorization", ""))
    if status == 403:
        raise refuse(request, endpoint, 403, "the admin API is off: set access.admin_token")
    if status == 401:
        raise refuse(request, endpoint, 401, "Authorization: Bearer <access.admin_token> needed")


def client_scope(app: web.Application, board: str) -> Scope | None:
    """What a TV on `board` may receive: its board's keys with access on, else everything."""
    if not app[keys.ACCESS].config.enabled:
        return None
    return board_scope(app[keys.BOARDS][board])


def check_reader(request: web.Request, endpoint: str) -> list[str] | None:
    """With access on, the data API needs the admin token or a TV token of some board.

    Returns the boards a TV token opens (the reader sees their numbers only), or None when
    the reader may see everything (access off, or the admin token).
    """
    access = request.app[keys.ACCESS]
    if not access.config.enabled:
        return None
    if access.admin_status(request.headers.get("Authorization", "")) is None:
        return None
    token = request.query.get("token", "")
    boards = [b for b in request.app[keys.BOARDS] if token and access.board_ok(b, token)]
    if boards:
        return boards
    if not token and not request.headers.get("Authorization"):
        raise refuse(request, endpoint, 401, "access is enabled: pass ?token= or the admin token")
    raise refuse(request, endpoint, 403, "the token is not valid for any board")
