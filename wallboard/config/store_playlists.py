"""The playlists of the boards store: boards.d/playlists/, one YAML file each, as boards."""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wallboard.config.boards import PlaylistConfig
from wallboard.config.check import did_you_mean
from wallboard.config.settings import format_validation_error
from wallboard.config.store import (
    HISTORY,
    KEEP_VERSIONS,
    MAX_BOARDS,
    MAX_TILES,
    MAX_WHO,
    NAME,
    NAME_RULE,
    Problem,
    StoreError,
    check_lines,
    check_name,
    delete_files,
    document,
    keep_version,
    load_yaml,
    split_problem,
    stamp,
    store_names,
)


class PlaylistFile(BaseModel):
    """What one playlist file of the store (boards.d/playlists/) holds."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=1_000_000_000)
    saved_by: str = Field(min_length=1, max_length=MAX_WHO)
    saved_at: str = Field(min_length=1, max_length=40)
    playlist: PlaylistConfig


def playlist_problems(raw: Any, boards: Collection[str]) -> list[Problem]:
    """A playlist's problems as check-config names them; `boards`: the boards that exist."""
    problems: list[Problem] = []
    if isinstance(raw, dict) and isinstance(raw.get("boards"), list) and len(
            raw["boards"]) > MAX_TILES:
        return [("boards", f"at most {MAX_TILES} boards in a playlist")]
    try:
        PlaylistConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [split_problem(line) for line in format_validation_error(
            "@", exc, model=PlaylistConfig)]
    names = raw.get("boards") if isinstance(raw, dict) else None
    known = sorted(boards)
    for i, board in enumerate(names if isinstance(names, list) else []):
        if isinstance(board, str) and board not in boards:
            problems.append((f"boards[{i}]", f"unknown board {board!r}; known: "
                             f"{', '.join(known) or 'none'}{did_you_mean(board, known)}"))
    return problems


def playlist_from(raw: Any, boards: Collection[str]) -> PlaylistConfig:
    """The playlist validated, or StoreError (422) naming each field."""
    problems = playlist_problems(raw, boards)
    if problems:
        raise StoreError(422, "invalid", problems)
    return PlaylistConfig.model_validate(raw)


class PlaylistStore:
    """The playlist files of a store (boards.d/playlists/): as boards, checked against them."""

    def __init__(self, directory: Path, keep: int = KEEP_VERSIONS,
                 clock: Any = time.time) -> None:
        self.directory = directory
        self.keep = keep
        self.clock = clock

    def path(self, name: str) -> Path:
        """The current file of a playlist."""
        return self.directory / f"{name}.yaml"

    def names(self) -> list[str]:
        """The playlists in the store, sorted."""
        return store_names(self.directory)

    def _read(self, path: Path, boards: Collection[str] | None) -> PlaylistFile:
        raw = load_yaml(path)
        try:
            item = PlaylistFile.model_validate(raw)
        except ValidationError as exc:
            raise StoreError(422, "invalid", [split_problem(line) for line in
                                              format_validation_error("@", exc, model=PlaylistFile)]
                             ) from None
        if boards is not None:
            item.playlist = playlist_from(raw["playlist"], boards)
        return item

    def check_file(self, path: Path, boards: Collection[str]) -> list[str]:
        """check-config's lines for one file: 'file: playlist.key.path: message'."""
        try:
            self._read(path, boards)
        except StoreError as exc:
            return check_lines(path, "playlist", exc.problems)
        return [] if NAME.fullmatch(path.stem) else [f"{path}: the file name is not a "
                                                      f"playlist name: {NAME_RULE}"]

    def load_all(self, boards: Collection[str]) -> tuple[dict[str, PlaylistFile], list[str]]:
        """Every valid playlist of the store, and a line per problem (those left out)."""
        found: dict[str, PlaylistFile] = {}
        problems: list[str] = []
        for name in self.names()[:MAX_BOARDS]:
            lines = self.check_file(self.path(name), boards)
            if lines:
                problems += lines
            else:
                found[name] = self._read(self.path(name), boards)
        return found, problems

    def write(self, name: str, playlist: PlaylistConfig, version: int,
              who: str) -> PlaylistFile:
        """Write a playlist as `version` and keep it."""
        check_name(name)
        item = PlaylistFile(version=version, saved_by=who[:MAX_WHO] or "?",
                            saved_at=stamp(self.clock), playlist=playlist)
        keep_version(self.directory, name, version, document("playlist", item, playlist), self.keep)
        return item

    def versions(self, name: str) -> list[dict[str, Any]]:
        """The kept versions, newest first: version, who, when."""
        check_name(name)
        out = []
        for path in sorted((self.directory / HISTORY / name).glob("*.yaml"), reverse=True):
            try:
                item = self._read(path, None)
            except StoreError:
                continue
            out.append({"version": item.version, "saved_by": item.saved_by,
                        "saved_at": item.saved_at, "boards": len(item.playlist.boards)})
        return out

    def version(self, name: str, version: int, boards: Collection[str]) -> PlaylistFile:
        """One kept version, checked against the boards that exist now."""
        check_name(name)
        path = self.directory / HISTORY / name / f"{version:010d}.yaml"
        if not path.exists():
            raise StoreError(404, "not_found", [("version", f"{name!r} has no version {version}")])
        return self._read(path, boards)

    def delete(self, name: str) -> None:
        """Remove a playlist and its versions."""
        delete_files(self.directory, name)
