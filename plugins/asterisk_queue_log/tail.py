"""Following a log file across rotation (rename or copytruncate) from a saved position.

The position is (inode, offset, fingerprint of the file's first bytes). On a read:
- the same inode, at least as long: read on from the offset;
- the same inode, shorter: copytruncate. The copy (a sibling whose first bytes match the
  fingerprint) holds what was written after our offset: read it from there, then the
  truncated file from its start;
- another inode: renamed. The old file (a sibling with our inode) is read to its end, then
  the new one from its start. A renamed file is read again on each later pass for
  `grace_s`: a writer may add lines to it until it reopens the log (`logger reload`).
Only whole lines are returned; a partial last line waits for its newline. Every function
here blocks on the disk: callers run them in a thread.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEAD_BYTES = 1024  # the fingerprint: a hash of the file's first bytes (up to this many)
MAX_READ = 1 << 20  # bytes read per file per pass: a month's backlog comes in slices


@dataclass
class Position:
    """Where reading stopped: the file's inode, the offset, the hash of its first bytes."""

    inode: int = 0
    offset: int = 0
    head: str = ""

    def to_json(self) -> dict[str, Any]:
        """As the state file keeps it."""
        return {"inode": self.inode, "offset": self.offset, "head": self.head}

    @classmethod
    def from_json(cls, data: Any) -> Position | None:
        """Back from the state file; None when it is not a position."""
        if not isinstance(data, dict):
            return None
        inode, offset, head = data.get("inode"), data.get("offset"), data.get("head")
        if not (isinstance(inode, int) and isinstance(offset, int) and offset >= 0
                and isinstance(head, str)):
            return None
        return cls(inode, offset, head)


def fingerprint(path: Path, upto: int) -> str:
    """The hash of a file's first min(upto, HEAD_BYTES) bytes ("" when it is empty)."""
    n = min(upto, HEAD_BYTES)
    if n <= 0:
        return ""
    with path.open("rb") as f:
        return hashlib.blake2b(f.read(n), digest_size=12).hexdigest()


def _whole_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """The whole lines from `offset` (one slice of at most MAX_READ bytes), the new offset."""
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(MAX_READ)
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) == MAX_READ:  # one line longer than a slice: not a log line, skip it
            return [data], offset + len(data)
        return [], offset
    return data[:end].split(b"\n"), offset + end + 1


@dataclass
class Follower:
    """Reads new whole lines of `path`, following rotation; `position` is what to save."""

    path: Path
    position: Position | None = None  # None: start at the beginning of the current file
    grace_s: float = 10.0
    renamed: list[tuple[Path, int, float]] = field(default_factory=list)  # (file, offset, until)
    rotations: int = 0  # rotations followed (renames and truncations)
    behind: bool = False  # the last read took a whole slice: more is waiting

    def _siblings(self) -> list[Path]:
        """Files beside ours that a rotation may have made (queue_log.1, queue_log-2026...)."""
        base = self.path.name
        try:
            entries = list(self.path.parent.iterdir())
        except OSError:
            return []
        return sorted((p for p in entries if p.name != base and p.name.startswith(base)
                       and not p.name.endswith((".gz", ".bz2", ".xz", ".zst", ".tmp"))),
                      key=lambda p: p.name)

    def _find(self, inode: int | None, head: str, offset: int) -> Path | None:
        """The rotated copy of what we were reading: our inode, or our first bytes."""
        for sibling in self._siblings():
            try:
                st = sibling.stat()
            except OSError:
                continue
            if inode is not None and st.st_ino == inode:
                return sibling
            if inode is None and st.st_size >= offset and head and \
                    fingerprint(sibling, offset) == head:
                return sibling
        return None

    def read(self, now: float | None = None) -> list[bytes]:
        """The lines written since the last read, oldest first."""
        now = time.monotonic() if now is None else now
        lines: list[bytes] = []
        kept = []
        for old, offset, until in self.renamed:  # a writer may still add to a renamed file
            try:
                more, offset = _whole_lines(old, offset)
            except OSError:
                continue
            lines += more
            if more or now < until:  # kept while it has lines, or a writer may add some
                kept.append((old, offset, until))
        self.renamed = kept
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return lines  # between a rename and the new file: wait for it
        pos = self.position
        if pos is None:
            pos = self.position = Position(st.st_ino, 0, "")
        elif st.st_ino != pos.inode:
            renamed = self._find(pos.inode, pos.head, pos.offset)
            if renamed is not None:
                more, offset = _whole_lines(renamed, pos.offset)
                lines += more
                self.renamed.append((renamed, offset, now + self.grace_s))
            pos = self.position = Position(st.st_ino, 0, "")
            self.rotations += 1
        elif st.st_size < pos.offset or (pos.head and pos.offset and
                                         fingerprint(self.path, pos.offset) != pos.head):
            copy = self._find(None, pos.head, pos.offset)
            if copy is not None:
                lines += _read_to_end(copy, pos.offset)
            pos = self.position = Position(st.st_ino, 0, "")
            self.rotations += 1
        more, offset = _whole_lines(self.path, pos.offset)
        self.behind = offset - pos.offset >= MAX_READ // 2  # a backlog: read again at once
        lines += more
        if offset != pos.offset:
            if pos.offset < HEAD_BYTES:  # the fingerprint grows with the file to its full size
                pos.head = fingerprint(self.path, offset)
            pos.offset = offset
        return lines


def _read_to_end(path: Path, offset: int) -> list[bytes]:
    """Every whole line of a file from `offset` (a rotated copy: nothing more comes)."""
    lines: list[bytes] = []
    while True:
        more, new = _whole_lines(path, offset)
        lines += more
        if new == offset:
            return lines
        offset = new
