"""AMI wire protocol: banner, frame parsing, action encoding, MD5 login key, reader task."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable

BANNER_PREFIX = "Asterisk Call Manager/"
# A frame with more lines than this is not AMI (Asterisk itself caps inbound at 128 headers).
MAX_LINES_PER_FRAME = 4096
# Yield to the loop every this many frames, so a burst already in the buffer never hogs it.
FRAMES_PER_YIELD = 100


class ProtocolError(Exception):
    """The peer broke the AMI framing (or closed the connection)."""


class Message:
    """One AMI frame: the ordered (key, value) pairs and a case-insensitive first-value map."""

    __slots__ = ("_first", "pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._first: dict[str, str] = {}
        for key, value in pairs:
            self._first.setdefault(key.lower(), value)  # keys repeat (Variable:); first wins

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of `key` (case-insensitive), or `default`."""
        return self._first.get(key.lower(), default)

    def first(self, *keys: str) -> str | None:
        """The value of the first of `keys` present: one field under its spellings by version."""
        for key in keys:
            value = self._first.get(key.lower())
            if value is not None:
                return value
        return None

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._first

    @property
    def event(self) -> str | None:
        """The `Event` name, for events and list items."""
        return self._first.get("event")

    @property
    def response(self) -> str | None:
        """`Success`, `Error`, `Goodbye`, ... for responses."""
        return self._first.get("response")

    @property
    def action_id(self) -> str | None:
        """The echoed `ActionID`, if any."""
        return self._first.get("actionid")

    def __repr__(self) -> str:
        return f"Message({self.pairs!r})"


def parse_lines(lines: Iterable[str]) -> Message:
    """A frame from its lines; a line without ': ' keeps its text as key with an empty value."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        key, sep, value = line.partition(": ")
        if not sep:  # "AccountCode:" with nothing after, or a stray line in a capture
            key, value = line.rstrip(":"), ""
        pairs.append((key, value))
    return Message(pairs)


def encode_action(action: str, action_id: str, fields: dict[str, str] | None = None) -> bytes:
    """An action as wire bytes: `Action`, `ActionID`, then the fields, ended by a blank line."""
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for key, value in (fields or {}).items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"AMI field {key} must be one line")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def md5_key(challenge: str, secret: str) -> str:
    """The MD5 challenge login key: md5(challenge + secret) as 32 lower-case hex digits."""
    return hashlib.md5((challenge + secret).encode(), usedforsecurity=False).hexdigest()


def check_banner(line: bytes) -> str:
    """The AMI version from the greeting line; ProtocolError when it is not an AMI banner."""
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith(BANNER_PREFIX):
        shown = text[:60] or "nothing"
        raise ProtocolError(f"not an Asterisk Manager Interface: greeting was {shown!r}")
    return text[len(BANNER_PREFIX):]


class Closed:
    """Put on the frame queue when the stream ends; `reason` says how."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


async def read_frames(reader: asyncio.StreamReader,
                      frames: asyncio.Queue[Message | Closed]) -> None:
    """Parse frames onto `frames` until the stream ends; does nothing else, so never blocks.

    Asterisk drops a client that reads too slowly (`writetimeout`, 100 ms by default), so
    this task only reads and parses; handling happens in the consumer of the queue.
    """
    lines: list[str] = []
    count = 0
    try:
        while True:
            try:
                raw = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                frames.put_nowait(Closed("a line longer than the reader's limit"))
                return
            if not raw:
                reason = ("the peer closed the connection in the middle of a frame" if lines
                          else "the peer closed the connection")
                frames.put_nowait(Closed(reason))
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                lines.append(line)
                if len(lines) > MAX_LINES_PER_FRAME:
                    frames.put_nowait(Closed(f"a frame of over {MAX_LINES_PER_FRAME} lines"))
                    return
                continue
            if lines:
                frames.put_nowait(parse_lines(lines))
                lines = []
                count += 1
                if count % FRAMES_PER_YIELD == 0:
                    await asyncio.sleep(0)
    except (ConnectionError, OSError) as exc:
        frames.put_nowait(Closed(f"connection error: {exc}"))
