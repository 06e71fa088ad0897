"""The asterisk_queue_log push source: tails Asterisk's queue_log, from a saved position."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from wallboard.kit import (
    Emit,
    PushSource,
    SourceConfig,
    SourceError,
    load_state_file,
    save_state_file,
)

from .mapping import Agent, BadLine, Mapper, parse_line
from .tail import Follower, Position

log = logging.getLogger(__name__)
SAVE_EVERY_S = 1.0  # the saved position lags the read one by one to two of these
YIELD_EVERY = 200  # lines mapped and emitted between two yields to the event loop


class AsteriskQueueLogConfig(SourceConfig):
    """Which file, where its position is saved, and which queues to show."""

    path: str = Field(min_length=1)  # e.g. /var/log/asterisk/queue_log
    state_dir: str = Field(min_length=1)  # the position (and agents) survive restarts here
    # Asterisk queue name -> board queue name; with only_mapped_queues, others are ignored.
    queues: dict[str, str] = Field(default_factory=dict)
    only_mapped_queues: bool = False
    # The first start (no saved position) reads from local midnight in this zone (use the
    # site's); "beginning" reads the whole file.
    first_start: Literal["today", "beginning"] = "today"
    timezone: str = "UTC"
    poll_interval_s: float = Field(0.5, gt=0, le=60)
    # False beside asterisk_ami: its member events are the live view of agents.
    agent_states: bool = True
    # A renamed file is read a while longer: Asterisk writes to it until `logger reload`.
    rotate_grace_s: float = Field(10.0, ge=0, le=3600)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value[:60]!r} (an IANA name such as "
                             "Europe/Berlin)") from None
        return value


class AsteriskQueueLogSource(PushSource[AsteriskQueueLogConfig]):
    """Asterisk's queue_log, followed across rotations and restarts."""

    type: ClassVar[str] = "asterisk_queue_log"

    def __init__(self, name: str, config: AsteriskQueueLogConfig) -> None:
        super().__init__(name, config)
        self.cfg = config
        self.mapper = Mapper(self._queue_name, self.skipped)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.state_path = Path(config.state_dir) / f"asterisk_queue_log-{safe}.json"
        self.follower: Follower | None = None  # made from the saved state on the first run
        self.since: float | None = None  # lines before this feed the agents only
        self._pending: dict[str, Any] | None = None  # the state to save at the next turn
        self._saved_at = -SAVE_EVERY_S

    def _queue_name(self, raw: str) -> str | None:
        mapped = self.cfg.queues.get(raw)
        if mapped is None and self.cfg.only_mapped_queues:
            return None
        return mapped or raw

    async def _restore(self) -> Follower:
        state = await asyncio.to_thread(load_state_file, self.state_path)
        position = Position.from_json(state.get("position"))
        agents = state.get("agents")
        if isinstance(agents, dict):
            self.mapper.agents = {name: Agent.from_json(data) for name, data in agents.items()
                                  if isinstance(name, str)}
        if position is None and self.cfg.first_start == "today":
            zone = ZoneInfo(self.cfg.timezone)
            midnight = datetime.fromtimestamp(self.clock.time(), zone).replace(
                hour=0, minute=0, second=0, microsecond=0)
            self.since = midnight.timestamp()
        return Follower(Path(self.cfg.path), position, self.cfg.rotate_grace_s)

    def _state(self) -> dict[str, Any]:
        assert self.follower is not None
        position = self.follower.position
        return {"position": position.to_json() if position is not None else None,
                "agents": {name: agent.to_json() for name, agent in self.mapper.agents.items()}}

    async def _save(self, state: dict[str, Any]) -> None:
        await save_state_file(self.state_path, json.dumps(state, sort_keys=True))

    async def run(self, emit: Emit) -> None:
        """Read new lines every poll_interval_s and emit their events; save the position."""
        if self.follower is None:
            self.follower = await self._restore()
        if not Path(self.cfg.path).exists() and self.follower.position is None:
            raise SourceError(f"{self.cfg.path}: no such file (is queue_log written there? "
                              "the source reads it once it exists)")
        self.connected()
        try:
            while True:
                try:
                    lines = await asyncio.to_thread(self.follower.read,
                                                    self.clock.monotonic())
                except OSError as exc:
                    raise SourceError(f"{self.cfg.path}: cannot read: {exc}") from None
                await self._emit_lines(emit, lines)
                if self.since is not None and not self.follower.behind:
                    self._announce(emit)  # the first start has read up to now
                await self._checkpoint()
                # A backlog (a first start, a long downtime) is read slice after slice.
                await self.clock.sleep(0 if self.follower.behind else self.cfg.poll_interval_s)
        finally:
            with contextlib.suppress(Exception):  # best effort: lines read again are deduplicated
                if self._pending is not None:
                    await self._save(self._pending)

    async def _emit_lines(self, emit: Emit, lines: list[bytes]) -> None:
        for n, raw in enumerate(lines, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a backlog of a day must not hold the event loop
            if not raw.strip():
                continue
            try:
                line = parse_line(raw)
            except BadLine as exc:
                self.skipped["bad_line"] += 1
                bad = self.skipped["bad_line"]
                if bad == 1 or bad % 1000 == 0:
                    log.warning("%s: %s: a line that is not queue_log's shape (%s; %d so far)",
                                self.name, self.cfg.path, exc, bad)
                continue
            if self.since is not None:
                if line.ts < self.since:
                    self.mapper.handle(line)  # before today on a first start: agents only
                    continue
                self._announce(emit)  # the first line of today: the agents before it
            for event in self.mapper.handle(line):
                if self.cfg.agent_states or event["type"] != "agent.state":
                    emit(event)

    def _announce(self, emit: Emit) -> None:
        """On a first start, at today's first line (or once caught up): every agent the lines
        before today told of, in its state at midnight (later lines only tell changes)."""
        since, self.since = self.since, None
        assert since is not None
        for name, agent in sorted(self.mapper.agents.items()):
            state, queues, reason = agent.state()
            if state == "offline":
                continue
            digest = hashlib.blake2b(f"{name}|{since}".encode(), digest_size=10).hexdigest()
            event: dict[str, Any] = {"type": "agent.state", "id": f"ql-start-{digest}",
                                     "ts": since, "agent": name, "state": state,
                                     "queues": list(queues)}
            if reason:
                event["reason"] = reason
            if self.cfg.agent_states:
                emit(event)

    async def _checkpoint(self) -> None:
        """Save the state taken one turn ago: its lines' events are in the journal by now
        (a line read again after a crash is stored once: every event has an id)."""
        now = self.clock.monotonic()
        if now - self._saved_at < SAVE_EVERY_S:
            return
        if self._pending is not None:
            await self._save(self._pending)
        self._pending, self._saved_at = self._state(), now
