"""When checkpoints are taken and loaded: at start (the newest fit one), periodically, at exit.

Taking one pickles the state on the event loop, between two folds, so the state and the
journal position it covers match exactly; hashing and writing happen off the loop (a thread,
then the journal's writer thread or its Redis client).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wallboard.ingest import checkpoint
from wallboard.ingest.checkpoint import CheckpointError, Header
from wallboard.ingest.pipeline import Pipeline
from wallboard.ingest.restore import replay_start
from wallboard.journal.interface import Journal, JournalError
from wallboard.kpi.history import History

log = logging.getLogger(__name__)
LOAD_RESULTS = ("loaded", "missing", "corrupt", "version", "fingerprint", "stale", "unreadable")


@dataclass
class CheckpointStats:
    """What /metrics says about checkpoints."""

    loads: Counter[str] = field(default_factory=Counter)  # by result (LOAD_RESULTS)
    loaded_at: float | None = None  # the wall time of the one loaded at start
    loaded_age_s: float | None = None  # its age when it was loaded
    saves: int = 0
    save_failures: int = 0
    last_at: float | None = None  # the wall time of the newest one written
    last_bytes: int = 0
    last_pause_s: float = 0.0  # the loop's pause while the newest was taken
    max_pause_s: float = 0.0


class Checkpointer:
    """Loads the newest fit checkpoint into a fresh pipeline; writes new ones."""

    def __init__(self, journal: Journal, pipeline: Pipeline, history: History | None) -> None:
        self.journal, self.pipeline, self.history = journal, pipeline, history
        self.settings = pipeline.aggregator.settings
        self.fingerprint = checkpoint.fingerprint(self.settings)
        self.stats = CheckpointStats()
        self._skipping = False  # logged once

    def load(self, since: float, now: float) -> Header | None:
        """Apply the newest checkpoint fit for a start at `now` (state since `since`), or None.

        Each one passed over is logged with its reason and counted; None means a full fold.
        """
        try:
            stored = self.journal.checkpoints()
        except JournalError as exc:
            self._refuse("unreadable", "?", str(exc))
            return None
        if not stored:
            self.stats.loads["missing"] += 1
            log.info("journal: no checkpoint: folding everything since the earliest window")
            return None
        for position, blob in stored:
            try:
                header, body = checkpoint.unframe(blob)
                if header.fingerprint != self.fingerprint:
                    raise CheckpointError("fingerprint", "written with other windows, queues, "
                                          "site or limits")
                if header.position != position:
                    raise CheckpointError("corrupt", f"stored at {position}, covers "
                                          f"{header.position}")
                if not since <= header.at <= now:
                    # Older than the earliest window: a full fold reads less than its tail.
                    raise CheckpointError("stale", f"taken at {_iso(header.at)}, before "
                                          f"{_iso(since)} or after now")
                checkpoint.apply(body, self.pipeline, self.history)
            except CheckpointError as exc:
                self._refuse(exc.reason, position, str(exc))
                continue
            self.stats.loads["loaded"] += 1
            self.stats.loaded_at, self.stats.loaded_age_s = header.at, now - header.at
            log.info("journal: loaded the checkpoint at position %s taken %s (%.0fs ago)",
                     position, _iso(header.at), now - header.at)
            return header
        log.warning("journal: no usable checkpoint: folding everything since the earliest "
                    "window")
        return None

    def _refuse(self, reason: str, position: str, detail: str) -> None:
        self.stats.loads[reason] += 1
        log.warning("journal: checkpoint at position %s not used: %s", position, detail)

    def position(self) -> str | None:
        """The journal position the state covers now (the loop's view, between folds)."""
        if self.journal.replicated:
            return self.journal.position  # the last stream entry the tail delivered
        return self.pipeline.position

    def consistent(self, now: float) -> bool:
        """False while the state holds events the journal lacks, within some window."""
        unstored = self.pipeline.unstored_at
        if unstored is None or unstored < replay_start(self.settings, now):
            return True
        if not self._skipping:
            self._skipping = True
            log.warning("journal: no checkpoint while the board holds events folded unstored "
                        "(the journal was down): a start folds the journal instead")
        return False

    async def save(self) -> bool:
        """Take a checkpoint now and write it; False (logged, counted) when it failed."""
        position = self.position()
        at = self.pipeline.aggregator.clock()
        if position is None or not self.consistent(at):
            return False
        started = time.perf_counter()
        try:
            body = checkpoint.take(self.pipeline, self.history)
        except Exception as exc:  # a state that will not pickle is a bug: counted, logged
            self.stats.save_failures += 1
            log.exception("journal: checkpoint not taken: %r", exc)
            return False
        pause = time.perf_counter() - started
        self.stats.last_pause_s, self.stats.max_pause_s = pause, max(self.stats.max_pause_s,
                                                                    pause)
        blob = await asyncio.to_thread(checkpoint.frame, body, self.fingerprint, at, position)
        try:
            await self.journal.save_checkpoint(position, blob)
        except Exception as exc:  # the store's own error, or down: the next one may succeed
            self.stats.save_failures += 1
            log.warning("journal: checkpoint at position %s not written: %s", position, exc)
            return False
        self.stats.saves += 1
        self.stats.last_at, self.stats.last_bytes = at, len(blob)
        log.debug("journal: checkpoint at position %s: %s bytes, the loop paused %.1f ms",
                  position, f"{len(blob):,}", pause * 1000)
        return True

    async def run_forever(self) -> None:
        """A checkpoint every journal.checkpoint_every_s."""
        while True:
            await asyncio.sleep(self.settings.journal.checkpoint_every_s)
            try:
                await self.save()
            except Exception:  # a bug here must not end the checkpoints of this process
                self.stats.save_failures += 1
                log.exception("journal: checkpoint failed")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
