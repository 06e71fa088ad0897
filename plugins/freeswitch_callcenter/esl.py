"""FreeSWITCH event socket (ESL, inbound): LF framing, auth, commands, api replies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from wallboard.kit import SourceError

# A body bigger than this is not an ESL frame we asked for; refuse it instead of buffering.
MAX_BODY = 16 * 1024 * 1024
AUTH_REQUEST, COMMAND_REPLY = "auth/request", "command/reply"
API_RESPONSE, EVENT_JSON = "api/response", "text/event-json"
DISCONNECT = "text/disconnect-notice"


@dataclass
class Frame:
    """One ESL frame: its header block and its body (empty without Content-Length)."""

    headers: dict[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """The frame's Content-Type header, or ''."""
        return self.headers.get("Content-Type", "")


@dataclass
class EslConnection:
    """An authenticated ESL connection; events read while awaiting a reply wait in `pending`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    where: str
    reply_timeout_s: float = 10.0
    pending: list[Frame] = field(default_factory=list)

    async def read_frame(self) -> Frame:
        """The next frame; SourceError on EOF (also mid-frame) or a malformed header block."""
        headers: dict[str, str] = {}
        while True:
            try:
                line = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                cut = " mid-frame" if exc.partial or headers else ""
                raise SourceError(f"{self.where} closed the connection{cut}") from None
            except asyncio.LimitOverrunError:
                raise SourceError(f"{self.where}: header line too long") from None
            text = line.rstrip(b"\r\n")
            if not text:
                if headers:
                    break
                continue  # stray blank lines between frames carry nothing
            name, sep, value = text.decode("utf-8", "replace").partition(":")
            if not sep or not name.strip():
                raise SourceError(f"{self.where}: malformed ESL header line {text[:60]!r}")
            headers[name.strip()] = value.strip()
        body = b""
        if "Content-Length" in headers:
            try:
                length = int(headers["Content-Length"])
            except ValueError:
                raise SourceError(f"{self.where}: bad Content-Length "
                                  f"{headers['Content-Length'][:20]!r}") from None
            if not 0 <= length <= MAX_BODY:
                raise SourceError(f"{self.where}: Content-Length {length} out of range")
            try:
                body = await self.reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise SourceError(f"{self.where} closed the connection mid-frame "
                                  f"({length}-byte body cut short)") from None
        frame = Frame(headers, body)
        if frame.content_type == DISCONNECT:
            raise SourceError(f"{self.where} is closing the connection (disconnect notice)")
        return frame

    async def send(self, command: str) -> None:
        """Write one command (LF framing: the command line, then a blank line)."""
        self.writer.write(command.encode() + b"\n\n")
        await self.writer.drain()

    async def expect(self, content_type: str, what: str) -> Frame:
        """Read until a frame of `content_type`; event frames met on the way are kept."""
        try:
            async with asyncio.timeout(self.reply_timeout_s):
                while True:
                    frame = await self.read_frame()
                    if frame.content_type == content_type:
                        return frame
                    if frame.content_type == EVENT_JSON:
                        self.pending.append(frame)  # an event interleaved with our reply
                    # Anything else (e.g. a stray command/reply) answers nothing we wait for.
        except TimeoutError:
            raise SourceError(f"{self.where}: no {content_type} for {what} within "
                              f"{self.reply_timeout_s:g}s") from None

    async def command(self, command: str) -> str:
        """Send a command and return its Reply-Text; SourceError unless it starts with +OK."""
        await self.send(command)
        frame = await self.expect(COMMAND_REPLY, command.split(" ", 1)[0])
        reply = frame.headers.get("Reply-Text", "")
        if not reply.startswith("+OK"):
            raise SourceError(f"{self.where}: {command.split(' ', 1)[0]!r} refused: "
                              f"{reply or 'no Reply-Text'}")
        return reply

    async def api(self, command: str) -> str:
        """Run `api <command>` and return the response body as text."""
        await self.send(f"api {command}")
        frame = await self.expect(API_RESPONSE, f"api {command}")
        return frame.body.decode("utf-8", "replace")

    async def next_event(self) -> Frame:
        """The next event frame, first those that arrived while we awaited replies."""
        if self.pending:
            return self.pending.pop(0)
        while True:
            frame = await self.read_frame()
            if frame.content_type == EVENT_JSON:
                return frame

    def close(self) -> None:
        """Close the socket (no goodbye: the server drops our listeners with it)."""
        self.writer.close()


async def connect(host: str, port: int, password: str, *, timeout_s: float = 10.0
                  ) -> EslConnection:
    """Connect, authenticate, and return the connection; every failure is a SourceError."""
    where = f"FreeSWITCH {host}:{port}"
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        raise SourceError(f"cannot connect to {where}: {exc or 'timed out'}") from None
    conn = EslConnection(reader, writer, where, timeout_s)
    try:
        await conn.expect(AUTH_REQUEST, "the auth request")
        await conn.send(f"auth {password}")
        reply = (await conn.expect(COMMAND_REPLY, "auth")).headers.get("Reply-Text", "")
        if not reply.startswith("+OK"):
            # Say which setting to fix; never echo the password itself.
            raise SourceError(f"{where}: authentication failed ({reply or 'no reply'}); "
                              "check the source's 'password'")
    except BaseException:
        conn.close()
        raise
    return conn


def parse_table(text: str, what: str) -> list[dict[str, str]]:
    """Rows of a `callcenter_config ... list` answer (header row, pipe-separated, then +OK)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("-ERR"):
        raise SourceError(f"{what}: {lines[0][:200]}")
    rows: list[dict[str, str]] = []
    columns: list[str] | None = None
    for line in lines:
        if line.startswith("+OK"):
            break
        cells = line.split("|")
        if columns is None:
            columns = cells
            continue
        if len(cells) == len(columns):  # a cell holding '|' cannot be split back: skip it
            rows.append(dict(zip(columns, cells, strict=True)))
    return rows
