"""Soak bench, TV side: N websocket TVs in one process that read, churn, stall and vanish.

Driven over stdin/stdout by bench/soak.py: `SAMPLE` prints one JSON line (what the TVs saw
since the last sample), `STORM <since> <healthy>` reports when each TV got a snapshot
again after a server restart, `STOP` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

PROBE_KEY = "queues.probe.1h.offered"
PROBE_BYTES = PROBE_KEY.encode()


def backoff(attempt: int, rng: random.Random) -> float:
    """The page's reconnect delay (board.js): full jitter under 0.5 s doubling to 30 s."""
    return rng.uniform(0, min(30.0, 0.5 * 2.0 ** min(attempt, 16)))


@dataclass
class Counts:
    """What the TVs saw since the last sample (reset by each SAMPLE)."""

    messages: int = 0
    snapshots: int = 0
    bytes: int = 0
    connects: int = 0
    connect_errors: int = 0
    server_closes: int = 0  # closed by the server (a stalled TV cut, a restart)
    gaps: int = 0
    reconnects: int = 0
    stalls: int = 0
    vanishes: int = 0
    probes: list[tuple[int, float]] = field(default_factory=list)  # (value, received at)


class TV:
    """One TV: connect, read and apply messages; the churn controller pokes it."""

    def __init__(self, index: int, url: str, counts: Counts) -> None:
        self.index = index
        self.url = url
        self.counts = counts
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.stall_until = 0.0
        self.seq: int | None = None
        self.served_s = 0.0  # the last connection: from its attempt to its snapshot
        self.probe: Any = None
        self.snapshot_wall = 0.0  # wall time of the last snapshot
        self.attempt_wall = 0.0  # wall time the current connection's attempt began
        self.leaving = False  # the controller closed it: not a server close
        self.stalled = False  # stalled on this connection: its late probes are no latency

    async def run(self, http: aiohttp.ClientSession, rng: random.Random) -> None:
        """Stay connected for ever, reconnecting after any end with a jittered delay."""
        failures = 0
        while True:
            self.attempt_wall = time.time()
            try:
                self.ws = await http.ws_connect(self.url, autoping=True, max_msg_size=0,
                                                timeout=aiohttp.ClientWSTimeout(ws_close=2))
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.counts.connect_errors += 1
                failures += 1
                await asyncio.sleep(backoff(failures, rng))
                continue
            failures = 0
            self.counts.connects += 1
            self.seq, self.leaving, self.stalled = None, False, False
            await self._read(self.ws)
            if not self.leaving:
                self.counts.server_closes += 1
            self.ws = None
            await asyncio.sleep(backoff(0, rng))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        counts = self.counts
        while True:
            wait = self.stall_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # not reading: the server's buffer for it fills
            try:
                msg = await ws.receive()
            except (aiohttp.ClientError, OSError, RuntimeError):
                return
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return
            raw = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            counts.messages += 1
            counts.bytes += len(raw)
            now = time.time()
            if raw.startswith(b'{"type":"snapshot"'):
                data = orjson.loads(raw)
                counts.snapshots += 1
                if self.seq is None:
                    self.served_s = now - self.attempt_wall
                self.snapshot_wall = now
                self.seq = data["seq"]
                self.probe = data["data"].get(PROBE_KEY)
                continue
            if PROBE_BYTES not in raw and self.seq is not None:
                # The sequence sits at a fixed place only after "seq":; cheap check, no parse.
                start = raw.find(b'"seq":') + 6
                end = start
                while raw[end:end + 1].isdigit():
                    end += 1
                seq = int(raw[start:end])
                counts.gaps += seq != self.seq + 1
                self.seq = seq
                continue
            data = orjson.loads(raw)
            if self.seq is not None and data.get("seq") != self.seq + 1:
                counts.gaps += 1
            self.seq = data.get("seq")
            value = data.get("changes", {}).get(PROBE_KEY)
            if value is not None and value != self.probe:
                self.probe = value
                if not self.stalled:
                    counts.probes.append((int(value), now))

    async def reconnect(self) -> None:
        """Close politely; the run loop connects again."""
        if self.ws is not None:
            self.leaving = True
            self.counts.reconnects += 1
            with contextlib.suppress(Exception):
                await self.ws.close()

    def vanish(self) -> None:
        """Drop the connection as a TV unplugged: an RST, no close frame."""
        ws = self.ws
        if ws is None:
            return
        self.leaving = True
        self.counts.vanishes += 1
        with contextlib.suppress(Exception):
            sock = ws.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn = ws._conn  # the bench's own client: its transport is the socket to drop
        if conn is not None and conn.transport is not None:
            conn.transport.abort()

    def stall(self, seconds: float) -> None:
        """Stop reading for a while (a frozen browser tab): the server must cut or catch up."""
        self.counts.stalls += 1
        self.stalled = True
        self.stall_until = time.monotonic() + seconds


async def churn(tvs: list[TV], rng: random.Random, reconnect: float, stall: float,
                vanish: float, period: float) -> None:
    """Each period, at random moments: a share reconnect, a share stall, a share vanish."""
    while True:
        start = time.monotonic()
        picks = rng.sample(tvs, len(tvs))
        n_re, n_st, n_va = (round(len(tvs) * s) for s in (reconnect, stall, vanish))
        plan = ([(tv, "reconnect") for tv in picks[:n_re]]
                + [(tv, "stall") for tv in picks[n_re:n_re + n_st]]
                + [(tv, "vanish") for tv in picks[n_re + n_st:n_re + n_st + n_va]])
        moments = sorted((rng.uniform(0, period * 0.9), i) for i in range(len(plan)))
        for at, i in moments:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            tv, action = plan[i]
            if action == "reconnect":
                asyncio.create_task(tv.reconnect())  # noqa: RUF006 (ends on its own)
            elif action == "stall":
                tv.stall(rng.uniform(20, 40))  # past the server's send timeout for some
            else:
                tv.vanish()
        await asyncio.sleep(max(0.0, start + period - time.monotonic()))


async def storm(tvs: list[TV], since: float, healthy: float) -> dict[str, Any]:
    """After a server restart: how many TVs got a snapshot again, and when (from healthy)."""
    for tv in tvs:
        tv.stall_until = 0.0
    deadline = time.time() + 60
    while time.time() < deadline:
        if all(tv.snapshot_wall > since for tv in tvs):
            break
        await asyncio.sleep(0.05)
    back = sorted(tv.snapshot_wall - healthy for tv in tvs if tv.snapshot_wall > since)
    served = sorted(tv.served_s for tv in tvs if tv.snapshot_wall > since)
    arrived = sorted(tv.attempt_wall - healthy for tv in tvs if tv.snapshot_wall > since)
    return {"tvs": len(tvs), "snapshots": len(back),
            # Each TV's successful attempt to its snapshot: what the server makes it wait.
            "served_p50_s": round(served[len(served) // 2], 3) if served else None,
            "served_max_s": round(served[-1], 3) if served else None,
            # When the successful attempts came (after healthy): the page's jittered spread.
            "arrival_spread_s": round(arrived[-1] - arrived[0], 3) if arrived else None,
            "p50_s": round(back[len(back) // 2], 3) if back else None,
            "p99_s": round(back[int(0.99 * (len(back) - 1))], 3) if back else None,
            "max_s": round(back[-1], 3) if back else None}


async def worker(url: str, count: int, seed: int, reconnect: float, stall: float,
                 vanish: float, period: float) -> None:
    """Run the TVs; answer SAMPLE / STORM / STOP on stdin."""
    rng = random.Random(seed)
    counts = Counts()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        tvs = [TV(i, url, counts) for i in range(count)]
        tasks = [asyncio.create_task(tv.run(http, random.Random(seed + i)))
                 for i, tv in enumerate(tvs)]
        churner: asyncio.Task[None] | None = None
        if reconnect or stall or vanish:
            churner = asyncio.create_task(churn(tvs, rng, reconnect, stall, vanish, period))
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "SAMPLE":
                sample = {k: v for k, v in vars(counts).items()}
                sample["connected"] = sum(tv.ws is not None and not tv.ws.closed for tv in tvs)
                sample["stalled"] = sum(tv.stall_until > time.monotonic() for tv in tvs)
                print(orjson.dumps(sample).decode(), flush=True)
                fresh = Counts()
                vars(counts).update(vars(fresh))
            elif line.startswith("STORM"):
                if churner is not None:
                    churner.cancel()
                since, healthy = map(float, line.split()[1:3])
                print(orjson.dumps(await storm(tvs, since, healthy)).decode(), flush=True)
            elif line == "STOP":
                break
        if churner is not None:
            churner.cancel()
        for tv in tvs:
            tv.leaving = True
            if tv.ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(tv.ws.close(), 1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
