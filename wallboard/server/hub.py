"""The hub: latest snapshot, versioned deltas, and fan-out of pre-framed bytes to clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from wallboard.fold.guard import INT64_MAX, INT64_MIN, FoldErrors, json_safe, sanitize
from wallboard.server.scope import Path, Scope, scoped_tree
from wallboard.server.seriesdelta import SeriesOp, split_series

log = logging.getLogger(__name__)

_RESYNC = object()  # marks a key that was absent
# One scope path's delta in a flush: changed keys, removed keys, lists changed in part.
PathDelta = tuple[dict[str, Any], list[str], dict[str, SeriesOp]]
# A client's unread bytes in our transport buffer (beyond the kernel's SO_SNDBUF) before its
# deltas give way to one snapshot: asyncio's default high-water mark, ~30 deltas of 2 KB.
BUFFER_LIMIT = 64 * 1024
FANOUT_SLICE = 200  # clients written to per turn of the event loop
# Bounds of the per-scope caches (boards, and the board sets tokens open): emptied when full,
# then refilled by the scopes still asked for. Exported as wallboard_cache_entries.
SCOPE_CACHE_LIMIT = 256
PATH_CACHE_LIMIT = 4096


def flatten(tree: dict[str, Any], prefix: str = "",
            out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flatten nested dicts into dotted keys; numbers JSON cannot carry become None (in place)."""
    # The one walk of every published number per flush: NaN, ±inf and integers past 64 bits
    # are replaced here, in the tree too, so JSON and the exposition always encode.
    if out is None:
        out = {}
    for key, value in tree.items():
        kind = type(value)
        if kind is dict:
            flatten(value, f"{prefix}{key}.", out)
            continue
        if kind is float:
            if not math.isfinite(value):
                value = tree[key] = None
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                value = tree[key] = None
        elif kind is list:
            value = tree[key] = [sanitize(v) if type(v) is dict else json_safe(v)
                                 for v in value]
        out[f"{prefix}{key}"] = value
    return out


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked, uncompressed websocket text frame: server to client (RFC 6455)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class Client:
    """One websocket client: deltas written at once while it keeps up, else a snapshot."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, board: str,
                 transport: asyncio.Transport | None,
                 writer: AbstractStreamWriter | None = None) -> None:
        self.hub = hub
        self.ws = ws
        self.transport = transport
        # The response's stream writer, from `ws.prepare()`: its drain() waits while the
        # transport's buffer is over its high-water mark (aiohttp's own flow control).
        self.writer = writer
        self.board = board
        self.token = ""  # the TV token it connected with: a revoked one is disconnected
        # The snapshot paths this TV may receive (its board's), or None for everything.
        self.scope: Scope | None = None
        self.pending = True  # owes a full snapshot: new, or it fell behind
        self.snapshot_seq = -1  # the seq of the last snapshot written: older deltas are in it
        self.busy = False  # its sender is writing a snapshot or waiting for it to drain
        self.wake = asyncio.Event()
        self.wake.set()
        self.task: asyncio.Task[None] | None = None

    def offer(self, frame: bytes) -> None:
        """Write a delta's frame now; a client behind or busy gets a snapshot next instead."""
        if self.hub.seq <= self.snapshot_seq:
            return  # a fan-out in slices reached it after its snapshot: already included
        if not self.pending and not self.busy:
            transport = self.transport
            if transport is None or transport.is_closing() or self.ws.closed:
                return  # going away: its handler removes it
            # A bounded backlog per client: past it, the deltas it has not read are
            # replaced by one snapshot (sent once it drains, or it is cut).
            if transport.get_write_buffer_size() <= self.hub.buffer_limit:
                # The same bytes for every client of a scope. Safe beside aiohttp's own
                # writes (pings, close): compression is off on board sockets, so each of
                # its frames is one synchronous write too, and no frame can interleave.
                transport.write(frame)
                return
        self.pending = True
        self.wake.set()

    def resync(self) -> None:
        """Ask for a full snapshot (after a sequence gap on the client)."""
        self.pending = True
        self.wake.set()

    async def _drain(self) -> None:
        if self.writer is not None:
            await self.writer.drain()

    async def send_loop(self) -> None:
        """Send a snapshot when one is owed; a client that stalls past the timeout is cut."""
        timeout = self.hub.send_timeout_s
        while not self.ws.closed:
            await self.wake.wait()
            self.wake.clear()
            if not self.pending:
                continue
            self.busy = True
            try:
                # asyncio.timeout, not wait_for: no extra task per message.
                async with asyncio.timeout(timeout):
                    await self._drain()  # what it has not read yet goes first
                    if self.ws.closed or self.transport is None:
                        return
                    # Taken now, after the wait: the snapshot carries the latest sequence.
                    self.pending = False
                    self.snapshot_seq = self.hub.seq
                    self.transport.write(self.hub.snapshot_frame(self.scope))
                    await self._drain()  # deltas meanwhile make it owe another snapshot
            except (TimeoutError, ConnectionError, RuntimeError):
                self.hub.dropped += 1
                log.info("closing websocket client that stayed behind (board %s)", self.board)
                # Closing politely would wait on the same stalled socket: cut it instead.
                if self.transport is not None:
                    self.transport.abort()
                return
            finally:
                self.busy = False


class Hub:
    """Builds snapshots at most once per push interval and fans deltas out to clients."""

    def __init__(self, build: Callable[[], dict[str, Any]], push_interval_s: float = 0.2,
                 refresh_s: float = 1.0, send_timeout_s: float = 5.0,
                 errors: FoldErrors | None = None,
                 advance: Callable[[], None] | None = None) -> None:
        self.build = build
        # Moves time (windows, deadlines, expiry) to now: run by each flush, the one place
        # where time advances; reads serve what the last flush built.
        self.advance = advance
        self.errors = errors if errors is not None else FoldErrors()
        self.push_interval_s = push_interval_s
        self.refresh_s = refresh_s
        self.send_timeout_s = send_timeout_s
        self.buffer_limit = BUFFER_LIMIT
        self.seq = 0
        self.tree: dict[str, Any] = {}
        self.flat: dict[str, Any] = {}
        self.clients: set[Client] = set()
        self.dropped = 0
        # Per scope (None: everything), the snapshot's (seq, payload, frame), built once per seq.
        self._snapshot_cache: dict[Scope | None, tuple[int, bytes, bytes]] = {}
        # /api/snapshot's bodies (the tree, or a token's part of it) per scope, at a sequence.
        self._api_cache: dict[Scope | None, tuple[int, bytes]] = {}
        # Per scope path, its flat keys at a sequence number: boards' deltas diff these.
        self._path_cache: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._last_flush = 0.0
        self._scheduled: asyncio.TimerHandle | None = None
        self._fanout: list[tuple[Client, bytes]] = []  # the last delta's writes, in slices
        self._fanout_at = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def mark_dirty(self) -> None:
        """Something changed: flush now, or when the push interval allows."""
        if self._scheduled is not None or self._loop is None:
            return
        # Leading edge: a change after a quiet interval goes out on the next loop turn;
        # only changes coming faster than the interval wait, coalesced into one message.
        delay = max(0.0, self._last_flush + self.push_interval_s - time.monotonic())
        self._scheduled = self._loop.call_later(delay, self._push)

    def _push(self) -> None:
        # Only pushes of changes start the interval: the once-a-second refresh of clocks
        # does not make the next change wait.
        self._last_flush = time.monotonic()
        self.flush()

    def flush(self) -> None:
        """Rebuild the snapshot, publish the delta (if any) to every client.

        A build (or encoding) that raises keeps the previous snapshot: counted under
        wallboard_fold_errors_total{stage="snapshot"}, and the next flush tries again.
        """
        self._scheduled = None
        self._finish_fanout()  # the previous delta reaches everyone before the next one
        previous, previous_tree = self.flat, self.tree
        try:
            if self.advance is not None:
                self.advance()
            tree = self.build()
            flat = flatten(tree)  # also makes every number JSON-safe, in `tree` too
            changes = {k: v for k, v in flat.items() if previous.get(k, _RESYNC) != v}
            removed = [k for k in previous if k not in flat]
            if not changes and not removed and self.seq:
                self.tree, self.flat = tree, flat
                return
            # Encoded before anything is replaced: a value orjson refuses keeps the last state.
            # Only when some client takes the whole delta: scoped boards get their own.
            message = (text_frame(self._delta(changes, removed, self.seq + 1,
                                              split_series(changes, previous)))
                       if any(client.scope is None for client in self.clients) else b"")
        except Exception as exc:
            self.errors.record("snapshot", exc, what="the snapshot")
            return
        self.tree, self.flat = tree, flat
        self.seq += 1
        scoped: dict[Scope, bytes] = {}
        per_path: dict[Path, PathDelta] = {}
        jobs: list[tuple[Client, bytes]] = []
        for client in self.clients:
            scope = client.scope
            if scope is None:  # encoded and framed once for every unscoped client
                jobs.append((client, message))
                continue
            frame = scoped.get(scope)
            if frame is None:  # and once per board for the scoped ones
                frame = scoped[scope] = text_frame(
                    self._scoped_delta(scope, previous_tree, per_path))
            jobs.append((client, frame))
        self._fanout, self._fanout_at = jobs, 0
        self._fan_slice()

    def _fan_slice(self) -> None:
        # A write is a send() per client (tens of µs on loopback): in slices, so that POSTs
        # and the other tasks run between them instead of after a thousand sends.
        jobs, start = self._fanout, self._fanout_at
        end = len(jobs) if self._loop is None else min(len(jobs), start + FANOUT_SLICE)
        for client, frame in jobs[start:end]:
            client.offer(frame)
        self._fanout_at = end
        if end < len(jobs) and self._loop is not None:
            self._loop.call_soon(self._fan_slice)
        else:
            self._fanout = []

    def _finish_fanout(self) -> None:
        for client, frame in self._fanout[self._fanout_at:]:
            client.offer(frame)
        self._fanout = []  # the slice still scheduled finds nothing left

    def _path_flat(self, path: Path, seq: int, tree: dict[str, Any]) -> dict[str, Any]:
        """The flat keys under one scope path at `seq` (whose tree is `tree`), once per seq."""
        cached = self._path_cache.get(path)
        if cached is None or cached[0] != seq:
            node: Any = tree
            for segment in path:
                node = node.get(segment, _RESYNC) if isinstance(node, dict) else _RESYNC
            prefix = ".".join(path)
            flat = ({} if node is _RESYNC else flatten(node, prefix + ".")
                    if isinstance(node, dict) else {prefix: node})
            if len(self._path_cache) >= PATH_CACHE_LIMIT:
                self._path_cache.clear()
            cached = self._path_cache[path] = (seq, flat)  # one entry per board path
        return cached[1]

    def _scoped_delta(self, scope: Scope, previous_tree: dict[str, Any],
                      per_path: dict[Path, PathDelta]) -> bytes:
        # Diffed within the board's own subtrees (exact path segments), never by filtering
        # global keys by a string prefix: `queues.sales.` would also match `sales.x`'s keys.
        # Each path is diffed once per flush, however many boards share it (meta, totals).
        changes: dict[str, Any] = {}
        removed: dict[str, None] = {}
        series: dict[str, SeriesOp] = {}
        for path in scope:
            delta = per_path.get(path)
            if delta is None:
                before = self._path_flat(path, self.seq - 1, previous_tree)
                after = self._path_flat(path, self.seq, self.tree)
                changed = {k: v for k, v in after.items() if before.get(k, _RESYNC) != v}
                delta = per_path[path] = (changed, [k for k in before if k not in after],
                                          split_series(changed, before))
            changes.update(delta[0])
            removed.update(dict.fromkeys(delta[1]))
            series.update(delta[2])
        return self._delta(changes, list(removed), series=series)

    def _delta(self, changes: dict[str, Any], removed: list[str],
               seq: int | None = None, series: dict[str, SeriesOp] | None = None) -> bytes:
        message = {"type": "delta", "seq": self.seq if seq is None else seq,
                   "changes": changes, "removed": removed}
        if series:  # lists that changed in part: [drop, cut, tail] (seriesdelta.py)
            message["series"] = series
        return orjson.dumps(message)

    def current(self) -> dict[str, Any]:
        """The latest snapshot, any pending change flushed first (the tick, brought forward)."""
        if self._scheduled is not None:
            self.stop()
            self._push()
        elif not self.seq:
            self.flush()
        return self.tree

    def api_body(self, scope: Scope | None = None) -> bytes:
        """The current tree (or the part a scope reaches) as JSON, encoded once per sequence:
        an integration polling /api/snapshot costs one dict lookup while nothing changed."""
        tree = self.current()
        cached = self._api_cache.get(scope)
        if cached is None or cached[0] != self.seq:
            body = orjson.dumps(tree if scope is None else scoped_tree(tree, scope))
            # One entry per scope the tokens ask for; reloads can change them: a bound.
            if len(self._api_cache) >= SCOPE_CACHE_LIMIT:
                self._api_cache.clear()
            cached = self._api_cache[scope] = (self.seq, body)
        return cached[1]

    def snapshot_message(self, scope: Scope | None = None) -> str:
        """The full state (or a board's part of it) as one JSON message."""
        return self._snapshot(scope)[1].decode()

    def snapshot_frame(self, scope: Scope | None = None) -> bytes:
        """The same message as a websocket frame, encoded and framed once per seq."""
        return self._snapshot(scope)[2]

    def _snapshot(self, scope: Scope | None) -> tuple[int, bytes, bytes]:
        cached = self._snapshot_cache.get(scope)
        if cached is None or cached[0] != self.seq:
            data = self.flat if scope is None else {
                k: v for path in scope
                for k, v in self._path_flat(path, self.seq, self.tree).items()}
            payload = orjson.dumps({"type": "snapshot", "seq": self.seq, "data": data})
            # One entry per board's scope and one for everything (bounded all the same).
            if len(self._snapshot_cache) >= SCOPE_CACHE_LIMIT:
                self._snapshot_cache.clear()
            cached = self._snapshot_cache[scope] = (self.seq, payload, text_frame(payload))
        return cached

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        """Entries and bound of each cache the hub keeps (read by the metrics collector)."""
        return {"snapshot_bodies": (len(self._snapshot_cache), SCOPE_CACHE_LIMIT),
                "api_bodies": (len(self._api_cache), SCOPE_CACHE_LIMIT),
                "scope_paths": (len(self._path_cache), PATH_CACHE_LIMIT)}

    async def run(self) -> None:
        """Refresh once per second so time-based values (longest wait, clock) stay live."""
        self._loop = asyncio.get_running_loop()
        self.flush()
        while True:
            await asyncio.sleep(self.refresh_s)
            if self._scheduled is None:
                self.flush()

    def stop(self) -> None:
        """Cancel a pending flush."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None

    def prune(self) -> None:
        """Forget the encodings kept for scopes no TV has any more (a board was edited)."""
        live = {client.scope for client in self.clients} | {None}
        for cache in (self._snapshot_cache, self._api_cache):
            for scope in [scope for scope in cache if scope not in live]:
                del cache[scope]

    def add(self, client: Client) -> None:
        """Register a client and start its sender."""
        self.clients.add(client)
        client.task = asyncio.create_task(client.send_loop())

    async def remove(self, client: Client) -> None:
        """Unregister a client and stop its sender."""
        self.clients.discard(client)
        if client.task is not None:
            client.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.task
