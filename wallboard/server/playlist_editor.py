"""The board editor's playlists: those of the store, versioned, published to /play TVs.

Playlists of the config file are read-only here. A saved playlist replaces the one TVs read
and bumps its revision; a /play page asks for its playlist's settings every second and, when
the revision changed, adds, removes and reorders its frames in place (boards it still shows
keep their frame and their socket).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from wallboard.config.boards import PlaylistConfig
from wallboard.config.store import MAX_BOARDS, StoreError, check_name, stored_form
from wallboard.config.store_playlists import PlaylistFile, PlaylistStore, playlist_from
from wallboard.server.access import Access
from wallboard.server.editor import Conflict, Editor

log = logging.getLogger(__name__)


class PlaylistEditor:
    """The store's playlists in force beside the config's, and every change made to them."""

    def __init__(self, store: PlaylistStore, editor: Editor,
                 playlists: dict[str, PlaylistConfig], access: Access) -> None:
        self.store = store
        self.editor = editor  # the boards: their names, the shared lock and counters
        self.playlists = playlists  # the app's playlists, which /play and the tokens read
        self.read_only = frozenset(playlists)
        self.access = access
        self.files: dict[str, PlaylistFile] = {}
        self.revisions: dict[str, int] = {}
        self.problems: list[str] = []
        editor.in_use = self.using

    def load(self) -> None:
        """Read the store's playlists at start (after its boards): the valid ones go live."""
        files, self.problems = self.store.load_all(self.boards())
        for name, item in files.items():
            if name in self.read_only:
                self.problems.append(f"{self.store.path(name)}: playlist {name!r} is also in "
                                     "the config file, which wins: this file is not shown")
                continue
            self._publish(name, item)
        for line in self.problems:
            log.error("boards store: %s", line)

    def using(self, board: str) -> list[str]:
        """The store's playlists that show a board (it may not be deleted or renamed)."""
        return sorted(n for n, item in self.files.items() if board in item.playlist.boards)

    def boards(self) -> list[str]:
        """The boards a playlist of the store may show: with access on, the store's only (a
        config board may be meant for some TVs only; the store's TV tokens would open it)."""
        if self.access.config.enabled:
            return sorted(self.editor.files)
        return sorted(self.editor.boards)

    def validate(self, raw: Any) -> PlaylistConfig:
        """A playlist as the editor sent it, or StoreError (422) naming every field."""
        return playlist_from(raw, self.boards())

    def listing(self) -> list[dict[str, Any]]:
        """Every playlist: the config's (read-only), then the store's."""
        out: list[dict[str, Any]] = [{"name": name, "read_only": True, "version": None,
                "boards": list(self.playlists[name].boards)}
               for name in sorted(self.read_only)]
        out += [{"name": name, "read_only": False, "version": item.version,
                 "saved_by": item.saved_by, "saved_at": item.saved_at,
                 "boards": list(item.playlist.boards)} for name, item in sorted(
                     self.files.items())]
        return out

    def get(self, name: str) -> dict[str, Any]:
        """One playlist as the editor edits it."""
        if name in self.read_only:
            return {"name": name, "read_only": True, "version": None,
                    "playlist": stored_form(self.playlists[name]), "versions": []}
        item = self._file(name)
        return {"name": name, "read_only": False, "version": item.version,
                "saved_by": item.saved_by, "saved_at": item.saved_at,
                "playlist": stored_form(item.playlist), "versions": self.store.versions(name)}

    def _file(self, name: str) -> PlaylistFile:
        check_name(name)
        item = self.files.get(name)
        if item is None:
            raise StoreError(404, "not_found", [("name", f"no playlist {name!r} in the store")])
        return item

    def _writable(self, name: str) -> None:
        check_name(name)
        if name in self.read_only:
            raise StoreError(403, "read_only", [("name", f"playlist {name!r} is in the config "
                                                          "file: read-only in the editor")])

    def _free(self, name: str) -> None:
        self._writable(name)
        if name in self.files:
            raise StoreError(409, "exists", [("name", f"a playlist {name!r} exists already")])
        if len(self.files) >= MAX_BOARDS:
            raise StoreError(409, "limit", [("name", f"the store holds {MAX_BOARDS} playlists, "
                                                     "its limit")])

    def _version(self, name: str, version: int,
                 proposed: PlaylistConfig | None = None) -> PlaylistFile | None:
        current = self.files.get(name)
        if (current.version if current else 0) != version:
            raise Conflict(name, current, proposed)
        return current

    async def save(self, name: str, raw: Any, version: int, who: str) -> PlaylistFile:
        """Save a playlist at `version` + 1 (0 creates it)."""
        async with self.editor.lock:
            self._writable(name)
            playlist = self.validate(raw)
            current = self._version(name, version, playlist)
            if current is None:
                self._free(name)
            item = await asyncio.to_thread(self.store.write, name, playlist, version + 1, who)
            self._done(name, item, "create" if current is None else "save", who)
            return item

    async def duplicate(self, name: str, to: str, who: str) -> PlaylistFile:
        """A copy of any playlist (a read-only one too) in the store."""
        async with self.editor.lock:
            self._free(to)
            source = (self.playlists[name] if name in self.read_only
                      else self._file(name).playlist)
            playlist = self.validate(stored_form(source))
            item = await asyncio.to_thread(self.store.write, to, playlist, 1, who)
            self._done(to, item, "duplicate", who)
            return item

    async def rename(self, name: str, to: str, version: int, who: str) -> PlaylistFile:
        """The playlist under a new name (its TVs keep the old URL and stop updating)."""
        async with self.editor.lock:
            self._writable(name)
            current = self._file(name)
            self._version(name, version)
            self._free(to)
            item = await asyncio.to_thread(self.store.write, to, current.playlist, 1, who)
            await asyncio.to_thread(self.store.delete, name)
            self._gone(name)
            self._done(to, item, "rename", who)
            return item

    async def delete(self, name: str, version: int, who: str) -> None:
        """Remove a playlist of the store and its versions."""
        async with self.editor.lock:
            self._writable(name)
            self._file(name)
            self._version(name, version)
            await asyncio.to_thread(self.store.delete, name)
            self._gone(name)
            self.editor.edits["delete"] += 1
            log.info("playlist %s deleted by %s (was version %d)", name, who, version)

    async def rollback(self, name: str, to: int, version: int, who: str) -> PlaylistFile:
        """Save a kept version again, as the newest."""
        async with self.editor.lock:
            self._writable(name)
            self._file(name)
            old = await asyncio.to_thread(self.store.version, name, to, self.boards())
            self._version(name, version)
            item = await asyncio.to_thread(self.store.write, name, old.playlist, version + 1,
                                           who)
            self._done(name, item, "rollback", who)
            return item

    def _done(self, name: str, item: PlaylistFile, action: str, who: str) -> None:
        self.editor.edits[action] += 1
        log.info("playlist %s: %s by %s: version %d, boards %s", name, action, who,
                 item.version, ", ".join(item.playlist.boards))
        self._publish(name, item)

    def _publish(self, name: str, item: PlaylistFile) -> None:
        self.files[name] = item
        self.playlists[name] = item.playlist
        self.access.edited_playlists.add(name)
        self.revisions[name] = self.revisions.get(name, 0) + 1

    def _gone(self, name: str) -> None:
        self.files.pop(name, None)
        self.playlists.pop(name, None)
        self.access.edited_playlists.discard(name)
        self.revisions[name] = self.revisions.get(name, 0) + 1
