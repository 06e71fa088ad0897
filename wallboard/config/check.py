"""Config checks that name every problem in one run: cross-references and "did you mean".

The cross-references are checked on the mapping as read, not on validated models, so that a
section the schema refused (a tile with a bad window) does not hide a problem elsewhere (an
unknown board in a playlist): `wallboard check-config`, `serve` and a run-time reload all list
the schema's errors, these, and each source's own settings together.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from wallboard.config.windows import DEFAULT_WINDOWS
from wallboard.model.events import CHANNELS


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest known name, or ''; it ends a message."""
    if not isinstance(name, str):
        return ""
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _unknown(path: str, what: str, name: object, known: Iterable[str]) -> str:
    known = list(known)
    return f"{path}: unknown {what} {name!r}; known: {_known(known)}{did_you_mean(name, known)}"


def _tile_problems(where: str, tile: dict[str, Any], windows: list[str],
                   queues: dict[str, Any]) -> list[str]:
    problems = []
    window = tile.get("window")
    if isinstance(window, str) and window != "live" and window not in windows:
        problems.append(f"{where}.window: {window!r} is not a configured window "
                        f"({', '.join(windows)}){did_you_mean(window, windows)}")
    for i, queue in enumerate(_list(tile.get("queues"))):
        if isinstance(queue, str) and queue not in queues:
            problems.append(_unknown(f"{where}.queues[{i}]", "queue", queue, queues))
    queue = tile.get("queue")
    if isinstance(queue, str) and queue not in queues:
        problems.append(_unknown(f"{where}.queue", "queue", queue, queues))
    channel = tile.get("channel")
    if isinstance(channel, str) and channel not in CHANNELS:
        problems.append(_unknown(f"{where}.channel", "channel", channel, sorted(CHANNELS)))
    if tile.get("type") == "forecast" and "today" not in windows:
        problems.append(f"{where}.type: a forecast tile compares with the 'today' window, "
                        f"which is not configured ({', '.join(windows)})")
    if tile.get("type") == "legal" and isinstance(queue, str) and queue in queues:
        config = queues[queue] if isinstance(queues[queue], dict) else {}
        rules = [r["name"] for r in _list(config.get("legal_rules"))
                 if isinstance(r, dict) and isinstance(r.get("name"), str)]
        rule = tile.get("rule")
        if not rules:
            problems.append(f"{where}.queue: queue {queue!r} has no legal_rules")
        elif isinstance(rule, str) and rule not in rules:
            problems.append(_unknown(f"{where}.rule", "rule", rule, rules))
    return problems


def reference_problems(raw: dict[str, Any]) -> list[str]:
    """'key.path: message' for every name that refers to nothing configured."""
    problems: list[str] = []
    windows = raw.get("windows", DEFAULT_WINDOWS)
    windows = ([w for w in windows if isinstance(w, str)] if isinstance(windows, list | tuple)
               else list(DEFAULT_WINDOWS))
    queues, boards = _section(raw, "queues"), _section(raw, "boards")
    playlists = _section(raw, "playlists")
    for name, source in _section(raw, "sources").items():
        if isinstance(source, dict) and not isinstance(source.get("type"), str):
            problems.append(f"sources.{name}.type: required: the source type "
                            "(`wallboard plugins` lists them)")
    for name, queue in queues.items():
        staffing = queue.get("staffing") if isinstance(queue, dict) else None
        window = staffing.get("window") if isinstance(staffing, dict) else None
        if isinstance(window, str) and window not in windows:
            problems.append(f"queues.{name}.staffing.window: {window!r} is not a configured "
                            f"window ({', '.join(windows)}){did_you_mean(window, windows)}")
    for board_id, board in boards.items():
        tiles = board.get("tiles") if isinstance(board, dict) else None
        for i, tile in enumerate(_list(tiles)):
            if isinstance(tile, dict):
                problems += _tile_problems(f"boards.{board_id}.tiles[{i}]", tile, windows,
                                           queues)
    for name, playlist in playlists.items():
        names = playlist.get("boards") if isinstance(playlist, dict) else None
        for i, board_id in enumerate(_list(names)):
            if isinstance(board_id, str) and board_id not in boards:
                problems.append(_unknown(f"playlists.{name}.boards[{i}]", "board", board_id,
                                         boards))
    for i, item in enumerate(_list(raw.get("announcements"))):
        names = item.get("boards") if isinstance(item, dict) else None
        for j, board_id in enumerate(_list(names)):
            if isinstance(board_id, str) and board_id not in boards:
                problems.append(_unknown(f"announcements[{i}].boards[{j}]", "board", board_id,
                                         boards))
    access = _section(raw, "access")
    for board_id in _section(access, "boards"):
        if board_id not in boards:
            problems.append(_unknown(f"access.boards.{board_id}", "board", board_id, boards))
    for name in _section(access, "playlists"):
        if name not in playlists:
            problems.append(_unknown(f"access.playlists.{name}", "playlist", name, playlists))
    return problems


_STEP = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def document_order(raw: dict[str, Any], path: str) -> tuple[int, ...]:
    """Where a 'key.path' lies in the mapping as read, to list problems in the file's order."""
    node: Any = raw
    out: list[int] = []
    for match in _STEP.finditer(path):
        index, key = match.groups()
        if index is not None and isinstance(node, list) and int(index) < len(node):
            out.append(int(index))
            node = node[int(index)]
        elif key is not None and isinstance(node, dict) and key in node:
            out.append(list(node).index(key))
            node = node[key]
        else:
            break
    return tuple(out)


def _unwrap(annotation: Any) -> Any:
    """X from `X | None`."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that validates the value at `loc` under `model`, if it is one."""
    annotation: Any = model
    for step in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(step) if isinstance(step, str) else None
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def suggestion(item: ErrorDetails, model: type[BaseModel] | None) -> str:
    """'did you mean' for a pydantic error: an unknown key, or a value not among a Literal's."""
    if item["type"] == "extra_forbidden" and model is not None and item["loc"]:
        parent = model_at(model, tuple(item["loc"][:-1]))
        if parent is not None:
            names = [f.alias or name for name, f in parent.model_fields.items()]
            return did_you_mean(item["loc"][-1], names)
    if item["type"] == "literal_error":
        expected = re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected", "")))
        return did_you_mean(item.get("input"), expected)
    return ""
