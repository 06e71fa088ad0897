"""Deliberately broken source plugins: the contract suite must name each of their problems."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from wallboard.kit.source import Emit, PollConfig, PollSource, PushSource, SourceConfig, SourceError


class BrokenConfig(SourceConfig):
    """One queue to report on."""

    queue: str


class BrokenSource(PushSource):
    """Blocks the event loop, emits events missing a field, and ignores cancellation."""

    type: ClassVar[str] = "broken"
    Config: ClassVar[type[SourceConfig]] = BrokenConfig

    async def run(self, emit: Emit) -> None:
        """Each of the three bugs on every turn."""
        assert isinstance(self.config, BrokenConfig)
        self.connected()
        turn = 0
        while True:
            try:
                turn += 1
                emit({"type": "contact.queued", "id": f"b{turn}", "ts": self.clock.time(),
                      "queue": self.config.queue})  # no contact_id: invalid
                time.sleep(0.12)  # blocks the whole server
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue  # swallows cancellation: the server can never stop it


class FragileConfig(PollConfig):
    """Where the queue summary is."""

    url: str


class FragileSource(PollSource):
    """Hides outages (never goes down) and crashes on a payload of the wrong shape."""

    type: ClassVar[str] = "fragile"
    Config: ClassVar[type[SourceConfig]] = FragileConfig

    async def poll(self) -> list[dict[str, Any]]:
        """Queue snapshots from the peer's summary."""
        assert isinstance(self.config, FragileConfig)
        try:
            payload = await self.get_json(self.config.url)
        except SourceError:
            return []  # the board never learns that the peer is gone
        return [{"type": "queue.snapshot", "ts": self.clock.time(), "queue": q["name"],
                 "waiting": q["waiting"]} for q in payload["queues"]]
