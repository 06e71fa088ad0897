"""A FreeSWITCH event-socket test peer on a real local socket, speaking ESL as documented."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wallboard.kit.testing.peer import LoopbackServer

MEMBER_COLUMNS = ("queue|instance_id|uuid|session_uuid|cid_number|cid_name|system_epoch|"
                  "joined_epoch|rejoined_epoch|bridge_epoch|abandoned_epoch|base_score|"
                  "skill_score|serving_agent|serving_system|state")
AGENT_COLUMNS = ("name|instance_id|uuid|type|contact|status|state|max_no_answer|wrap_up_time|"
                 "reject_delay_time|busy_delay_time|no_answer_delay_time|last_bridge_start|"
                 "last_bridge_end|last_offered_call|last_status_change|no_answer_count|"
                 "calls_answered|talk_time|ready_time")


def frame(headers: dict[str, str], body: bytes = b"") -> bytes:
    """One ESL frame: LF-terminated headers, a blank line, then the body if any."""
    if body:
        headers = {"Content-Length": str(len(body)), **headers}
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n" + body


def event_frame(fields: dict[str, Any]) -> bytes:
    """A text/event-json frame of a callcenter::info event."""
    body = {"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info",
            "Core-UUID": "2d5b3a5e-core", **{k: str(v) for k, v in fields.items()}}
    return frame({"Content-Type": "text/event-json"}, json.dumps(body).encode())


def member_row(queue: str, uuid: str, joined: float, state: str = "Waiting",
               bridge: float = 0, abandoned: float = 0, agent: str = "") -> str:
    """One row of `callcenter_config queue list members`."""
    return (f"{queue}|single_box|{uuid}|{uuid}-session|1001|Caller|{joined:.0f}|{joined:.0f}|0|"
            f"{bridge:.0f}|{abandoned:.0f}|0|0|{agent}|{'single_box' if agent else ''}|{state}")


def agent_row(name: str, status: str, state: str) -> str:
    """One row of `callcenter_config queue list agents`."""
    return f"{name}|single_box|{name}-uuid|callback|user/{name}|{status}|{state}|3|0|10|0|0|" \
        "0|0|0|0|0|0|0|0"


def table(columns: str, rows: list[str]) -> bytes:
    """A list answer: header row, rows, then +OK."""
    return ("\n".join([columns, *rows, "+OK"]) + "\n").encode()


class EslPeer(LoopbackServer):
    """Answers auth, `event json`, and `api callcenter_config ...` from `tables`; pushes events.

    `before_api` frames are sent just before the next api/response (events interleaved with
    replies). Every connection and command is recorded.
    """

    def __init__(self, password: str = "ClueCon") -> None:
        super().__init__()
        self.password = password
        self.tables: dict[str, bytes] = {}
        self.before_api: list[bytes] = []
        self.commands: list[str] = []
        self.connections = 0
        self.auth_failures = 0
        self._subscribed: set[asyncio.StreamWriter] = set()
        self.subscribed = asyncio.Event()

    def hang_up(self) -> None:
        """Cut open connections, keep listening."""
        super().hang_up()
        self._subscribed.clear()
        self.subscribed.clear()

    async def push(self, data: bytes) -> None:
        """Send raw bytes (an event frame, or part of one) to every subscribed client."""
        for writer in list(self._subscribed):
            writer.write(data)
            await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            writer.write(frame({"Content-Type": "auth/request"}))
            while True:
                command = (await reader.readuntil(b"\n\n")).decode().strip()
                self.commands.append(command)
                if not await self._answer(command, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._subscribed.discard(writer)
            writer.transport.abort()

    async def _answer(self, command: str, writer: asyncio.StreamWriter) -> bool:
        if command.startswith("auth "):
            if command[5:] != self.password:
                # As mod_event_socket does: refuse, say goodbye, hang up.
                self.auth_failures += 1
                writer.write(frame({"Content-Type": "command/reply",
                                    "Reply-Text": "-ERR invalid"}))
                writer.write(frame({"Content-Type": "text/disconnect-notice"},
                                   b"Disconnected, goodbye.\nSee you at ClueCon!\n"))
                await writer.drain()
                return False
            writer.write(frame({"Content-Type": "command/reply", "Reply-Text": "+OK accepted"}))
        elif command == "event json CUSTOM callcenter::info":
            writer.write(frame({"Content-Type": "command/reply",
                                "Reply-Text": "+OK event listener enabled json"}))
            self._subscribed.add(writer)
            self.subscribed.set()
        elif command.startswith("api "):
            for data in self.before_api:
                writer.write(data)
            self.before_api = []
            body = self.tables.get(command[4:], b"-ERR Unknown command\n")
            writer.write(frame({"Content-Type": "api/response"}, body))
        else:
            writer.write(frame({"Content-Type": "command/reply",
                                "Reply-Text": "-ERR command not found"}))
        return True
