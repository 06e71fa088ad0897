"""Reading the config file safely: its size, its encoding, and YAML aliases and nesting.

A file that passes here is a mapping whose expanded tree (aliases followed) is small and
shallow, so that substituting ${ENV} and validating it take milliseconds, whatever is in it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# A real configuration is a few KiB; past this the file is almost certainly the wrong one.
MAX_CONFIG_BYTES = 1_048_576
# Values in the tree once aliases are expanded: a "billion laughs" file of a few hundred
# bytes expands to 10^9 of them. 200,000 is far beyond any real site and reads in < 1 s.
MAX_CONFIG_VALUES = 200_000
# Nesting (also through aliases); a real configuration is at most about 8 levels deep.
MAX_CONFIG_DEPTH = 64

# libyaml parses about four times faster; the pure-Python loader is the fallback.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(Exception):
    """Configuration is invalid; `problems` lists 'file: key.path: message' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([f"{where}: not UTF-8: byte 0x{data[exc.start]:02X} at offset "
                           f"{exc.start} (line {line}, column {column}); save the file as "
                           "UTF-8"]) from None
    return text.removeprefix("\ufeff")  # a byte order mark some editors write


def _children(node: Node) -> list[tuple[str, Node]]:
    """(key path step, child) pairs; a mapping's keys count as values too."""
    if isinstance(node, SequenceNode):
        return [(f"[{i}]", child) for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: list[tuple[str, Node]] = []
        for key, value in node.value:
            step = f".{key.value}" if isinstance(key, ScalarNode) else ".?"
            out += [(step, key), (step, value)]
        return out
    return []


def _where(path: str, node: Node) -> str:
    path = path.removeprefix(".") or "<top>"
    if len(path) > 100:  # a path 64 levels deep says no more than its ends
        path = f"{path[:60]}…{path[-30:]}"
    return f"{path} (line {node.start_mark.line + 1})"


def _measure(root: Node, where: str) -> tuple[dict[int, int], dict[int, int]]:
    """Expanded size and depth of every node, without recursion; refuse recursive aliases."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    started: set[int] = set()
    stack: list[tuple[Node, str, bool]] = [(root, "", False)]
    while stack:
        node, path, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            size[key] = 1 + sum(size[id(child)] for _, child in kids)
            depth[key] = 1 + max((depth[id(child)] for _, child in kids), default=0)
            continue
        if key in size:
            continue  # an alias of a node already measured: shared, not walked again
        if key in started:
            # Popped again before it was finished: it lies inside itself.
            raise ConfigError([f"{where}: {_where(path, node)}: an alias refers to a node "
                               "that contains it (recursive alias)"])
        started.add(key)
        stack.append((node, path, True))
        stack.extend((child, path + step, False) for step, child in reversed(kids))
    return size, depth


def _too_big_at(node: Node, size: dict[int, int], budget: int) -> tuple[str, Node]:
    """The key path at which a walk in document order passes `budget` values."""
    path, used = "", 1
    while True:
        for step, child in _children(node):
            if used + size[id(child)] > budget:
                budget -= used
                path, node, used = path + step, child, 1
                break
            used += size[id(child)]
        else:
            return path, node


def _too_deep_at(node: Node, depth: dict[int, int], levels: int) -> tuple[str, Node]:
    """The key path `levels` deep along the deepest branch."""
    path = ""
    for _ in range(levels):
        kids = _children(node)
        if not kids:
            break
        step, node = max(kids, key=lambda item: depth[id(item[1])])
        path += step
    return path, node


def check_tree(root: Node, where: str) -> None:
    """Refuse a document that expands past MAX_CONFIG_VALUES or nests past MAX_CONFIG_DEPTH."""
    size, depth = _measure(root, where)
    if size[id(root)] > MAX_CONFIG_VALUES:
        path, node = _too_big_at(root, size, MAX_CONFIG_VALUES)
        raise ConfigError([f"{where}: {_where(path, node)}: more than {MAX_CONFIG_VALUES:,} "
                           "values once YAML aliases (*name) are expanded; a configuration "
                           "needs far fewer"])
    if depth[id(root)] > MAX_CONFIG_DEPTH:
        path, node = _too_deep_at(root, depth, MAX_CONFIG_DEPTH)
        raise ConfigError([f"{where}: {_where(path, node)}: nested more than "
                           f"{MAX_CONFIG_DEPTH} levels deep"])


def parse_yaml(text: str, where: str) -> Any:
    """One YAML document, checked for size and depth before it is built into Python values."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_tree(node, where)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as exc:  # a control character: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError([f"{where}: invalid YAML at line {line}: character "
                           f"U+{exc.character:04X} is not allowed"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{where}: invalid YAML{at}: {getattr(exc, 'problem', exc)}"]) from None
    except RecursionError:  # the pure-Python parser, on thousands of nested brackets
        raise ConfigError([f"{where}: nested more than {MAX_CONFIG_DEPTH} levels deep"]) from None
    finally:
        loader.dispose()


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError naming the file for anything else."""
    where = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{where}: larger than {MAX_CONFIG_BYTES:,} bytes; a configuration "
                           "is a few KiB: is this the right file?"])
    raw = parse_yaml(_decode(data, where), where)
    if raw is None:
        raise ConfigError([f"{where}: the file is empty (or only comments): expected a mapping "
                           "of sections such as site:, queues:, sources:"])
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}: <top>: must be a mapping of sections such as site:, "
                           f"queues:, sources:, not a {type(raw).__name__}"])
    return raw


def port_arg(text: str) -> int:
    """--port: a TCP port, 0..65535 like server.port (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range for server.port (0-65535)")
    return port


def host_arg(text: str) -> str:
    """--host: a name or address, without spaces or control characters."""
    if not text or len(text) > 253 or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or address "
                                         "(server.host)")
    return text
