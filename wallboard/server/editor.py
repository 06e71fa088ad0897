"""The board editor's service: boards of the store, their versions, and publishing to TVs.

Boards of the config file (and the default board) are read-only here. A saved board replaces
the resolved board TVs read, and its layout revision in the snapshot (`layouts.<board>`)
changes: every TV showing it fetches the new layout and redraws without a reload, on the same
socket (the config watcher's path: scopes re-set, one resync, one flush).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wallboard.config.boards import BoardConfig, PlaylistConfig
from wallboard.config.settings import Settings
from wallboard.config.store import (
    MAX_BOARDS,
    BoardFile,
    BoardStore,
    Problem,
    StoreError,
    board_from,
    check_name,
    stored_form,
)
from wallboard.config.store_playlists import PlaylistFile
from wallboard.kpi.history import History
from wallboard.kpi.waitratio import RatioNeed
from wallboard.server.access import Access
from wallboard.server.boards import default_board, history_keys, ratio_needs, resolve_board

log = logging.getLogger(__name__)
ACTIONS = ("create", "save", "duplicate", "rename", "delete", "rollback")
_DONE = {"create": "created", "save": "saved", "duplicate": "duplicated", "rename": "renamed",
         "rollback": "rolled back"}


class Conflict(StoreError):
    """The board (or playlist) changed since the editor read it: its version and a diff."""

    def __init__(self, name: str, current: BoardFile | PlaylistFile | None,
                 proposed: BoardConfig | PlaylistConfig | None) -> None:
        version = current.version if current else 0
        super().__init__(409, "conflict", [("version", f"{name!r} is at version {version}: "
                                                       "it changed meanwhile")])
        self.version = version
        saved = (current.board if isinstance(current, BoardFile) else current.playlist
                 if current else None)
        before = _yaml(saved) if saved else ""
        after = _yaml(proposed) if proposed else ""
        self.diff = "".join(difflib.unified_diff(
            before.splitlines(True), after.splitlines(True),
            f"{name} (version {version}, saved)", f"{name} (yours)"))


def _yaml(item: BoardConfig | PlaylistConfig) -> str:
    return yaml.safe_dump(stored_form(item), sort_keys=False, allow_unicode=True)


def _changed(before: BoardConfig | None, after: BoardConfig) -> str:
    """What an edit changed, for the log: lines of the stored YAML added and removed."""
    lines = difflib.ndiff(_yaml(before).splitlines() if before else [], _yaml(after).splitlines())
    added = removed = 0
    for line in lines:
        added += line.startswith("+ ")
        removed += line.startswith("- ")
    return f"+{added} -{removed} lines"


class Editor:
    """The store's boards in force, and every change made to them, published at once."""

    def __init__(self, store: BoardStore, settings: Settings, boards: dict[str, dict[str, Any]],
                 access: Access, history: History, ratios: set[RatioNeed],
                 forecast: bool) -> None:
        self.store = store
        self.settings = settings
        self.boards = boards  # the app's resolved boards, which TVs and the hub read
        self.read_only = frozenset(boards)  # the config's boards (or the default one)
        self.access = access
        self.history = history
        self.ratios = ratios
        self.forecast = forecast  # whether this server computes today's forecast
        self.files: dict[str, BoardFile] = {}
        self.revisions: dict[str, int] = {}  # layout revision per board: TVs redraw on a change
        self.edits: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.lock = asyncio.Lock()
        self.on_publish: Callable[[str], None] = lambda board: None
        self.problems: list[str] = []
        self.closing: set[asyncio.Future[Any]] = set()  # TVs of a deleted board, being closed
        # The store's playlists showing a board (playlist_editor.py): it may not go then.
        self.in_use: Callable[[str], list[str]] = lambda board: []

    def load(self) -> None:
        """Read the store at start: valid boards go live, the rest are logged and left out."""
        files, self.problems = self.store.load_all(self.settings)
        for name, item in files.items():
            if name in self.read_only:
                self.problems.append(f"{self.store.path(name)}: board {name!r} is also in the "
                                     "config file, which wins: this file is not shown")
                continue
            problems = self._server_problems(item.board)
            if problems:
                self.problems += [f"{self.store.path(name)}: board.{p}: {m}" for p, m in problems]
                continue
            self.files[name] = item
            self._publish(name, item.board)
        for line in self.problems:
            log.error("boards store: %s", line)

    def _server_problems(self, board: BoardConfig) -> list[Problem]:
        if self.forecast:
            return []
        return [(f"tiles[{i}].type", "this server computes no forecast (it needs the journal "
                 "and a forecast tile in the config): a forecast tile would stay empty")
                for i, tile in enumerate(board.tiles) if tile.type == "forecast"]

    def validate(self, raw: Any) -> BoardConfig:
        """A board as the editor sent it, validated, or StoreError (422) naming every field."""
        board = board_from(raw, self.settings)
        problems = self._server_problems(board)
        if problems:
            raise StoreError(422, "invalid", problems)
        return board

    # ---------- reads ----------

    def listing(self) -> list[dict[str, Any]]:
        """Every board: read-only ones of the config, then the store's."""
        out = [{"name": name, "title": b["title"], "read_only": True, "version": None,
                "tiles": len(b["tiles"])} for name, b in self.boards.items()
               if name in self.read_only]
        out += [{"name": name, "title": item.board.title or name, "read_only": False,
                 "version": item.version, "saved_by": item.saved_by, "saved_at": item.saved_at,
                 "tiles": len(item.board.tiles)} for name, item in sorted(self.files.items())]
        return out

    def _config_board(self, name: str) -> BoardConfig:
        # The config's board, or the default one a config without boards shows.
        board = self.settings.boards.get(name)
        return board if board is not None else default_board(self.settings)

    def get(self, name: str) -> dict[str, Any]:
        """One board as the editor edits it (a read-only one as the config gives it)."""
        if name in self.read_only:
            return {"name": name, "read_only": True, "version": None,
                    "board": stored_form(self._config_board(name)), "versions": []}
        item = self._file(name)
        return {"name": name, "read_only": False, "version": item.version,
                "saved_by": item.saved_by, "saved_at": item.saved_at,
                "board": stored_form(item.board), "versions": self.store.versions(name)}

    def _file(self, name: str) -> BoardFile:
        check_name(name)
        item = self.files.get(name)
        if item is None:
            raise StoreError(404, "not_found", [("name", f"no board {name!r} in the store")])
        return item

    def _writable(self, name: str) -> None:
        if name in self.read_only:
            raise StoreError(403, "read_only", [("name", f"board {name!r} is in the config "
                                                          "file: read-only in the editor")])

    def _free(self, name: str) -> None:
        check_name(name)
        self._writable(name)
        if name in self.files:
            raise StoreError(409, "exists", [("name", f"a board {name!r} exists already")])
        if len(self.files) >= MAX_BOARDS:
            raise StoreError(409, "limit", [("name", f"the store holds {MAX_BOARDS} boards, "
                                                     "its limit")])

    # ---------- writes (under the lock, files in a thread) ----------

    async def save(self, name: str, raw: Any, version: int, who: str) -> BoardFile:
        """Save a board at `version` + 1 (0 creates it); 409 with a diff if it moved on."""
        async with self.lock:
            self._writable(name)
            check_name(name)
            board = self.validate(raw)
            current = self.files.get(name)
            if (current.version if current else 0) != version:
                raise Conflict(name, current, board)
            if current is None:
                self._free(name)
            item = await asyncio.to_thread(self.store.write, name, board, version + 1, who)
            self._done(name, item, "create" if current is None else "save", who,
                       _changed(current.board if current else None, board))
            return item

    async def duplicate(self, name: str, to: str, who: str) -> BoardFile:
        """A copy of any board (a read-only one too) under a new name in the store."""
        async with self.lock:
            self._free(to)
            if name in self.read_only:
                board = self.validate(stored_form(self._config_board(name)))
            else:
                board = self._file(name).board
            item = await asyncio.to_thread(self.store.write, to, board, 1, who)
            self._done(to, item, "duplicate", who, f"from {name}")
            return item

    async def rename(self, name: str, to: str, version: int, who: str) -> BoardFile:
        """The board under a new name; TVs showing the old one are closed (it is gone)."""
        async with self.lock:
            self._writable(name)
            current = self._file(name)
            if current.version != version:
                raise Conflict(name, current, current.board)
            self._unused(name)
            self._free(to)
            item = await asyncio.to_thread(self.store.write, to, current.board, 1, who)
            await asyncio.to_thread(self.store.delete, name)
            self._gone(name)
            self._done(to, item, "rename", who, f"from {name}")
            return item

    async def delete(self, name: str, version: int, who: str) -> None:
        """Remove a board of the store and its versions."""
        async with self.lock:
            self._writable(name)
            current = self._file(name)
            if current.version != version:
                raise Conflict(name, current, None)
            self._unused(name)
            await asyncio.to_thread(self.store.delete, name)
            self._gone(name)
            self.edits["delete"] += 1
            log.info("board %s deleted by %s (was version %d)", name, who, version)

    def _unused(self, name: str) -> None:
        users = self.in_use(name)
        if users:
            raise StoreError(409, "in_use", [("name", f"board {name!r} is in playlist "
                                                      f"{', '.join(users)}: take it out first")])

    async def rollback(self, name: str, to: int, version: int, who: str) -> BoardFile:
        """Save a kept version again, as the newest: the TVs show it at once."""
        async with self.lock:
            self._writable(name)
            current = self._file(name)
            old = await asyncio.to_thread(self.store.version, name, to, self.settings)
            if current.version != version:
                raise Conflict(name, current, old.board)
            self.validate(stored_form(old.board))
            item = await asyncio.to_thread(self.store.write, name, old.board, version + 1, who)
            self._done(name, item, "rollback", who, f"to version {to}")
            return item

    # ---------- publishing ----------

    def _done(self, name: str, item: BoardFile, action: str, who: str, note: str = "") -> None:
        self.files[name] = item
        self.edits[action] += 1
        log.info("board %s %s by %s%s: version %d, %d tiles", name, _DONE[action], who,
                 f" ({note})" if note else "", item.version, len(item.board.tiles))
        self._publish(name, item.board)

    def _gone(self, name: str) -> None:
        self.files.pop(name, None)
        self.boards.pop(name, None)
        self.access.edited.discard(name)
        self.revisions[name] = self.revisions.get(name, 0) + 1
        self._refresh()
        self.on_publish(name)

    def _publish(self, name: str, board: BoardConfig) -> None:
        self.boards[name] = resolve_board(name, board, self.settings)
        self.access.edited.add(name)
        self.revisions[name] = self.revisions.get(name, 0) + 1
        self._refresh()
        self.on_publish(name)

    def _refresh(self) -> None:
        self.history.track(history_keys(self.boards))
        self.ratios.clear()
        self.ratios.update(ratio_needs(self.boards))

    def layouts(self) -> dict[str, int]:
        """The layout revision of every board (0: as at start), for the snapshot."""
        return {name: self.revisions.get(name, 0) for name in self.boards}


class EditorCollector:
    """Prometheus view of the editor: edits by action, refused writes by reason."""

    def __init__(self, editor: Editor, reasons: Collection[str]) -> None:
        self.editor = editor
        self.reasons = reasons

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        edits = CounterMetricFamily("wallboard_editor_edits",
                                    "Boards changed through the editor, by action",
                                    labels=["action"])
        for action in ACTIONS:
            edits.add_metric([action], self.editor.edits[action])
        yield edits
        refused = CounterMetricFamily("wallboard_editor_refused",
                                      "Editor writes refused, by reason", labels=["reason"])
        for reason in self.reasons:
            refused.add_metric([reason], self.editor.refused[reason])
        yield refused
        yield GaugeMetricFamily("wallboard_editor_boards", "Boards in the boards store",
                                value=len(self.editor.files))


def store_for(settings: Settings) -> BoardStore:
    """The store of this server: boards.d in the data directory (created at the first save)."""
    return BoardStore(Path(settings.journal.data_dir) / "boards.d")
