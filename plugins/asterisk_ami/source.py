"""The asterisk_ami push source: login, QueueStatus snapshot, then live queue events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
from collections import deque
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, Secret

from wallboard.kit import Emit, PushSource, SourceConfig, SourceError

from .mapping import Mapper
from .protocol import (
    Closed,
    Message,
    ProtocolError,
    check_banner,
    encode_action,
    md5_key,
    read_frames,
)


class AsteriskAmiConfig(SourceConfig):
    """Where the manager interface is, how to log in, and which queues to show."""

    host: str = Field(min_length=1)
    port: int = Field(5038, ge=1, le=65535)
    tls: bool = False
    tls_verify: bool = True  # a self-signed PBX certificate needs tls_verify: false
    username: str = Field(min_length=1)
    secret: Secret[Annotated[str, Field(min_length=1)]]
    auth: Literal["plain", "md5"] = "plain"
    # Asterisk queue name -> board queue name; with only_mapped_queues, others are ignored.
    queues: dict[str, str] = Field(default_factory=dict)
    only_mapped_queues: bool = False
    # Where contact.queued's entered_ts (call start, IVR included) comes from, if anywhere.
    entered_from: Literal["none", "uniqueid", "linkedid"] = "none"
    connect_timeout_s: float = Field(10.0, gt=0)
    response_timeout_s: float = Field(15.0, gt=0)
    ping_interval_s: float = Field(20.0, gt=0)
    # A refused login is retried no sooner than this: a wrong secret will not fix itself.
    auth_retry_s: float = Field(60.0, ge=0)


class LoginFailed(SourceError):
    """The PBX refused the username or secret."""


class Connection:
    """One AMI session: a reader task fills a queue; the owner pumps it and routes by ActionID."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout_s: float) -> None:
        self.writer = writer
        self.timeout_s = timeout_s
        self.frames: asyncio.Queue[Message | Closed] = asyncio.Queue()
        self.reader_task = asyncio.create_task(read_frames(reader, self.frames),
                                               name="ami-reader")
        self.pending: dict[str, asyncio.Future[Message]] = {}
        self.lists: dict[str, list[Message]] = {}
        self.events: deque[Message] = deque()  # async events not yet handled (the buffer)
        self._ids = itertools.count(1)  # deterministic ids: wallboard-1, -2, ...

    def next_id(self) -> str:
        """A fresh ActionID."""
        return f"wallboard-{next(self._ids)}"

    def send(self, action: str, fields: dict[str, str] | None = None,
             ) -> tuple[str, asyncio.Future[Message]]:
        """Write an action; returns its ActionID and the future of its response."""
        action_id = self.next_id()
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.pending[action_id] = future
        self.writer.write(encode_action(action, action_id, fields))
        return action_id, future

    async def pump(self) -> None:
        """Route one frame: responses and list items to their action, events to the buffer."""
        item = await self.frames.get()
        if isinstance(item, Closed):
            self.frames.put_nowait(item)  # every later pump sees the end too
            raise SourceError(item.reason)
        aid = item.action_id
        if aid is not None and aid in self.lists and item.event is not None:
            self.lists[aid].append(item)  # a list item (QueueMember, QueueEntry, ...Complete)
        elif aid is not None and aid in self.pending and item.response is not None:
            future = self.pending.pop(aid)
            if not future.done():
                future.set_result(item)
        elif item.event is not None:
            # Asynchronous events carry no ActionID, except a few (UserEvent echoes one); list
            # items of an answer we stopped waiting for are ignored by the mapping.
            self.events.append(item)
        # Anything else (answers to actions we no longer wait for, echoes in captures) is noise.

    async def request(self, action: str, fields: dict[str, str] | None = None) -> Message:
        """Send an action and pump frames until its response arrives."""
        _, future = self.send(action, fields)
        async with asyncio.timeout(self.timeout_s):
            while not future.done():
                await self.pump()
        return future.result()

    async def list_action(self, action: str, complete: str) -> list[Message]:
        """A list action (e.g. QueueStatus): its items, once the `complete` event arrived."""
        action_id, future = self.send(action)
        items = self.lists[action_id] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                while not (items and items[-1].event == complete):
                    await self.pump()
                    if future.done() and future.result().response != "Success":
                        message = future.result().get("Message") or "no message"
                        raise SourceError(f"{action} refused: {message}")
        finally:
            del self.lists[action_id]
            self.pending.pop(action_id, None)
        return items[:-1]

    async def next_event(self) -> Message:
        """The next asynchronous event, buffered ones first."""
        while not self.events:
            await self.pump()
        return self.events.popleft()

    async def close(self) -> None:
        """Stop reading and close the socket."""
        self.reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader_task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def enable_keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive: a PBX that vanishes without a FIN is noticed by the OS as well."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class AsteriskAmiSource(PushSource[AsteriskAmiConfig]):
    """Asterisk queues over the Manager Interface; the runtime reconnects with back-off."""

    type: ClassVar[str] = "asterisk_ami"

    def __init__(self, name: str, config: AsteriskAmiConfig) -> None:
        super().__init__(name, config)
        self.cfg = config
        # The model outlives connections: a reconnect's snapshot is compared with it.
        self.mapper = Mapper(self._queue_name, config.entered_from)
        self.version: str | None = None

    def _queue_name(self, raw: str) -> str | None:
        mapped = self.cfg.queues.get(raw)
        if mapped is None and self.cfg.only_mapped_queues:
            return None
        return mapped or raw

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        cfg = self.cfg
        context: ssl.SSLContext | None = None
        if cfg.tls:
            context = ssl.create_default_context()
            if not cfg.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        where = f"{cfg.host}:{cfg.port}"
        try:
            async with asyncio.timeout(cfg.connect_timeout_s):
                reader, writer = await asyncio.open_connection(cfg.host, cfg.port, ssl=context)
                banner = await reader.readline()  # one line, no blank line after it
        except TimeoutError:
            raise SourceError(f"AMI {where}: no connection or greeting within "
                              f"{cfg.connect_timeout_s:g}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"AMI {where}: cannot connect: {exc}") from None
        try:
            self.version = check_banner(banner)
        except ProtocolError as exc:
            writer.close()
            raise SourceError(f"AMI {where}: {exc}") from None
        enable_keepalive(writer)
        return reader, writer

    async def _login(self, conn: Connection) -> None:
        cfg = self.cfg
        fields = {"Username": cfg.username, "Events": "agent,system"}
        if cfg.auth == "md5":
            challenge = await conn.request("Challenge", {"AuthType": "MD5"})
            token = challenge.get("Challenge")
            if challenge.response != "Success" or not token:
                raise SourceError(f"AMI {cfg.host}:{cfg.port}: MD5 challenge refused: "
                                  f"{challenge.get('Message') or 'no challenge given'}")
            fields.update({"AuthType": "MD5", "Key": md5_key(token, cfg.secret.get_secret_value())})
        else:
            fields["Secret"] = cfg.secret.get_secret_value()
        answer = await conn.request("Login", fields)
        if answer.response != "Success":
            message = answer.get("Message") or "login refused"
            raise LoginFailed(f"AMI {cfg.host}:{cfg.port}: login as {cfg.username!r} refused: "
                              f"{message} (check username and secret)",
                              retry_after_s=cfg.auth_retry_s)

    async def _ping(self, conn: Connection) -> None:
        """Ping every interval; an unanswered Ping closes the connection (then reconnect)."""
        while True:
            await self.clock.sleep(self.cfg.ping_interval_s)
            _, future = conn.send("Ping")
            try:
                await asyncio.wait_for(asyncio.shield(future), self.cfg.response_timeout_s)
            except TimeoutError:
                conn.frames.put_nowait(Closed("no answer to Ping within "
                                              f"{self.cfg.response_timeout_s:g}s"))
                return

    async def run(self, emit: Emit) -> None:
        """Log in, take the QueueStatus snapshot, then map live events until the line drops."""
        reader, writer = await self._open()
        conn = Connection(reader, writer, self.cfg.response_timeout_s)
        pinger: asyncio.Task[None] | None = None
        try:
            try:
                await self._login(conn)
                # Events that arrive meanwhile wait in conn.events and are applied after it.
                items = await conn.list_action("QueueStatus", "QueueStatusComplete")
            except TimeoutError:
                raise SourceError(f"AMI {self.cfg.host}:{self.cfg.port}: no answer within "
                                  f"{self.cfg.response_timeout_s:g}s") from None
            self._emit_all(emit, self.mapper.apply_snapshot(items, self.clock.time()))
            self.connected()
            pinger = asyncio.create_task(self._ping(conn), name="ami-ping")
            while True:
                msg = await conn.next_event()
                if msg.event == "Shutdown":  # sent before Asterisk exits; go down at once
                    raise SourceError(f"AMI {self.cfg.host}:{self.cfg.port}: Asterisk is "
                                      f"shutting down ({msg.get('Shutdown') or 'no detail'}, "
                                      f"restart: {msg.get('Restart') or 'unknown'})")
                self._emit_all(emit, self.mapper.handle(msg, self.clock.time()))
        finally:
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
            await conn.close()

    @staticmethod
    def _emit_all(emit: Emit, events: list[dict[str, Any]]) -> None:
        for event in events:
            emit(event)
