"""The journal writer's group commit: leading edge after a quiet spell, gathered when busy."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from wallboard.config.settings import JournalConfig
from wallboard.journal.sqlite_writer import Writer, _Append


def _writer(batch_ms: int, last_commit: float) -> Writer:
    """A writer's gathering half alone: no database, no thread taking from its queue."""
    writer = Writer.__new__(Writer)
    writer.config = JournalConfig(batch_ms=batch_ms)
    writer.queue = queue.SimpleQueue()
    writer.last_commit = last_commit
    return writer


def _append(n: int) -> _Append:
    future: Any = None  # _gather never touches it
    return _Append([object()] * n, 0.0, future)  # type: ignore[list-item]


def test_after_a_quiet_spell_the_first_append_is_committed_without_waiting() -> None:
    writer = _writer(batch_ms=100, last_commit=time.monotonic() - 5.0)
    queued = _append(2)
    writer.queue.put(queued)  # already waiting: taken into the same commit
    started = time.monotonic()
    batch, count, job = writer._gather(_append(1))
    # Waiting for more would take the whole 100 ms: returning well before shows it did not.
    assert time.monotonic() - started < 0.05
    assert (len(batch), count, job) == (2, 3, None) and batch[1] is queued


def test_appends_coming_faster_than_batch_ms_are_gathered_into_one_commit() -> None:
    writer = _writer(batch_ms=100, last_commit=time.monotonic())  # a commit just ended
    late = _append(1)
    timer = threading.Timer(0.03, writer.queue.put, (late,))
    timer.start()
    batch, count, _ = writer._gather(_append(1))
    timer.join()
    # It waited for the append that came 30 ms later (within batch_ms) and took it along.
    assert (len(batch), count) == (2, 2) and batch[1] is late
