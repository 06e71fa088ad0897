"""Latency bench, client side: websocket clients that record when each change arrives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from latency_stats import KEY, META_TS, pct

# --------------------------------------------------------------------------- client worker


@dataclass
class ClientRecord:
    """What one websocket client saw: (value, receive time, server build time) per change."""

    changes: list[tuple[int, float, float | None]] = field(default_factory=list)
    messages: int = 0
    snapshots: int = 0
    bytes: int = 0
    gaps: int = 0
    connected: bool = False
    closed_early: bool = False
    error: str | None = None


async def _client(url: str, record: ClientRecord, gate: asyncio.Semaphore, counting: list[bool],
                  compression: str | None, ready: asyncio.Event,
                  per_second: dict[int, int]) -> None:
    """Connect (a few at a time), then record every change of KEY until cancelled."""
    from websockets.asyncio.client import connect

    conn = None
    try:
        async with gate:
            for attempt in range(3):
                try:
                    conn = await connect(url, max_size=None, compression=compression,
                                         proxy=None, open_timeout=30)
                    break
                except (OSError, TimeoutError) as exc:
                    record.error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(0.2 * (attempt + 1))
        if conn is None:
            return
        record.connected, record.error = True, None
        ready.set()
        last: Any = None
        seq = None
        async for message in conn:
            now = time.time()
            if counting[0]:
                record.messages += 1
                record.bytes += len(message)
                second = int(now)
                per_second[second] = per_second.get(second, 0) + 1
            msg = orjson.loads(message)
            if msg["type"] == "snapshot":
                data = msg["data"]
                if counting[0]:
                    record.snapshots += 1
            else:
                data = msg["changes"]
                if seq is not None and msg["seq"] != seq + 1:
                    record.gaps += 1
            seq = msg["seq"]
            value = data.get(KEY)
            if value is not None and value != last:
                last = value
                record.changes.append((int(value), now, data.get(META_TS)))
        record.closed_early = True
    except asyncio.CancelledError:
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
        raise
    except Exception as exc:
        record.closed_early = True
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        ready.set()


async def _loop_lag(samples: list[float], counting: list[bool], period: float = 0.02) -> None:
    """Record how late a periodic timer fires: a busy loop shows up as lag."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(period)
        if counting[0]:
            samples.append(loop.time() - start - period)


async def client_worker(url: str, count: int, result: Path, concurrency: int,
                        compression: str | None) -> None:
    """Run `count` clients; talk to the parent over stdin/stdout (READY, GO, STOP)."""
    records = [ClientRecord() for _ in range(count)]
    gate = asyncio.Semaphore(concurrency)
    counting = [False]
    readies = [asyncio.Event() for _ in range(count)]
    per_second: dict[int, int] = {}
    tasks = [asyncio.create_task(_client(url, r, gate, counting, compression, e, per_second))
             for r, e in zip(records, readies, strict=True)]
    lag: list[float] = []
    lag_task = asyncio.create_task(_loop_lag(lag, counting))
    await asyncio.gather(*(e.wait() for e in readies))
    connected = sum(r.connected for r in records)
    errors = sorted({r.error for r in records if r.error})
    print(f"READY {connected} {json.dumps(errors[:3])}", flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    go = stop = time.time()
    cpu_go = cpu_stop = time.process_time()
    while line := (await reader.readline()).decode().strip():
        if line == "GO":
            go, cpu_go = time.time(), time.process_time()
            counting[0] = True
        elif line == "STOP":
            stop, cpu_stop = time.time(), time.process_time()
            counting[0] = False
            break
    lag_task.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lag.sort()
    result.write_bytes(orjson.dumps({
        "go": go, "stop": stop, "cpu_s": cpu_stop - cpu_go,
        "per_second": {str(k): v for k, v in per_second.items()},
        "loop_lag_ms": {"p50": round(1000 * pct(lag, 0.5), 2),
                        "p99": round(1000 * pct(lag, 0.99), 2),
                        "max": round(1000 * (lag[-1] if lag else 0.0), 2)},
        "clients": [{"changes": r.changes, "messages": r.messages, "snapshots": r.snapshots,
                     "bytes": r.bytes, "gaps": r.gaps, "connected": r.connected,
                     "closed_early": r.closed_early, "error": r.error} for r in records],
    }))


# --------------------------------------------------------------------------- driver side


@dataclass
class Workers:
    """Client processes started by the bench, and where each writes its result."""

    procs: list[tuple[asyncio.subprocess.Process, Path]] = field(default_factory=list)
    connected: int = 0
    connect_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        """The client processes' ids."""
        return [p.pid for p, _ in self.procs]

    async def start(self, script: Path, url: str, clients: int, procs: int, compression: str,
                    results: Path) -> None:
        """Start the processes and wait until every client connected (or failed)."""
        shares = [clients // procs + (i < clients % procs) for i in range(procs)]
        for i, share in enumerate(shares):
            result = results / f"clients-{i}.json"
            cmd = [sys.executable, str(script), "--client-worker", "--url", url,
                   "--clients", str(share), "--result", str(result),
                   "--compression", compression]
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            self.procs.append((proc, result))
        started = time.monotonic()
        for (proc, _), share in zip(self.procs, shares, strict=True):
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode().split(" ", 2)
            if not line or line[0] != "READY":
                raise RuntimeError(f"client worker failed: {line}")
            self.connected += int(line[1])
            if int(line[1]) < share:
                self.errors.extend(json.loads(line[2]))
        self.connect_s = round(time.monotonic() - started, 2)

    async def tell(self, word: bytes) -> None:
        """Send GO or STOP to every process."""
        for proc, _ in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(word + b"\n")
            await proc.stdin.drain()

    async def finish(self) -> list[dict[str, Any]]:
        """STOP, wait for every process, and read their results."""
        await self.tell(b"STOP")
        for proc, _ in self.procs:
            await asyncio.wait_for(proc.wait(), 60)
        return [orjson.loads(path.read_bytes()) for _, path in self.procs]

    async def kill(self) -> None:
        """Kill the processes still running (after an error)."""
        for proc, _ in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
