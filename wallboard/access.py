"""Who may see which board: TV tokens per board and playlist, an admin token for the API.

The `access` section is re-read from the config file whenever its mtime changes, so a token is
revoked by editing the file: no restart, and TVs holding it are disconnected at once.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import CounterMetricFamily, Metric
from pydantic import ValidationError

from wallboard.boardconfig import AccessConfig
from wallboard.config import (
    BoardConfig,
    PlaylistConfig,
    check_access_names,
    format_validation_error,
    substitute_env,
)

log = logging.getLogger(__name__)


def _matches(token: str, allowed: list[str]) -> bool:
    # Compare with every token in constant time: the answer must not leak a prefix.
    found = False
    for candidate in allowed:
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


class Access:
    """The current access settings, their reloads, and the requests they refused."""

    def __init__(self, config: AccessConfig, path: str | Path | None,
                 boards: dict[str, BoardConfig], playlists: dict[str, PlaylistConfig]) -> None:
        self.config = config
        self.path = Path(path) if path else None
        self.boards = boards
        self.playlists = playlists
        self.mtime = self._mtime()
        self.rejected: Counter[tuple[str, int]] = Counter()
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str | None = None

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns if self.path else None
        except OSError:
            return None

    def refresh(self) -> bool:
        """Re-read the access section if the file changed; True when the settings changed."""
        mtime = self._mtime()
        if mtime is None or mtime == self.mtime:
            return False
        self.mtime = mtime
        try:
            config = self._read()
        except ValueError as exc:
            self.reload_errors += 1
            self.last_error = str(exc)
            log.error("access not reloaded, the previous tokens stay in force:\n%s", exc)
            return False
        self.reloads += 1
        self.last_error = None
        changed = config != self.config
        self.config = config
        if changed:
            log.info("access reloaded from %s", self.path)
        return changed

    def _read(self) -> AccessConfig:
        where = str(self.path)
        try:
            raw = yaml.safe_load(Path(where).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{where}: cannot read: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: <top>: must be a mapping of sections")
        problems: list[str] = []
        section = substitute_env(raw.get("access") or {}, "access", problems, where)
        if problems:
            raise ValueError("\n".join(problems))
        try:
            config = AccessConfig.model_validate(section)
            check_access_names(config, self.boards, self.playlists)
        except ValidationError as exc:
            raise ValueError("\n".join(format_validation_error(where, exc, "access"))) from None
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return config

    def board_ok(self, board: str, token: str) -> bool:
        """May a TV with this token show this board?"""
        if not self.config.enabled:
            return True
        if _matches(token, self.config.boards.get(board, [])):
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
            "reloads": access.reloads, "reload_errors": access.reload_errors,
            "last_error": access.last_error}
