"""Benchmark: event-to-client latency with N websocket clients while R events/s are posted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from benchio import free_port
from latency_clients import client_worker
from latency_probe import run_probed_server, summarize_probe
from latency_stats import (
    BOARD,
    QUEUE,
    TOKEN,
    CpuSampler,
    Sender,
    ensure_open_files,
    latency_pairs,
    pct,
    weighted_percentiles,
)

TARGET_P99_MS = 300.0
TARGET_CLIENTS = 500
TARGET_RATE = 1000


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
        "post_rtt_ms": {"p50": round(1000 * pct(rtts, 0.5), 2),
                        "p99": round(1000 * pct(rtts, 0.99), 2),
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
