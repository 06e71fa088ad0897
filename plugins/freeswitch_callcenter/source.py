"""The `freeswitch_callcenter` push source: mod_callcenter events over one ESL connection."""

from __future__ import annotations

import logging
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import Field, Secret, field_validator

from wallboard.kit import Emit, PushSource, SourceConfig

from .esl import EslConnection, connect, parse_table
from .mapping import Mirror

log = logging.getLogger(__name__)
SUBSCRIBE = "event json CUSTOM callcenter::info"


class FreeswitchCallcenterConfig(SourceConfig):
    """Where FreeSWITCH's event socket is, its password, and the queues to follow."""

    host: str = Field(min_length=1)
    port: int = Field(8021, ge=1, le=65535)
    password: Secret[Annotated[str, Field(min_length=1)]]
    # mod_callcenter queue names (e.g. "support@default"); empty: every queue it lists.
    queues: list[str] = Field(default_factory=list)
    # mod_callcenter queue name -> wallboard queue name; unlisted queues keep their name.
    queue_names: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(10.0, gt=0, le=300)  # connect and each command reply

    @field_validator("queues")
    @classmethod
    def _no_blank_queue(cls, value: list[str]) -> list[str]:
        if any(not name.strip() or "\n" in name for name in value):
            raise ValueError("queue names must be non-empty single-line text")
        return value


class FreeswitchCallcenterSource(PushSource[FreeswitchCallcenterConfig]):
    """Subscribes to callcenter::info, states the queues from their lists, then follows events."""

    type: ClassVar[str] = "freeswitch_callcenter"

    def __init__(self, name: str, config: FreeswitchCallcenterConfig) -> None:
        super().__init__(name, config)
        self.settings = config
        self.mirror = Mirror(rename=dict(config.queue_names))

    async def run(self, emit: Emit) -> None:
        """One ESL session: auth, subscribe, snapshot, then events until the socket ends."""
        cfg = self.settings
        conn = await connect(cfg.host, cfg.port, cfg.password.get_secret_value(),
                             timeout_s=cfg.timeout_s)
        try:
            # Subscribe before listing, so nothing happening between the lists and the first
            # event is lost; events read meanwhile wait in conn.pending and apply afterwards.
            await conn.command(SUBSCRIBE)
            for event in await self._snapshot(conn):
                emit(event)
            self.connected()
            while True:
                frame = await conn.next_event()
                for event in self._map(frame.body):
                    emit(event)
        finally:
            conn.close()

    async def _snapshot(self, conn: EslConnection) -> list[dict[str, Any]]:
        """The events stating every followed queue's members and agents right now."""
        queues = list(self.settings.queues)
        if not queues:
            rows = parse_table(await conn.api("callcenter_config queue list"),
                               "callcenter_config queue list")
            queues = [row["name"] for row in rows if row.get("name")]
        members: dict[str, list[dict[str, str]]] = {}
        agents: dict[str, list[dict[str, str]]] = {}
        for queue in queues:
            command = f"callcenter_config queue list members {queue}"
            members[queue] = parse_table(await conn.api(command), command)
            command = f"callcenter_config queue list agents {queue}"
            agents[queue] = parse_table(await conn.api(command), command)
        return self.mirror.rebuild(members, agents, self.clock.time())

    def _map(self, body: bytes) -> list[dict[str, Any]]:
        """Canonical events of one event-json body; a body we cannot read is skipped."""
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            log.warning("source %s: skipped an event body that is not JSON", self.name)
            return []
        if not isinstance(event, dict) or event.get("Event-Subclass") != "callcenter::info":
            return []
        return self.mirror.apply(event, self.clock.time())

