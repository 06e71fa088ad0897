"""The playlists of the boards store: boards.d/playlists/, one YAML file each, as boards."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from wallboard.config.boards import PlaylistConfig
from wallboard.config.check import did_you_mean
from wallboard.config.settings import format_validation_error
from wallboard.config.store import (
    MAX_TILES,
    Problem,
    StoredFile,
    StoreError,
    VersionedStore,
    split_problem,
)


class PlaylistFile(StoredFile):
    """What one playlist file of the store (boards.d/playlists/) holds."""

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


class PlaylistStore(VersionedStore[PlaylistFile, Collection[str]]):
    """The playlist files of a store (boards.d/playlists/), checked against the boards."""

    kind = "playlist"
    model = PlaylistFile

    def _checked(self, item: PlaylistFile, raw: Any, context: Collection[str]) -> None:
        item.playlist = playlist_from(raw, context)

    def _summary(self, item: PlaylistFile) -> dict[str, int]:
        return {"boards": len(item.playlist.boards)}
