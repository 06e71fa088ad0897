"""Connections: header and body deadlines, a cap on open connections, the open-file limit.

aiohttp's server waits for request headers as long as its keep-alive timeout and for a body as
long as the client trickles it; every such connection holds a file descriptor. The guard wraps
the server's connection hooks (`web.Server.connection_made`/`connection_lost`, called by each
`RequestHandler`) and a middleware that sees when a request's headers are complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wallboard.config.settings import ServerConfig, normal_origin

log = logging.getLogger(__name__)

# Descriptors kept for everything that is not a client: journal, Redis, sources, logs.
MIN_FD_RESERVE = 64
# A refused connection gets its answer and a FIN, then is cut after this even if it lingers.
REFUSED_LINGER_S = 1.0
REFUSE_RETRY_AFTER_S = 5
# Reasons of wallboard_connections_refused_total (a fixed set: a bounded label).
REFUSAL_REASONS = ("max_connections", "max_connections_per_ip", "header_timeout", "body_timeout")
ORIGIN_REASONS = ("null", "foreign")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def raise_nofile_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is still capped by the kernel's nr_open (1,048,576 by default).
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft == resource.RLIM_INFINITY or soft >= target:
        in_force = soft if soft != resource.RLIM_INFINITY else target
        log.info("open-file limit %d (already the hard limit)", in_force)
        return in_force
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("open-file limit stays at %d (hard %d): %s", soft, hard, exc)
        return soft
    log.info("open-file limit raised from %d to %d (the hard limit)", soft, target)
    return target


def fit_connections(wanted: int, nofile: int) -> int:
    """`server.max_connections` lowered, if need be, to leave descriptors for the rest."""
    reserve = max(MIN_FD_RESERVE, nofile // 8)
    return max(1, min(wanted, nofile - reserve))


def _response(status: str, text: str, *extra: str) -> bytes:
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}", "Connection: close", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class BodyTimeout(TimeoutError):
    """A request body still incomplete past `server.body_timeout_s`.

    A TimeoutError, so that aiohttp's lingering read after the 408 ends quietly.
    """


@dataclass(slots=True)
class _Conn:
    transport: Any
    header_timer: asyncio.TimerHandle | None
    peer: str
    started: bool = False


class ConnectionGuard:
    """Tracks the server's connections: cap, header and body deadlines, counts for /metrics."""

    def __init__(self, config: ServerConfig, nofile: int | None = None) -> None:
        if nofile is None:
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if nofile == resource.RLIM_INFINITY:
                nofile = 1_048_576
        self.max_connections = fit_connections(config.max_connections, nofile)
        if self.max_connections < config.max_connections:
            log.warning("server.max_connections %d lowered to %d to fit the open-file limit "
                        "(%d); raise LimitNOFILE to allow more", config.max_connections,
                        self.max_connections, nofile)
        self.max_per_ip = config.max_connections_per_ip
        self.header_timeout_s = config.header_timeout_s
        self.body_timeout_s = config.body_timeout_s
        self.open = 0
        self.refused: Counter[str] = Counter()
        self.origin_refused: Counter[str] = Counter()
        self._conns: dict[object, _Conn] = {}
        self._per_ip: Counter[str] = Counter()
        self._ip_at_cap: set[str] = set()  # logged once per stretch, like the global cap
        self._at_cap = False  # logged once per stretch at the cap, not per connection
        self._refusal = _response(
            "503 Service Unavailable",
            f"too many connections (server.max_connections={self.max_connections}); "
            "retry later\n", f"Retry-After: {REFUSE_RETRY_AFTER_S}")
        self._header_late = _response(
            "408 Request Timeout",
            f"request headers not complete within server.header_timeout_s="
            f"{self.header_timeout_s:g}\n")
        self._ip_refusal = _response(
            "503 Service Unavailable",
            f"too many connections from your address (server.max_connections_per_ip="
            f"{self.max_per_ip}); retry later\n", f"Retry-After: {REFUSE_RETRY_AFTER_S}")

    def attach(self, server: web.Server) -> None:
        """Wrap the low-level server's per-connection hooks (after `AppRunner.setup()`)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._lost(handler)
            lost(handler, exc)

        # aiohttp has no per-connection callback to register: wrap the server's own methods.
        server.connection_made = connection_made  # type: ignore[method-assign]  # ^
        server.connection_lost = connection_lost  # type: ignore[method-assign]  # ^

    def _made(self, handler: object, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        if self.open >= self.max_connections:
            self.refused["max_connections"] += 1
            if not self._at_cap:
                self._at_cap = True
                log.warning("%d connections open (server.max_connections): refusing new ones "
                            "with 503", self.open)
            self._refuse(transport, self._refusal)
            return
        if self._per_ip[peer] >= self.max_per_ip:
            self.refused["max_connections_per_ip"] += 1
            if peer not in self._ip_at_cap:
                self._ip_at_cap.add(peer)
                log.warning("%d connections open from %s (server.max_connections_per_ip): "
                            "refusing its new ones with 503", self.max_per_ip, peer)
            self._refuse(transport, self._ip_refusal)
            return
        self.open += 1
        self._per_ip[peer] += 1
        timer = loop.call_later(self.header_timeout_s, self._header_expired, handler)
        self._conns[handler] = _Conn(transport, timer, peer)

    def _refuse(self, transport: asyncio.Transport, answer: bytes) -> None:
        # Answer at once and half-close; reading stays paused, so the request the client
        # sends meanwhile is never parsed, and the socket is cut soon after in any case.
        transport.pause_reading()
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(REFUSED_LINGER_S, transport.abort)

    def _lost(self, handler: object) -> None:
        conn = self._conns.pop(handler, None)
        if conn is None:
            return
        self.open -= 1
        self._per_ip[conn.peer] -= 1
        self._ip_at_cap.discard(conn.peer)
        if not self._per_ip[conn.peer]:  # bounded by the addresses connected now
            del self._per_ip[conn.peer]
        if self._at_cap and self.open < self.max_connections * 0.9:
            self._at_cap = False
            log.info("connections back under the cap (%d open)", self.open)
        if conn.header_timer is not None:
            conn.header_timer.cancel()

    def _header_expired(self, handler: object) -> None:
        conn = self._conns.get(handler)
        if conn is None or conn.started:
            return
        self.refused["header_timeout"] += 1
        log.debug("closing a connection whose request headers took over %gs",
                  self.header_timeout_s)
        conn.transport.write(self._header_late)
        conn.transport.close()

    def _body_expired(self, request: web.BaseRequest) -> None:
        if request.content.is_eof():
            return
        self.refused["body_timeout"] += 1
        request.content.set_exception(BodyTimeout(
            f"request body not complete within server.body_timeout_s={self.body_timeout_s:g}"))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Headers are complete: stop the header clock; start the body clock if any."""
        conn = self._conns.get(request.protocol)
        if conn is None:  # not a tracked server (tests' in-process runner), or refused
            return await handler(request)
        if not conn.started:
            conn.started = True
            if conn.header_timer is not None:
                conn.header_timer.cancel()
                conn.header_timer = None
        if not request.body_exists:
            return await handler(request)
        timer = asyncio.get_running_loop().call_later(self.body_timeout_s,
                                                      self._body_expired, request)
        try:
            return await handler(request)
        except BodyTimeout as exc:
            raise web.HTTPRequestTimeout(text=f"{exc}\n") from None
        finally:
            timer.cancel()

    def refuse_origin(self, origin: str) -> None:
        """Count a websocket handshake refused for its Origin."""
        self.origin_refused["null" if origin.strip().lower() == "null" else "foreign"] += 1


def origin_ok(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """May a websocket with this Origin open? None: not a browser; else same host or listed."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    if normal_origin(origin) in allowed:  # both normalised: https://x:443 is https://x
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        return False  # "null" (sandboxed frames, file://) or a malformed Origin
    try:
        target = urlsplit(f"//{host.strip().lower()}")
        host_port = target.port
    except ValueError:
        return False
    if target.hostname != parts.hostname:
        return False
    if host_port is None:  # the Host's scheme's default port: the Origin's scheme tells which
        return origin_port == _DEFAULT_PORTS[parts.scheme]
    return host_port == origin_port


class ConnectionCollector:
    """Prometheus view of open and refused connections."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        """Read memory only."""
        yield GaugeMetricFamily("wallboard_connections_open",
                                "HTTP connections open now, websockets of boards included",
                                value=self.guard.open)
        yield GaugeMetricFamily("wallboard_connections_limit",
                                "Connections allowed at once (server.max_connections, fitted "
                                "to the open-file limit)", value=self.guard.max_connections)
        refused = CounterMetricFamily(
            "wallboard_connections_refused",
            "Connections refused past the cap or cut for slow request headers or body",
            labels=["reason"])
        for reason in REFUSAL_REASONS:
            refused.add_metric([reason], self.guard.refused[reason])
        yield refused
        origin = CounterMetricFamily("wallboard_websocket_origin_refused",
                                     "Websocket handshakes refused for their Origin header",
                                     labels=["reason"])
        for reason in ORIGIN_REASONS:
            origin.add_metric([reason], self.guard.origin_refused[reason])
        yield origin


async def _serve(app: web.Application, host: str, port: int, guard: ConnectionGuard,
                 ready: Callable[[int], None]) -> None:
    # Signals only set an event: raising GracefulExit out of the loop (handle_signals=True)
    # would let asyncio.run cancel every request in flight before the runner drains them.
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Start-up (the journal opened and folded back, ...) runs here: a fatal error ends the
    # run before the port is open and before anything says "serving".
    await runner.setup()
    try:
        assert runner.server is not None
        guard.attach(runner.server)
        await web.TCPSite(runner, host, port).start()
        addresses = runner.addresses  # (host, port, ...) per socket; port 0 is resolved here
        ready(addresses[0][1] if addresses else port)
        await stop.wait()
        log.info("signal received: draining requests in flight, then stopping")
    finally:
        # Stops accepting, closes websockets (1001), lets requests in flight finish within
        # aiohttp's shutdown_timeout, then runs the cleanup contexts, all before any task is
        # cancelled by asyncio.run.
        await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serve(app: web.Application, host: str, port: int, guard: ConnectionGuard,
          ready: Callable[[int], None] = lambda port: None) -> None:
    """Run the app until SIGINT/SIGTERM, like `web.run_app`, with the guard attached.

    `ready` is called with the port listened on once start-up succeeded and the port is open.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(app, host, port, guard, ready))
