"""A scripted Asterisk Manager Interface peer on a real local socket, for the connector's tests.

It greets, answers Challenge/Login/QueueStatus/Ping by ActionID (rewriting the ActionID of
recorded answers to the client's), and sends recorded event blocks when told.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from pathlib import Path

from wallboard.kit.testing.peer import LoopbackServer

AMI_CAPTURES = Path(__file__).resolve().parent / "data" / "ami-panoramisk"
BANNER = "Asterisk Call Manager/9.0.0"


def blocks(text: str) -> list[str]:
    """The frames of a transcript (blank-line separated), without their line ends."""
    text = text.replace("\r\n", "\n")
    return [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]


def wire(frames: list[str], crlf: bool = True) -> bytes:
    """Frames as bytes on the wire: CRLF like Asterisk, or LF like the panoramisk captures."""
    end = "\r\n" if crlf else "\n"
    return "".join(f.replace("\n", end) + end + end for f in frames).encode()


def with_action_id(frame: str, action_id: str) -> str:
    """The frame with its ActionID line set to `action_id` (added when missing)."""
    lines = [ln for ln in frame.split("\n") if not ln.lower().startswith("actionid:")]
    return "\n".join([*lines, f"ActionID: {action_id}"])


def capture(name: str) -> str:
    """One of the panoramisk captures, as text."""
    return (AMI_CAPTURES / name).read_text()


class AmiPeer(LoopbackServer):
    """Listens on 127.0.0.1; each connection is a fresh AMI session with the current script."""

    def __init__(self, *, username: str = "wallboard", secret: str = "s3cret",
                 challenge: str = "911725589", snapshot: list[str] | None = None,
                 crlf: bool = True, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context)  # serve AMI over TLS (as on port 5039) with a context
        self.username, self.secret, self.challenge = username, secret, challenge
        self.snapshot = snapshot or []  # list items of QueueStatus (their ActionID is set)
        self.interleaved: list[str] = []  # async events sent inside the list response
        self.crlf = crlf
        self.login_reply: list[str] | None = None  # recorded frames answering a good Login
        self.refuse_status: str | None = None  # answer QueueStatus with this Error message
        self.silent = False  # read actions but answer none (e.g. a Ping after a cut frame)
        self.connections = 0
        self.logins = 0  # successful ones
        self.refused = 0
        self.actions: list[dict[str, str]] = []
        self.sessions: list[asyncio.StreamWriter] = []  # logged-in, snapshot sent
        self._tasks: set[asyncio.Task[None]] = set()

    def hang_up(self) -> None:
        """Cut the logged-in sessions, keep listening."""
        for writer in self.sessions:
            writer.transport.abort()
        self.sessions.clear()

    async def send(self, frames: list[str]) -> None:
        """Send event frames to every live session."""
        for writer in self.sessions:
            writer.write(wire(frames, self.crlf))
            await writer.drain()

    async def send_raw(self, data: bytes) -> None:
        """Send raw bytes to every live session."""
        for writer in self.sessions:
            writer.write(data)
            await writer.drain()

    async def _read_action(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        fields: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if not line:
                return None
            text = line.decode().rstrip("\r\n")
            if not text:
                if fields:
                    self.actions.append(fields)
                    return fields
                continue
            key, _, value = text.partition(": ")
            fields[key.lower()] = value

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(f"{BANNER}\r\n".encode())
        try:
            while (action := await self._read_action(reader)) is not None:
                if self.silent:
                    continue
                if not await self._answer(action, writer):
                    break
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            if writer in self.sessions:
                self.sessions.remove(writer)
            writer.transport.abort()

    def _reply(self, writer: asyncio.StreamWriter, frames: list[str]) -> None:
        writer.write(wire(frames, self.crlf))

    async def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        name, aid = action.get("action", "").lower(), action.get("actionid", "")
        if name == "challenge":
            self._reply(writer, [f"Response: Success\nActionID: {aid}\n"
                                 f"Challenge: {self.challenge}"])
        elif name == "login":
            good = action.get("username") == self.username and (
                action.get("secret") == self.secret if action.get("authtype", "").lower() != "md5"
                else action.get("key") == hashlib.md5(
                    (self.challenge + self.secret).encode()).hexdigest())
            if not good:  # as Asterisk: an Error, then the socket is closed
                self.refused += 1
                self._reply(writer, [f"Response: Error\nActionID: {aid}\n"
                                     "Message: Authentication failed"])
                await writer.drain()
                return False
            self.logins += 1
            if self.login_reply is not None:
                self._reply(writer, [with_action_id(f, aid) if f.startswith("Response:") else f
                                     for f in self.login_reply])
            else:
                self._reply(writer, [f"Response: Success\nActionID: {aid}\n"
                                     "Message: Authentication accepted",
                                     "Event: FullyBooted\nPrivilege: system,all\n"
                                     "Uptime: 2143\nLastReload: 2143\nStatus: Fully Booted"])
        elif name == "queuestatus" and self.refuse_status is not None:
            self._reply(writer, [f"Response: Error\nActionID: {aid}\n"
                                 f"Message: {self.refuse_status}"])
        elif name == "queuestatus":
            frames = [f"Response: Success\nActionID: {aid}\nEventList: start\n"
                      "Message: Queue status will follow"]
            items = [with_action_id(f, aid) for f in self.snapshot]
            # Async events land between the Response and the items, and between items.
            for i, item in enumerate(items):
                if i < len(self.interleaved):
                    frames.append(self.interleaved[i])
                frames.append(item)
            frames += self.interleaved[len(items):]
            frames.append(f"Event: QueueStatusComplete\nActionID: {aid}\n"
                          f"EventList: Complete\nListItems: {len(items)}")
            self._reply(writer, frames)
            self.sessions.append(writer)
        elif name == "ping":
            self._reply(writer, [f"Response: Success\nActionID: {aid}\nPing: Pong\n"
                                 "Timestamp: 1627089414.908005"])
        else:
            self._reply(writer, [f"Response: Error\nActionID: {aid}\n"
                                 "Message: Invalid/unknown command"])
        return True
