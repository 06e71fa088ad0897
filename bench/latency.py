"""Benchmark: event-to-client latency with N websocket clients while R events/s are posted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

TARGET_P99_MS = 300.0
TARGET_CLIENTS = 500
TARGET_RATE = 1000
TOKEN = "bench-token-0123456789"
QUEUE = "bench"
KEY = f"queues.{QUEUE}.1h.offered"  # 1h, not today: immune to a midnight reset mid-run
META_TS = "meta.ts"  # when the server built the snapshot that carried a change
BOARD = "overview"
CLK_TCK = os.sysconf("SC_CLK_TCK")


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
        "loop_lag_ms": {"p50": round(1000 * _pct(lag, 0.5), 2),
                        "p99": round(1000 * _pct(lag, 0.99), 2),
                        "max": round(1000 * (lag[-1] if lag else 0.0), 2)},
        "clients": [{"changes": r.changes, "messages": r.messages, "snapshots": r.snapshots,
                     "bytes": r.bytes, "gaps": r.gaps, "connected": r.connected,
                     "closed_early": r.closed_early, "error": r.error} for r in records],
    }))


def _pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


# --------------------------------------------------------------------------- server probe

_SEQ = re.compile(r'"seq":(\d+)')


def _text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final websocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


def _patch_variant(variant: str, sends: dict[int, list[float]]) -> None:
    """What-if experiments on the fan-out, applied by monkeypatching (never in the product)."""
    from wallboard import hub as hub_mod

    if variant == "broadcast":
        # Frame each delta once and write the same bytes to every idle client's transport in
        # the flush itself (uncompressed frames are valid on deflate connections); clients
        # that are busy or backed up go through their outbox as before.
        def flush(self: hub_mod.Hub) -> None:
            self._scheduled = None
            self._last_flush = time.monotonic()
            tree = self.build()
            flat = hub_mod.flatten(tree)
            previous = self.flat
            changes = {k: v for k, v in flat.items() if previous.get(k, hub_mod._RESYNC) != v}
            removed = [k for k in previous if k not in flat]
            self.tree, self.flat = tree, flat
            if not changes and not removed and self.seq:
                return
            self.seq += 1
            payload = orjson.dumps({"type": "delta", "seq": self.seq, "changes": changes,
                                    "removed": removed})
            frame = _text_frame(payload)
            message: str | None = None
            direct = 0
            first = 0.0
            for client in self.clients:
                writer = client.ws._writer
                transport = writer.transport if writer is not None else None
                if (client.pending is None and transport is not None
                        and not transport.is_closing() and not writer._send_lock.locked()
                        and transport.get_write_buffer_size() < 64 * 1024):
                    transport.write(frame)
                    direct += 1
                    first = first or time.perf_counter()
                else:
                    message = message or payload.decode()
                    client.offer(message)
            if direct:
                sends[self.seq] = [direct, first, time.perf_counter()]

        hub_mod.Hub.flush = flush  # type: ignore[method-assign]
    elif variant != "stock":
        raise SystemExit(f"unknown server variant {variant!r}")


def run_probed_server(out: Path, argv: list[str]) -> int:
    """Run `wallboard serve` with timers on snapshot builds, flushes and websocket sends."""
    from aiohttp import web_ws

    from wallboard import app as app_mod
    from wallboard import cli
    from wallboard import hub as hub_mod

    trees: list[tuple[float, float]] = []  # (wall start, seconds) of each snapshot build
    flushes: list[tuple[int, float, float, float]] = []  # (seq, wall, perf start, seconds)
    sends: dict[int, list[float]] = {}  # seq -> [sends, first done, last done] (perf)
    lag: list[tuple[float, float]] = []  # (wall, seconds late)
    _patch_variant(os.environ.get("WALLBOARD_BENCH_VARIANT", "stock"), sends)

    orig_tree = getattr(app_mod, "_tree", None)

    def tree(*args: Any) -> dict[str, Any]:
        wall, start = time.time(), time.perf_counter()
        result = orig_tree(*args)  # type: ignore[misc]
        trees.append((wall, time.perf_counter() - start))
        return result

    orig_flush = hub_mod.Hub.flush

    def flush(self: hub_mod.Hub) -> None:
        wall, start, seq = time.time(), time.perf_counter(), self.seq
        orig_flush(self)
        if self.seq != seq:
            flushes.append((self.seq, wall, start, time.perf_counter() - start))

    orig_send = web_ws.WebSocketResponse.send_str

    async def send_str(self: web_ws.WebSocketResponse, data: str,
                       compress: int | None = None) -> None:
        await orig_send(self, data, compress)
        done = time.perf_counter()
        match = _SEQ.search(data, 0, 40)
        if match:
            record = sends.setdefault(int(match.group(1)), [0, done, done])
            record[0] += 1
            record[2] = done

    async def watch_lag() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.01)
            lag.append((time.time(), loop.time() - start - 0.01))

    orig_run = hub_mod.Hub.run

    async def run(self: hub_mod.Hub) -> None:
        watcher = asyncio.create_task(watch_lag())
        try:
            await orig_run(self)
        finally:
            watcher.cancel()

    if orig_tree is not None:  # the snapshot builder, when it still lives there
        app_mod._tree = tree  # type: ignore[attr-defined]
    hub_mod.Hub.flush = flush  # type: ignore[method-assign]
    hub_mod.Hub.run = run  # type: ignore[method-assign]
    web_ws.WebSocketResponse.send_str = send_str  # type: ignore[method-assign]
    try:
        return cli.main(argv)
    finally:
        out.write_bytes(orjson.dumps({
            "trees": trees, "lag": lag,
            "flushes": [{"seq": seq, "wall": wall, "seconds": secs,
                         "sends": sends.get(seq, [0, start, start])[0],
                         "first_send_s": sends.get(seq, [0, start, start])[1] - start,
                         "last_send_s": sends.get(seq, [0, start, start])[2] - start}
                        for seq, wall, start, secs in flushes],
        }))


def summarize_probe(path: Path, start: float, end: float, clients: int) -> dict[str, Any]:
    """Percentiles of the probe's timings between wall times `start` and `end`."""
    data = orjson.loads(path.read_bytes())

    def stats(values: list[float]) -> dict[str, float]:
        values = sorted(values)
        return {"n": len(values), "p50": round(1000 * _pct(values, 0.5), 2),
                "p99": round(1000 * _pct(values, 0.99), 2),
                "max": round(1000 * (values[-1] if values else 0.0), 2)}

    flushes = [f for f in data["flushes"] if start <= f["wall"] <= end]
    full = [f for f in flushes if f["sends"] >= clients]
    walls = [f["wall"] for f in flushes]
    return {
        "snapshot_build_ms": stats([s for w, s in data["trees"] if start <= w <= end]),
        "flush_ms": stats([f["seconds"] for f in flushes]),
        "fanout_first_send_done_ms": stats([f["first_send_s"] for f in full]),
        "fanout_last_send_done_ms": stats([f["last_send_s"] for f in full]),
        "flushes_reaching_every_client": f"{len(full)}/{len(flushes)}",
        "flush_interval_ms": stats([b - a for a, b in itertools.pairwise(walls)]),
        "loop_lag_ms": stats([v for w, v in data["lag"] if start <= w <= end]),
    }


# --------------------------------------------------------------------------- measurement


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_open_files(needed: int) -> dict[str, int]:
    """Raise the soft RLIMIT_NOFILE to `needed` when allowed; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return {"soft_before": before, "soft": soft, "hard": hard, "needed": needed}


def proc_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process from /proc (0.0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


@dataclass
class CpuSampler:
    """CPU use of named processes and of the whole machine, sampled once a second."""

    pids: dict[str, list[int]]
    series: list[dict[str, float]] = field(default_factory=list)

    def read(self) -> dict[str, float]:
        """One sample: cumulative CPU seconds per role, machine busy/total, wall time."""
        busy, total = machine_cpu_s()
        sample = {role: sum(proc_cpu_s(p) for p in pids) for role, pids in self.pids.items()}
        sample.update(_busy=busy, _total=total, _t=time.monotonic())
        return sample

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.series.append(self.read())
            await asyncio.sleep(1.0)

    def per_second(self) -> list[dict[str, float]]:
        """Usage between consecutive samples (percent of one core per role)."""
        return [{k: round(v, 1) for k, v in self.usage(a, b).items()}
                for a, b in itertools.pairwise(self.series)]

    def usage(self, first: dict[str, float], last: dict[str, float]) -> dict[str, float]:
        """Percent of one core per role, the machine's busy cores, and everyone else's share."""
        wall = last["_t"] - first["_t"]
        out = {role: 100 * (last[role] - first[role]) / wall for role in self.pids}
        out["machine_busy_cores_pct"] = 100 * (last["_busy"] - first["_busy"]) / wall
        out["machine_cores"] = (last["_total"] - first["_total"]) / wall
        out["other_processes"] = out["machine_busy_cores_pct"] - sum(out[r] for r in self.pids)
        return out


@dataclass
class Sender:
    """Posts contact.queued events in batches at a steady rate and remembers when."""

    url: str
    rate: float
    duration: float
    batch_s: float
    batches: list[tuple[int, float]] = field(default_factory=list)  # (cumulative, sent at)
    rtts: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    first_send: float = 0.0
    last_send: float = 0.0

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        start = time.perf_counter()
        try:
            async with session.post(self.url, data=body, headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "application/json"}) as resp:
                text = await resp.text()
                if resp.status != 202:  # accepted: stored in the journal
                    self.errors.append(f"{resp.status}: {text[:200]}")
        except aiohttp.ClientError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.rtts.append(time.perf_counter() - start)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Send for `duration` seconds, one batch per `batch_s`, then wait for the replies."""
        total = int(self.rate * self.duration)
        pending: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        k = 0
        while self.sent < total:
            k += 1
            delay = t0 + k * self.batch_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            due = min(total, int(self.rate * (time.monotonic() - t0)))
            if due <= self.sent:
                continue
            now = time.time()
            body = orjson.dumps([
                {"type": "contact.queued", "ts": now, "queue": QUEUE, "channel": "voice",
                 "contact_id": f"c{i}", "id": f"b{i}"} for i in range(self.sent + 1, due + 1)])
            self.sent = due
            sent_at = time.time()
            self.batches.append((due, sent_at))
            self.first_send = self.first_send or sent_at
            self.last_send = sent_at
            task = asyncio.create_task(self._post(session, body))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)


def latency_pairs(changes: list[list[Any]], batches: list[tuple[int, float]]
                  ) -> tuple[list[tuple[float, float, float | None]], int]:
    """Per client: (latency s, events, build - send s) runs, and the events never seen."""
    # Event i (cumulative) counts as delivered at the first change whose value is >= i.
    out: list[tuple[float, float, float | None]] = []
    seen = 0
    b = 0  # batch holding event seen + 1
    total = batches[-1][0] if batches else 0
    for value, received, built in changes:
        value = min(value, total)
        while seen < value:
            cumulative, sent_at = batches[b]
            upto = min(value, cumulative)
            out.append((received - sent_at, upto - seen,
                        None if built is None else built - sent_at))
            seen = upto
            if upto == cumulative:
                b += 1
    return out, total - seen


def weighted_percentiles(pairs: list[tuple[float, float]], qs: tuple[float, ...]
                         ) -> dict[float, float]:
    """Percentiles of weighted samples (value, weight)."""
    pairs = sorted(pairs)
    total = sum(w for _, w in pairs)
    out: dict[float, float] = {}
    if not total:
        return {q: math.nan for q in qs}
    running, i = 0.0, 0
    for q in sorted(qs):
        while i < len(pairs) and running + pairs[i][1] < q * total:
            running += pairs[i][1]
            i += 1
        out[q] = pairs[min(i, len(pairs) - 1)][0]
    return out


def read_metric(text: str, name: str) -> float | None:
    """The value of an unlabelled metric in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "_total "):
            return float(line.split()[-1])
    return None


def write_config(path: Path, push_interval_ms: int) -> None:
    """A server config: a webhook source, the bench queue and a few ordinary ones."""
    config = {
        "site": {"name": "Latency bench", "timezone": "UTC"},
        "server": {"push_interval_ms": push_interval_ms, "max_body_bytes": 16 * 1024 * 1024,
                   "send_timeout_s": 10},
        "queues": {
            QUEUE: {"label": "Bench", "channel": "voice"},
            "sales": {"label": "Sales", "channel": "voice"},
            "support": {"label": "Support", "channel": "voice"},
            "chat": {"label": "Chat", "channel": "chat", "service_level": {"threshold_s": 60}},
            "email": {"label": "Email", "channel": "email",
                      "service_level": {"threshold_s": 3600, "short_abandon_s": 0}},
        },
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        # Next to the config, in the run's temporary directory: never the working directory.
        "journal": {"data_dir": str(path.parent / "journal")},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def wait_healthy(session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process,
                       timeout: float = 30.0) -> float:
    """Poll /healthz until it answers; returns seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.returncode is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(f"{url}/healthz") as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise RuntimeError("server did not become healthy")


async def stop_process(proc: asyncio.subprocess.Process, sig: int = signal.SIGINT,
                       timeout: float = 15.0) -> None:
    """Signal a child we started and wait; kill it if it does not exit."""
    if proc.returncode is not None:
        return
    proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def print_profile(path: Path, limit: int = 30) -> list[str]:
    """Print the top of a cProfile dump by own time and by cumulative time."""
    import io
    import pstats

    lines: list[str] = []
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(order).print_stats(limit)
        text = buf.getvalue()
        text = text[text.find("   ncalls"):] if "   ncalls" in text else text
        print(f"server profile, top {limit} by {order}:\n{text}")
        lines.append(text)
    return lines


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server and the client process, send, collect, and compute the figures."""
    limits = ensure_open_files(args.clients + 1024)
    tmp = Path(tempfile.mkdtemp(prefix="wallboard-latency-"))
    config = tmp / "config.yaml"
    write_config(config, args.push_interval_ms)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_cmd = [sys.executable, "-m", "wallboard", "--log-level", "WARNING", "serve",
                  "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    probe = tmp / "probe.json"
    if args.probe_server:
        server_cmd[1:3] = [str(Path(__file__).resolve()), "--probe-server", str(probe)]
    if args.profile_server:
        server_cmd[1:1] = ["-m", "cProfile", "-o", str(args.profile_server)]
    server_log = (tmp / "server.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        *server_cmd, stdout=server_log, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "WALLBOARD_BENCH_VARIANT": args.server_variant})
    workers: list[tuple[asyncio.subprocess.Process, Path]] = []
    report: dict[str, Any] = {"open_files": limits, "server_cmd": server_cmd}
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64)) as session:
            report["server_start_s"] = round(await wait_healthy(session, base, server), 2)
            shares = [args.clients // args.client_procs + (i < args.clients % args.client_procs)
                      for i in range(args.client_procs)]
            for i, share in enumerate(shares):
                result = tmp / f"clients-{i}.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--client-worker",
                       "--url", f"ws://127.0.0.1:{port}/ws?board={BOARD}",
                       "--clients", str(share), "--result", str(result),
                       "--compression", args.compression]
                proc = await asyncio.create_subprocess_exec(
                    *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
                workers.append((proc, result))
            t_connect = time.monotonic()
            connected = 0
            for proc, _ in workers:
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode().split(
                    " ", 2)
                if not line or line[0] != "READY":
                    raise RuntimeError(f"client worker failed: {line}")
                connected += int(line[1])
                if int(line[1]) < sum(shares):
                    report.setdefault("connect_errors", []).extend(json.loads(line[2]))
            report["connect_s"] = round(time.monotonic() - t_connect, 2)
            print(f"server up in {report['server_start_s']}s on port {port}; {connected}/"
                  f"{args.clients} clients connected in {report['connect_s']}s "
                  f"({args.client_procs} client process(es), compression "
                  f"{args.compression}); sending {args.rate:,} events/s for "
                  f"{args.duration:g}s ...", flush=True)
            await asyncio.sleep(1.0)  # let connection snapshots settle

            sampler = CpuSampler({"server": [server.pid],
                                  "clients": [p.pid for p, _ in workers],
                                  "sender": [os.getpid()]})
            sampling = asyncio.create_task(sampler.run())
            for proc, _ in workers:
                assert proc.stdin is not None
                proc.stdin.write(b"GO\n")
            go_wall = time.time()
            sender = Sender(f"{base}/api/events", args.rate, args.duration, args.batch_ms / 1000)
            sent_cpu = sampler.read()
            await sender.run(session)
            send_cpu = sampler.read()
            await asyncio.sleep(args.drain)
            async with session.get(f"{base}/metrics") as resp:
                metrics = await resp.text()
            for proc, _ in workers:
                assert proc.stdin is not None
                proc.stdin.write(b"STOP\n")
                await proc.stdin.drain()
            for proc, _ in workers:
                await asyncio.wait_for(proc.wait(), 60)
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
    except BaseException:
        log = (tmp / "server.log").read_text(errors="replace")[-3000:]
        print(f"server log ({tmp / 'server.log'}):\n{log}", file=sys.stderr)
        raise
    finally:
        for proc, _ in workers:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await stop_process(server)
        server_log.close()

    usage = sampler.usage(sent_cpu, send_cpu)
    worker_results = [orjson.loads(path.read_bytes()) for _, path in workers]
    clients = [c for w in worker_results for c in w["clients"]]
    window = max(w["stop"] for w in worker_results) - go_wall
    pairs: list[tuple[float, float]] = []
    to_build: list[tuple[float, float]] = []
    from_build: list[tuple[float, float]] = []
    missing = 0
    for client in clients:
        if not client["connected"]:
            continue
        found, lost = latency_pairs(client["changes"], sender.batches)
        missing += lost
        for latency, weight, build in found:
            pairs.append((latency, weight))
            if build is not None:
                to_build.append((build, weight))
                from_build.append((latency - build, weight))
    if missing:
        pairs.append((math.inf, missing))
    qs = (0.5, 0.95, 0.99, 1.0)
    lat = weighted_percentiles(pairs, qs)
    part1 = weighted_percentiles(to_build, qs)
    part2 = weighted_percentiles(from_build, qs)
    send_span = max(sender.last_send - sender.first_send, 1e-9)
    messages = sum(c["messages"] for c in clients)
    per_second: dict[int, int] = {}
    for w in worker_results:
        for sec, n in w["per_second"].items():
            per_second[int(sec)] = per_second.get(int(sec), 0) + n
    full_seconds = range(math.ceil(sender.first_send), math.floor(sender.last_send))
    sending_rate = (sum(per_second.get(sec, 0) for sec in full_seconds) / len(full_seconds)
                    if full_seconds else messages / window)
    rtts = sorted(sender.rtts)
    report.update({
        "clients_requested": args.clients,
        "clients_connected": sum(c["connected"] for c in clients),
        "clients_closed_early": sum(c["closed_early"] for c in clients),
        "server_ws_clients_metric": read_metric(metrics, "wallboard_websocket_clients"),
        "server_ws_dropped_metric": read_metric(metrics, "wallboard_websocket_clients_dropped"),
        "events_sent": sender.sent,
        "events_per_s_sent": round(sender.sent / send_span, 1),
        "batches": len(sender.batches),
        "post_errors": len(sender.errors),
        "post_error_examples": sender.errors[:3],
        "post_rtt_ms": {"p50": round(1000 * _pct(rtts, 0.5), 2),
                        "p99": round(1000 * _pct(rtts, 0.99), 2),
                        "max": round(1000 * (rtts[-1] if rtts else 0), 2)},
        "messages_received": messages,
        "messages_per_s": round(sending_rate, 1),
        "messages_per_s_incl_drain": round(messages / window, 1),
        "snapshots_received": sum(c["snapshots"] for c in clients),
        "sequence_gaps": sum(c.get("gaps", 0) for c in clients),
        "bytes_per_s": round(sum(c["bytes"] for c in clients) / window),
        "pairs": int(sum(w for _, w in pairs)),
        "pairs_missing": missing,
        "latency_ms": {f"p{round(q * 100)}" if q < 1 else "max": round(1000 * v, 1)
                       for q, v in lat.items()},
        "send_to_server_build_ms": {f"p{round(q * 100)}" if q < 1 else "max": round(1000 * v, 1)
                                    for q, v in part1.items()},
        "server_build_to_client_ms": {f"p{round(q * 100)}" if q < 1 else "max":
                                      round(1000 * v, 1) for q, v in part2.items()},
        "cpu_pct_of_one_core_while_sending": {k: round(v, 1) for k, v in usage.items()},
        "cpu_per_second": sampler.per_second(),
        "client_loop_lag_ms": [w["loop_lag_ms"] for w in worker_results],
        "client_process_cpu_s": [round(w["cpu_s"], 2) for w in worker_results],
        "load_average_after": round(os.getloadavg()[0], 2),
    })
    if args.probe_server and probe.exists():
        report["server_probe"] = summarize_probe(probe, go_wall, go_wall + send_span + 0.2,
                                                 report["clients_connected"])
    if args.profile_server and Path(args.profile_server).exists():
        report["server_profile"] = print_profile(Path(args.profile_server))
    shutil.rmtree(tmp, ignore_errors=True)
    return report


def print_report(r: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the figures and the ratio to the target."""
    lat = r["latency_ms"]
    print(f"clients connected {r['clients_connected']}/{r['clients_requested']} (server gauge "
          f"{r['server_ws_clients_metric']}, dropped {r['server_ws_dropped_metric']}, closed "
          f"early {r['clients_closed_early']}); open-files soft limit {r['open_files']['soft']}")
    print(f"events sent {r['events_sent']:,} = {r['events_per_s_sent']:,.0f}/s in "
          f"{r['batches']} batches; POST errors {r['post_errors']}; POST round trip p50 "
          f"{r['post_rtt_ms']['p50']} ms p99 {r['post_rtt_ms']['p99']} ms max "
          f"{r['post_rtt_ms']['max']} ms")
    print(f"messages received {r['messages_received']:,}; {r['messages_per_s']:,.0f}/s while "
          f"sending "
          f"({r['snapshots_received']} full snapshots, {r['sequence_gaps']} sequence gaps), "
          f"{r['bytes_per_s'] / 1e6:.2f} MB/s of JSON")
    print(f"event-to-client latency over {r['pairs']:,} (client, event) pairs "
          f"({r['pairs_missing']} never seen): p50 {lat['p50']} ms  p95 {lat['p95']} ms  "
          f"p99 {lat['p99']} ms  max {lat['max']} ms")
    b, c = r["send_to_server_build_ms"], r["server_build_to_client_ms"]
    print(f"  split at the server's snapshot build (meta.ts): send->build p50 {b['p50']} p99 "
          f"{b['p99']} max {b['max']} ms | build->client p50 {c['p50']} p99 {c['p99']} max "
          f"{c['max']} ms")
    cpu = r["cpu_pct_of_one_core_while_sending"]
    print(f"CPU while sending (% of one core): server {cpu['server']}, clients {cpu['clients']}, "
          f"sender {cpu['sender']}, other processes {cpu['other_processes']}; machine busy "
          f"{cpu['machine_busy_cores_pct']} of {cpu['machine_cores'] * 100:.0f}")
    print(f"client process loop lag {r['client_loop_lag_ms']}; load average "
          f"{r['load_average_after']}")
    for name, value in r.get("server_probe", {}).items():
        print(f"  server probe {name}: {value}")
    if cpu["other_processes"] > 25:
        print(f"WARNING: other processes used {cpu['other_processes']:.0f}% of a core while "
              f"sending (of {cpu['machine_cores'] * 100:.0f}%): these figures include contention "
              f"from outside the benchmark")
    ratio = lat["p99"] / TARGET_P99_MS
    at_target = args.clients >= TARGET_CLIENTS and args.rate >= TARGET_RATE
    print(f"TARGET p99 <= {TARGET_P99_MS:g} ms with {TARGET_CLIENTS} clients at {TARGET_RATE:,} "
          f"events/s: p99/target = {ratio:.2f} -> {'MET' if ratio <= 1 else 'MISSED'}"
          + ("" if at_target else f" (at {args.clients} clients, {args.rate} events/s: "
             "not the target load)"))
    r["ratio_p99_to_target"] = round(ratio, 3)
    r["target_met"] = ratio <= 1 and at_target


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run the benchmark (or, internally, a client worker or probed server)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe-server"] and len(argv) > 1 and not argv[1].startswith("-"):
        return run_probed_server(Path(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS)
    parser.add_argument("--rate", type=int, default=TARGET_RATE, help="events per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    parser.add_argument("--batch-ms", type=float, default=10.0, help="one POST per this")
    parser.add_argument("--push-interval-ms", type=int, default=200)
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait after sending")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="websocket permessage-deflate, as browsers negotiate it")
    parser.add_argument("--profile-server", type=Path, help="run the server under cProfile")
    parser.add_argument("--probe-server", action="store_true",
                        help="time snapshot builds, flushes and fan-out inside the server")
    parser.add_argument("--server-variant", choices=("stock", "broadcast"),
                        default="stock", help="what-if fan-out patches (implies --probe-server)")
    parser.add_argument("--quick", action="store_true", help="a ~10 s smoke run")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--client-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=50, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    compression = None if args.compression == "none" else args.compression
    if args.client_worker:
        asyncio.run(client_worker(args.url, args.clients, args.result, args.concurrency,
                                  compression))
        return 0
    args.probe_server = args.probe_server or args.server_variant != "stock"
    if args.quick:
        args.clients, args.rate, args.duration, args.drain = 50, 200, 5.0, 1.0
    out = args.out or Path(__file__).parent / "results" / "latency.json"
    print(f"latency benchmark: {args.clients} clients, {args.rate:,} events/s, "
          f"{args.duration:g}s, push interval {args.push_interval_ms} ms, server "
          f"{args.server_variant}{' (probed)' if args.probe_server else ''}, python "
          f"{platform.python_version()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    started = time.perf_counter()
    report = asyncio.run(measure(args))
    print_report(report, args)
    report.update(name="latency", quick=args.quick, clients=args.clients, rate=args.rate,
                  duration_s=args.duration, push_interval_ms=args.push_interval_ms,
                  compression=args.compression, server_variant=args.server_variant,
                  target_p99_ms=TARGET_P99_MS,
                  elapsed_s=round(time.perf_counter() - started, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out} ({report['elapsed_s']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
