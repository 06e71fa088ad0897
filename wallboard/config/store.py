"""The boards store: boards (and playlists) made in the editor, one YAML file each in boards.d.

Each file holds one board under `board:` with its version, who saved it and when; it is
validated by the config's own models and cross-references (the same messages as check-config).
Writes are atomic (a temporary file, fsync, rename, fsync of the directory) and every version
is kept in `.history/<name>/` (the newest `keep` of them), so a board can be rolled back.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wallboard.config.boards import BoardConfig
from wallboard.config.check import reference_problems
from wallboard.config.settings import Settings, format_validation_error

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
NAME_RULE = "1-48 lower-case letters, digits, '_' or '-', starting with a letter or digit"
MAX_BOARDS = 200  # files in a store
MAX_TILES = 100  # per board: a TV shows a few dozen at most
KEEP_VERSIONS = 20  # versions kept per board, the current one included
MAX_FILE_BYTES = 256 * 1024
MAX_WHO = 80
HISTORY = ".history"
Problem = tuple[str, str]  # (key path in the board, message)


class StoreError(Exception):
    """A store operation refused: an HTTP status, a reason (metric label), the problems."""

    def __init__(self, status: int, reason: str, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))
        self.status, self.reason, self.problems = status, reason, problems


class StoredFile(BaseModel):
    """What every file of the store holds besides its content: version, who and when."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=1_000_000_000)
    saved_by: str = Field(min_length=1, max_length=MAX_WHO)
    saved_at: str = Field(min_length=1, max_length=40)


class BoardFile(StoredFile):
    """What one board file of the store holds."""

    board: BoardConfig


FileT = TypeVar("FileT", bound=StoredFile)
ContextT = TypeVar("ContextT")


def check_name(name: str, what: str = "name") -> None:
    """Raise StoreError (400) unless `name` is a valid board name."""
    if not NAME.fullmatch(name):
        raise StoreError(400, "invalid",
                         [(what, f"{name[:60]!r} is not a board name: {NAME_RULE}")])


def split_problem(line: str) -> Problem:
    """(key path, message) of a 'where: path: message' line (where '@')."""
    # format_validation_error's 'where: path: message' with where '@'.
    rest = line.removeprefix("@: ")
    path, sep, message = rest.partition(": ")
    return (path, message) if sep and not path.count(" ") else ("", rest)


def board_problems(raw: Any, settings: Settings) -> list[Problem]:
    """Every problem of a board as check-config names them: (key path, message)."""
    problems: list[Problem] = []
    tiles = raw.get("tiles") if isinstance(raw, dict) else None
    if isinstance(tiles, list) and len(tiles) > MAX_TILES:
        # The config's default board may be longer (four tiles per queue); an edited one not.
        problems.append(("tiles", f"at most {MAX_TILES} tiles on an edited board, not "
                                  f"{len(tiles)}"))
        return problems
    try:
        BoardConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [split_problem(line)
                     for line in format_validation_error("@", exc, model=BoardConfig)]
    if isinstance(raw, dict):
        mapping = {"windows": list(settings.windows),
                   "queues": {n: q.model_dump() for n, q in settings.queues.items()},
                   "boards": {"@": raw}}
        for line in reference_problems(mapping):
            path, _, message = line.removeprefix("boards.@.").partition(": ")
            problems.append((path, message))
    return list(dict.fromkeys(problems))


def board_from(raw: Any, settings: Settings) -> BoardConfig:
    """The board validated and with the site's defaults, or StoreError (422) naming each field."""
    problems = board_problems(raw, settings)
    if problems:
        raise StoreError(422, "invalid", problems)
    board = BoardConfig.model_validate(raw)
    for tile in board.tiles:
        settings.tile_defaults(tile)
    return board


def stored_form(item: BaseModel) -> dict[str, Any]:
    """A board or playlist as written: what differs from the defaults, in the models' order."""
    return item.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all, durable once this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def document(kind: str, item: BaseModel, content: BaseModel) -> str:
    """A store file's text: its head comment, version, who, when, and the board or playlist."""
    meta = item.model_dump(include={"version", "saved_by", "saved_at"})
    body = {**{k: meta[k] for k in ("version", "saved_by", "saved_at")},
            kind: stored_form(content)}
    head = f"# A wallboard {kind}, written by the board editor (/edit): wallboard check-config\n"
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def load_yaml(path: Path) -> Any:
    """A store file's YAML, bounded, or StoreError naming the file."""
    where = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise StoreError(422, "invalid", [("", f"{where}: larger than {MAX_FILE_BYTES} bytes")])
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(404, "not_found", [("", f"no {path.stem!r} in the store")]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StoreError(422, "invalid", [("", f"{where}: {exc}")]) from None


def check_lines(path: Path, kind: str, problems: list[Problem]) -> list[str]:
    """check-config's lines for a file's problems: 'file: kind.key.path: message'."""
    out = []
    for key, message in problems:
        if key and not key.startswith((kind, "version", "saved")):
            key = f"{kind}.{key}"
        out.append(f"{path}: {key}: {message}" if key else
                   message if message.startswith(str(path)) else f"{path}: {message}")
    return out


def keep_version(directory: Path, name: str, version: int, text: str, keep: int) -> None:
    """Write a version (and the current file) atomically; keep the newest `keep` versions."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise StoreError(413, "too_large", [("", f"larger than {MAX_FILE_BYTES} bytes")])
    history = directory / HISTORY / name
    atomic_write(history / f"{version:010d}.yaml", text)
    atomic_write(directory / f"{name}.yaml", text)
    for old in sorted(history.glob("*.yaml"))[:-keep]:
        old.unlink(missing_ok=True)


def store_names(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yaml") if NAME.fullmatch(p.stem))


def delete_files(directory: Path, name: str) -> None:
    """Remove a file of the store and its versions."""
    check_name(name)
    (directory / f"{name}.yaml").unlink(missing_ok=True)
    shutil.rmtree(directory / HISTORY / name, ignore_errors=True)
    if directory.is_dir():
        _fsync_dir(directory)


def stamp(clock: Any) -> str:
    """The time of a save, as written: UTC, to the second."""
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VersionedStore(Generic[FileT, ContextT]):
    """The files of one kind in a store directory. Blocking I/O: the server calls it in a thread."""

    kind = ""  # the file's content key and check-config's word: "board" or "playlist"
    model: type[FileT]

    def __init__(self, directory: Path, keep: int = KEEP_VERSIONS,
                 clock: Any = time.time) -> None:
        self.directory = directory
        self.keep = keep
        self.clock = clock

    def _checked(self, item: FileT, raw: Any, context: ContextT) -> None:
        """Replace the item's content with itself checked against the context (or StoreError)."""
        raise NotImplementedError

    def _summary(self, item: FileT) -> dict[str, int]:
        """What the versions list shows of one version besides who and when."""
        raise NotImplementedError

    def path(self, name: str) -> Path:
        """The current file of an item."""
        return self.directory / f"{name}.yaml"

    def names(self) -> list[str]:
        """The items in the store (files with a valid name), sorted."""
        return store_names(self.directory)

    def _read(self, path: Path, context: ContextT | None) -> FileT:
        raw = load_yaml(path)
        try:
            item = self.model.model_validate(raw)
        except ValidationError as exc:
            raise StoreError(422, "invalid", [split_problem(line) for line in
                                              format_validation_error("@", exc, model=self.model)]
                             ) from None
        if context is not None:
            self._checked(item, raw[self.kind], context)
        return item

    def read(self, name: str, context: ContextT | None = None) -> FileT:
        """One item's current file, validated (against the context when given)."""
        check_name(name)
        return self._read(self.path(name), context)

    def check_file(self, path: Path, context: ContextT) -> list[str]:
        """check-config's lines for one file: 'file: kind.key.path: message'."""
        try:
            self._read(path, context)
        except StoreError as exc:
            return check_lines(path, self.kind, exc.problems)
        return [] if NAME.fullmatch(path.stem) else [f"{path}: the file name is not a "
                                                      f"{self.kind} name: {NAME_RULE}"]

    def load_all(self, context: ContextT) -> tuple[dict[str, FileT], list[str]]:
        """Every valid item of the store, and a line per problem (those items left out)."""
        found: dict[str, FileT] = {}
        problems: list[str] = []
        for name in self.names()[:MAX_BOARDS]:
            lines = self.check_file(self.path(name), context)
            if lines:
                problems += lines
            else:
                found[name] = self._read(self.path(name), context)
        return found, problems

    def write(self, name: str, content: BaseModel, version: int, who: str) -> FileT:
        """Write an item as `version` (the caller checked the previous one) and keep it."""
        check_name(name)
        item = self.model.model_validate({
            "version": version, "saved_by": who[:MAX_WHO] or "?",
            "saved_at": stamp(self.clock), self.kind: content})
        keep_version(self.directory, name, version, document(self.kind, item, content), self.keep)
        return item

    def versions(self, name: str) -> list[dict[str, Any]]:
        """The kept versions of an item, newest first: version, who, when."""
        check_name(name)
        out = []
        for path in sorted((self.directory / HISTORY / name).glob("*.yaml"), reverse=True):
            try:
                item = self._read(path, None)
            except StoreError:
                continue  # a damaged old version is not offered for rollback
            out.append({"version": item.version, "saved_by": item.saved_by,
                        "saved_at": item.saved_at, **self._summary(item)})
        return out

    def version(self, name: str, version: int, context: ContextT) -> FileT:
        """One kept version, validated against the context in force."""
        check_name(name)
        path = self.directory / HISTORY / name / f"{version:010d}.yaml"
        if not path.exists():
            raise StoreError(404, "not_found", [("version", f"{name!r} has no version {version}")])
        return self._read(path, context)

    def delete(self, name: str) -> None:
        """Remove an item and its versions."""
        delete_files(self.directory, name)


class BoardStore(VersionedStore[BoardFile, Settings]):
    """The board files of one boards.d directory, checked against the settings."""

    kind = "board"
    model = BoardFile

    def _checked(self, item: BoardFile, raw: Any, context: Settings) -> None:
        item.board = board_from(raw, context)

    def _summary(self, item: BoardFile) -> dict[str, int]:
        return {"tiles": len(item.board.tiles)}
