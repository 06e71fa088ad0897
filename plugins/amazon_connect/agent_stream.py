"""The agent event stream: Amazon Connect agent events read from a Kinesis data stream.

Each shard is read with GetRecords from an iterator (LATEST or TRIM_HORIZON at the start,
AFTER_SEQUENCE_NUMBER of the last record read afterwards), each record one JSON agent event
(LOGIN, LOGOUT, STATE_CHANGE, HEART_BEAT) mapped to an `agent.state` whose id is the event's
EventId, so an event read twice is counted once. Every botocore call runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

from wallboard.kit import SourceError, parse_time

from .mapping import resource_id
from .realtime import ApiError, call, state_of

MAX_RECORDS = 1000  # records per GetRecords (Kinesis allows up to 10 000)
MAX_SHARD_PAGES = 100


class AgentEventMapper:
    """Agent event stream records to agent.state events."""

    def __init__(self, agents: Mapping[str, str], queues: Mapping[str, str],
                 statuses: Mapping[str, str], unknown_status: str) -> None:
        self.agents, self.queues = agents, queues
        self.statuses, self.unknown_status = statuses, unknown_status
        # Records that were not a usable agent event, by reason (the source's `skipped`).
        self.skipped: Counter[str] = Counter()

    def map(self, data: bytes) -> dict[str, Any] | None:
        """The agent.state of one record; None for a heartbeat or a record it cannot use."""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.skipped["not_json"] += 1  # not an agent event: the stream goes on
            return None
        if not isinstance(event, dict):
            self.skipped["bad_agent_event"] += 1
            return None
        if event.get("EventType") not in ("LOGIN", "LOGOUT", "STATE_CHANGE"):
            return None  # HEART_BEAT (every two minutes per agent) and kinds not mapped
        arn, event_id = event.get("AgentARN"), event.get("EventId")
        ts = parse_time(event.get("EventTimestamp"))
        if not isinstance(arn, str) or not arn or not isinstance(event_id, str) or ts is None:
            self.skipped["bad_agent_event"] += 1
            return None
        user_id = resource_id(arn, "agent")
        out: dict[str, Any] = {"type": "agent.state", "id": event_id[:128], "ts": ts,
                               "agent": self.agents.get(user_id, user_id)}
        snapshot = event.get("CurrentAgentSnapshot")
        snapshot = snapshot if isinstance(snapshot, dict) else {}
        status = snapshot.get("AgentStatus")
        name = str(status.get("Name") or "") if isinstance(status, dict) else ""
        if event["EventType"] == "LOGOUT":
            out["state"] = "offline"
            return out
        contacts = {c.get("State") for c in snapshot.get("Contacts") or []
                    if isinstance(c, dict)}
        out["state"] = state_of(name, contacts, self.statuses, self.unknown_status)
        if out["state"] == "away" and name:
            out["reason"] = name[:128]
        queues = self._queues(snapshot)
        if queues:
            out["queues"] = queues
        return out

    def _queues(self, snapshot: Mapping[str, Any]) -> list[str]:
        """The configured board queues of the agent's routing profile."""
        config = snapshot.get("Configuration")
        profile = config.get("RoutingProfile") if isinstance(config, dict) else None
        inbound = profile.get("InboundQueues") if isinstance(profile, dict) else None
        found: dict[str, None] = {}
        for queue in inbound if isinstance(inbound, list) else []:
            arn = queue.get("ARN") if isinstance(queue, dict) else None
            if isinstance(arn, str) and resource_id(arn, "queue") in self.queues:
                found[self.queues[resource_id(arn, "queue")]] = None
        return list(found)


class AgentStream:
    """Reads every shard of one stream; remembers where each shard was read up to."""

    def __init__(self, stream_name: str, start: str, mapper: AgentEventMapper) -> None:
        self.stream_name, self.start, self.mapper = stream_name, start, mapper
        self.sequence: dict[str, str] = {}  # shard id -> last sequence number read
        self.iterators: dict[str, str] = {}  # shard id -> the next iterator
        self.closed: set[str] = set()  # shards read to their end (resharded)
        self.listed = False  # False: list the shards before the next read
        self.started = False  # True once the shards were first listed

    async def _shards(self, client: Any) -> list[str]:
        """Every shard id of the stream, following NextToken."""
        shards: list[str] = []
        params: dict[str, Any] = {"StreamName": self.stream_name}
        for _ in range(MAX_SHARD_PAGES):
            page = await asyncio.to_thread(call, client, "list_shards", params)
            items = page.get("Shards")
            if not isinstance(items, list):
                raise SourceError("ListShards: the response has no Shards list")
            shards += [s["ShardId"] for s in items
                       if isinstance(s, dict) and isinstance(s.get("ShardId"), str)]
            token = page.get("NextToken")
            if not isinstance(token, str) or not token:
                return shards
            params = {"NextToken": token}  # with a token, ListShards takes no stream name
        raise SourceError(f"ListShards: more than {MAX_SHARD_PAGES} pages")

    async def _iterator(self, client: Any, shard: str, first: bool) -> str:
        """A shard's iterator: after the last record read, else `start` (new shards: the start)."""
        params: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard}
        if shard in self.sequence:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                          StartingSequenceNumber=self.sequence[shard])
        else:
            # A shard found after the first listing is a child of a resharding: from its start.
            params["ShardIteratorType"] = self.start if first else "TRIM_HORIZON"
        page = await asyncio.to_thread(call, client, "get_shard_iterator", params)
        iterator = page.get("ShardIterator")
        if not isinstance(iterator, str) or not iterator:
            raise SourceError("GetShardIterator: the response has no ShardIterator")
        return iterator

    async def read(self, client: Any) -> list[dict[str, Any]]:
        """The agent.state events of the records added since the previous read."""
        if not self.listed:
            for shard in await self._shards(client):
                if shard not in self.iterators and shard not in self.closed:
                    self.iterators[shard] = await self._iterator(client, shard,
                                                                 first=not self.started)
            self.listed = self.started = True
        events: list[dict[str, Any]] = []
        for shard in list(self.iterators):
            events += await self._read_shard(client, shard)
        return events

    async def _read_shard(self, client: Any, shard: str) -> list[dict[str, Any]]:
        """One GetRecords of a shard: its events, and where it goes on (or that it closed)."""
        params = {"ShardIterator": self.iterators[shard], "Limit": MAX_RECORDS}
        try:
            page = await asyncio.to_thread(call, client, "get_records", params)
        except ApiError as exc:
            if exc.code != "ExpiredIteratorException":
                raise
            # Iterators last five minutes: a new one from where this shard was read up to.
            self.iterators[shard] = await self._iterator(client, shard, first=False)
            return []
        records = page.get("Records")
        if not isinstance(records, list):
            raise SourceError("GetRecords: the response has no Records list")
        events = []
        for record in records:
            data = record.get("Data") if isinstance(record, dict) else None
            if isinstance(data, bytes) and (event := self.mapper.map(data)) is not None:
                events.append(event)
            sequence = record.get("SequenceNumber") if isinstance(record, dict) else None
            if isinstance(sequence, str):
                self.sequence[shard] = sequence
        following = page.get("NextShardIterator")
        if isinstance(following, str) and following:
            self.iterators[shard] = following
        else:  # the shard was closed by a resharding: its children are listed next time
            del self.iterators[shard]
            self.closed.add(shard)
            self.listed = False
        return events
