"""Benchmark: two wallboard nodes on one Redis stream, end to end; and node-to-node lag.

Starts Debian's `redis-server` (loopback, temporary directory, append-only file with
`appendfsync always` unless `--fsync everysec`) and two `wallboard serve` processes with
`journal.backend: redis` and a webhook, as behind a load balancer:

- throughput: `--events` contact events (with ids) POSTed as JSON arrays of `--post-size`,
  `--senders` at a time, alternately to node A and node B; timed from the first POST until
  *both* nodes have folded every event (their `wallboard_events_accepted_total`), so it
  covers HTTP, validation, the append script in Redis and the fold on each node.
- lag: one event at a time POSTed to node A only, `--lag-events` of them at `--lag-rate`/s,
  before the throughput run; node B's /healthz reports how long after Redis stored each
  entry B had folded it (`apply_delay_s`), from which p50 and p99 are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchio import free_port, proc_cpu_s, write_report

TARGET_EVENTS_PER_S = 20_000
TOKEN = "bench-token-123"
_ACCEPTED = re.compile(rb'^wallboard_events_accepted_total\{source="hook"\} (\S+)$', re.M)


def contact_events(n: int, rng: random.Random, now: float) -> list[dict[str, Any]]:
    """Contact n's events (queued, answered or abandoned, ended), all in the last minutes."""
    cid, queue = f"b{n}", ("sales", "support", "chat")[n % 3]
    start = now - 240 + rng.uniform(0, 60)
    wait = rng.uniform(1, 60)
    base = {"queue": queue, "contact_id": cid}
    events = [{"type": "contact.queued", "id": f"{cid}-q", "ts": start, **base}]
    if rng.random() < 0.15:
        events.append({"type": "contact.abandoned", "id": f"{cid}-x", "ts": start + wait,
                       "wait_s": wait, **base})
    else:
        talk = rng.uniform(20, 120)
        events += [{"type": "contact.answered", "id": f"{cid}-a", "ts": start + wait,
                    "wait_s": wait, "agent": f"a{n % 40}", **base},
                   {"type": "contact.ended", "id": f"{cid}-e", "ts": start + wait + talk,
                    "talk_s": talk, "wrap_s": 5.0, **base}]
    return events


def make_events(total: int, seed: int, first: int = 0) -> list[dict[str, Any]]:
    """At least `total` events, whole contacts only."""
    rng, now, out, n = random.Random(seed), time.time(), [], first
    while len(out) < total:
        out += contact_events(n, rng, now)
        n += 1
    return out


class Node:
    """One `wallboard serve` process."""

    def __init__(self, workdir: Path, name: str, redis_url: str) -> None:
        workdir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "site": {"name": f"bench {name}", "timezone": "UTC"},
            "queues": {"sales": {"channel": "voice"}, "support": {"channel": "voice"},
                       "chat": {"channel": "chat"}},
            "sources": {"hook": {"type": "webhook", "token": TOKEN}},
            "server": {"max_body_bytes": 16 * 1024 * 1024},
            "journal": {"backend": "redis", "url": redis_url, "node": name},
        }
        path = workdir / "wallboard.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wallboard", "--log-level", "WARNING", "serve", "--config",
             str(path), "--port", str(self.port)],
            cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT)

    async def ready(self, http: aiohttp.ClientSession) -> None:
        """Wait for /healthz."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"node exited with {self.proc.returncode}")
            try:
                async with http.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit("node not ready within 60 s")

    async def post(self, http: aiohttp.ClientSession, body: bytes) -> None:
        """POST to the webhook; retry after a 503."""
        while True:
            async with http.post(f"{self.url}/api/events", data=body, headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "application/json"}) as resp:
                if resp.status == 202:
                    return
                if resp.status != 503:
                    raise SystemExit(f"POST: HTTP {resp.status}: {await resp.text()}")
            await asyncio.sleep(0.2)

    async def accepted(self, http: aiohttp.ClientSession) -> int:
        """Events this node has folded from the webhook (its /metrics)."""
        async with http.get(f"{self.url}/metrics") as resp:
            match = _ACCEPTED.search(await resp.read())
        return int(float(match.group(1))) if match else 0

    async def health(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """GET /healthz."""
        async with http.get(f"{self.url}/healthz") as resp:
            return await resp.json()

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def until_folded(http: aiohttp.ClientSession, nodes: list[Node], total: int) -> None:
    """Wait until every node has folded `total` webhook events."""
    while True:
        counts = [await n.accepted(http) for n in nodes]
        if all(c >= total for c in counts):
            return
        await asyncio.sleep(0.02)


async def phase_lag(http: aiohttp.ClientSession, a: Node, b: Node, count: int,
                    rate: float) -> dict[str, Any]:
    """One event per POST to A at `rate`/s; B's apply delays."""
    events = make_events(count, seed=1, first=10_000_000)[:count]
    started = time.perf_counter()
    for i, event in enumerate(events):
        await a.post(http, orjson.dumps(event))
        wait = started + (i + 1) / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
    await until_folded(http, [a, b], len(events))
    delays = (await b.health(http))["apply_delay_s"]
    return {"events": len(events), "rate_per_s": rate,
            "p50_ms": round(delays["p50"] * 1000, 2), "p99_ms": round(delays["p99"] * 1000, 2),
            "entries": delays["entries"]}


async def phase_throughput(http: aiohttp.ClientSession, nodes: list[Node], total: int,
                           size: int, senders: int, already: int) -> dict[str, Any]:
    """`total` events in POSTs of `size`, `senders` at once, alternately to each node."""
    events = make_events(total, seed=2)
    bodies = [orjson.dumps(events[i:i + size]) for i in range(0, len(events), size)]
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((i, body))

    async def sender() -> None:
        while not queue.empty():
            i, body = queue.get_nowait()
            await nodes[i % len(nodes)].post(http, body)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    acked = time.perf_counter() - started
    await until_folded(http, nodes, already + len(events))
    seconds = time.perf_counter() - started
    return {"events": len(events), "posts": len(bodies), "post_size": size,
            "senders": senders, "acked_seconds": round(acked, 3),
            "seconds": round(seconds, 3), "events_per_s": round(len(events) / seconds),
            "acked_events_per_s": round(len(events) / acked)}


async def run(args: argparse.Namespace, tmp: Path, redis_url: str, redis_pid: int
              ) -> dict[str, Any]:
    """Both phases against two fresh nodes."""
    nodes = [Node(tmp / name, name, redis_url) for name in ("a", "b")]
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=args.senders + 8)) as http:
            for node in nodes:
                await node.ready(http)
            lag = await phase_lag(http, nodes[0], nodes[1], args.lag_events, args.lag_rate)
            pids = [n.proc.pid for n in nodes] + [redis_pid]
            cpu = [proc_cpu_s(pid) for pid in pids]
            throughput = await phase_throughput(http, nodes, args.events, args.post_size,
                                                args.senders, lag["events"])
            cpu = [round(proc_cpu_s(pid) - before, 2) for pid, before in zip(pids, cpu,
                                                                                strict=True)]
            throughput["cpu_seconds"] = {"node_a": cpu[0], "node_b": cpu[1], "redis": cpu[2]}
            health = [await n.health(http) for n in nodes]
    finally:
        for node in nodes:
            node.stop()
    return {"lag": lag, "throughput": throughput,
            "stream_lag_events_at_end": [h["stream_lag_events"] for h in health]}


def start_redis(tmp: Path, fsync: str) -> tuple[subprocess.Popen[bytes], str]:
    """redis-server on a free loopback port; its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                             str(tmp), "--save", "", "--appendonly", "yes", "--appendfsync",
                             fsync], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000, help="events in the run")
    parser.add_argument("--post-size", type=int, default=1000, help="events per POST")
    parser.add_argument("--senders", type=int, default=8, help="POSTs in flight")
    parser.add_argument("--lag-events", type=int, default=1000)
    parser.add_argument("--lag-rate", type=float, default=200.0, help="events/s to node A")
    parser.add_argument("--fsync", choices=("always", "everysec"), default="always")
    parser.add_argument("--quick", action="store_true", help="a ~15 s smoke run")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "redis.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.lag_events = 20_000, 100
    started = time.perf_counter()
    print(f"redis benchmark: two nodes, {args.events:,} events in POSTs of {args.post_size} "
          f"({args.senders} in flight), appendfsync {args.fsync}, python "
          f"{platform.python_version()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    report: dict[str, Any] = {"name": "redis", "quick": args.quick, "fsync": args.fsync,
                              "python": platform.python_version(),
                              "load_average_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="wallboard-redis-bench-") as name:
        tmp = Path(name)
        redis, url = start_redis(tmp, args.fsync)
        try:
            report.update(asyncio.run(run(args, tmp, url, redis.pid)))
        finally:
            redis.terminate()
            redis.wait(timeout=10)
    t, lag = report["throughput"], report["lag"]
    print(f"end to end through Redis, two nodes: {t['events_per_s']:,} events/s "
          f"({t['events']:,} events in {t['seconds']}s until both nodes folded them; "
          f"acknowledged at {t['acked_events_per_s']:,} events/s)  TARGET >= "
          f"{TARGET_EVENTS_PER_S:,}: x{t['events_per_s'] / TARGET_EVENTS_PER_S:.2f}")
    cpu = t["cpu_seconds"]
    per_cpu_s = t["events"] / max(sum(cpu.values()), 0.01)
    report["events_per_cpu_second"] = round(per_cpu_s)
    # On a shared machine the wall clock measures the neighbours too; CPU time much less.
    report["cpu_bound_events_per_s"] = round(per_cpu_s * (os.cpu_count() or 1))
    print(f"CPU seconds in the run: node A {cpu['node_a']}, node B {cpu['node_b']}, redis "
          f"{cpu['redis']} ({per_cpu_s:,.0f} events per CPU-second of all three; with all "
          f"{os.cpu_count()} cpus to themselves: {report['cpu_bound_events_per_s']:,} "
          f"events/s, x{report['cpu_bound_events_per_s'] / TARGET_EVENTS_PER_S:.2f} of the "
          f"target)")
    print(f"node-to-node lag (stored by A's request, folded by B), {lag['events']} events at "
          f"{lag['rate_per_s']:g}/s: p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
