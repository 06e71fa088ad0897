"""SQLite errors in words an operator can act on: the cause, free space, the size limit."""

from __future__ import annotations

import contextlib
import resource
import shutil
import sqlite3
from pathlib import Path


def _room(directory: Path) -> str:
    """Free space and the file size limit, for a write error's message."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(f"{shutil.disk_usage(directory).free:,} bytes free on its file system")
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        parts.append(f"file size limit (ulimit -f) {soft:,} bytes")
    return f"; {', '.join(parts)}" if parts else ""


def cause(exc: sqlite3.Error, directory: Path) -> str:
    """What went wrong, in words an operator can act on."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        hint = "the file is corrupt or not a wallboard journal; move it aside to start afresh"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        hint = "another process holds a lock on the database"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        hint = "the data directory or the database file is not writable"
    elif name.startswith("SQLITE_FULL"):
        hint = "the disk is full" + _room(directory)
    elif name.startswith("SQLITE_IOERR"):
        hint = "a write failed: disk full, quota or I/O error" + _room(directory)
    else:
        hint = ""
    label = f"{name}: {hint}" if hint else name
    return f"{exc} ({label})" if label else str(exc)
