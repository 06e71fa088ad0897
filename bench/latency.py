"""Benchmark: event-to-client latency with N websocket clients at R events/s, beside its floor.

One run, two phases with the same client processes: first a bare `websockets` broadcast of a
~2 KB frame every push interval (bench/latency_bare.py: what any broadcast costs on this
machine, the clients' own CPU included), then the wallboard server: a few isolated events on
the idle server, then R events/s. Prints the fan-out p99 beside the bare p99 and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from benchio import free_port
from latency_clients import Workers, client_worker
from latency_probe import run_probed_server, summarize_probe
from latency_report import (
    TARGET_CLIENTS,
    TARGET_RATE,
    add_figures,
    bare_figures,
    phase_latency,
    print_profile,
    print_report,
    rtt_ms,
    summary,
)
from latency_stats import BOARD, QUEUE, TOKEN, CpuSampler, Sender, ensure_open_files

SCRIPT = Path(__file__).resolve()


def read_metric(text: str, name: str) -> float | None:
    """The value of an unlabelled metric in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "_total "):
            return float(line.split()[-1])
    return None


def write_config(path: Path, push_interval_ms: int, clients: int,
                 journal_batch_ms: int | None = None) -> None:
    """A server config: a webhook source, the bench queue and a few ordinary ones."""
    config = {
        "site": {"name": "Latency bench", "timezone": "UTC"},
        "server": {"push_interval_ms": push_interval_ms, "max_body_bytes": 16 * 1024 * 1024,
                   "send_timeout_s": 10,
                   # Every TV and the sender come from 127.0.0.1, as behind a proxy.
                   "max_connections_per_ip": clients + 256},
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
    if journal_batch_ms is not None:  # a what-if: the product's default otherwise
        config["journal"]["batch_ms"] = journal_batch_ms
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


async def measure_bare(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The floor: the same clients fed by a bare broadcast every push interval."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT.parent / "latency_bare.py"), "--port", str(port),
        "--interval-ms", str(args.push_interval_ms), "--bytes", str(args.bare_bytes),
        stdout=asyncio.subprocess.PIPE)
    workers = Workers()
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 30)
        if line.strip() != b"READY":
            raise RuntimeError(f"bare broadcast server failed: {line!r}")
        await workers.start(SCRIPT, f"ws://127.0.0.1:{port}/ws?board={BOARD}", args.clients,
                            args.client_procs, args.compression, tmp / "bare")
        await asyncio.sleep(1.0)
        sampler = CpuSampler({"server": [server.pid], "clients": workers.pids,
                              "sender": [os.getpid()]})
        first = sampler.read()
        await workers.tell(b"GO")
        go = time.time()
        await asyncio.sleep(args.duration)
        stop = time.time()
        last = sampler.read()
        results = await workers.finish()
    finally:
        await workers.kill()
        await stop_process(server, signal.SIGKILL)
    report = bare_figures(results, go, stop)
    report.update(clients_requested=args.clients, connect_s=workers.connect_s,
                  message_bytes=args.bare_bytes,
                  cpu_pct_of_one_core={k: round(v, 1)
                                       for k, v in sampler.usage(first, last).items()})
    return report


async def idle_events(args: argparse.Namespace, sender: Sender,
                      session: aiohttp.ClientSession) -> list[float]:
    """Isolated events on the idle server, each after a quiet spell longer than the interval."""
    rtts = []
    for _ in range(args.idle_events):
        # A random phase: the once-a-second refresh must not decide when a change goes out.
        await asyncio.sleep(args.push_interval_ms / 1000 * 2 + random.uniform(0.0, 0.5))
        rtts.append(await sender.single(session))
    await asyncio.sleep(0.5)
    return rtts


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the bare broadcast, then the server with the same clients; compute the figures."""
    limits = ensure_open_files(args.clients + 1024)
    tmp = Path(tempfile.mkdtemp(prefix="wallboard-latency-"))
    for sub in ("bare", "server"):
        (tmp / sub).mkdir()
    report: dict[str, Any] = {"open_files": limits}
    print("bare broadcast ...", flush=True)
    report["bare"] = await measure_bare(args, tmp)
    config = tmp / "config.yaml"
    write_config(config, args.push_interval_ms, args.clients, args.journal_batch_ms)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_cmd = [sys.executable, "-m", "wallboard", "--log-level", "WARNING", "serve",
                  "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    probe = tmp / "probe.json"
    if args.probe_server:
        server_cmd[1:3] = [str(SCRIPT), "--probe-server", str(probe)]
    if args.profile_server:
        server_cmd[1:1] = ["-m", "cProfile", "-o", str(args.profile_server)]
    report["server_cmd"] = server_cmd
    server_log = (tmp / "server.log").open("wb")
    env = dict(os.environ)
    if args.fanout_slice:
        env["WALLBOARD_BENCH_FANOUT_SLICE"] = str(args.fanout_slice)
    server = await asyncio.create_subprocess_exec(
        *server_cmd, stdout=server_log, stderr=asyncio.subprocess.STDOUT, env=env)
    workers = Workers()
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64)) as session:
            report["server_start_s"] = round(await wait_healthy(session, base, server), 2)
            await workers.start(SCRIPT, f"ws://127.0.0.1:{port}/ws?board={BOARD}",
                                args.clients, args.client_procs, args.compression,
                                tmp / "server")
            if workers.errors:
                report["connect_errors"] = workers.errors
            report["connect_s"] = workers.connect_s
            print(f"server up in {report['server_start_s']}s on port {port}; "
                  f"{workers.connected}/{args.clients} clients connected in "
                  f"{workers.connect_s}s ({args.client_procs} client process(es), compression "
                  f"{args.compression} asked); {args.idle_events} isolated events, then "
                  f"{args.rate:,} events/s for {args.duration:g}s ...", flush=True)
            await asyncio.sleep(1.0)  # let connection snapshots settle
            sender = Sender(f"{base}/api/events", args.rate, args.duration,
                            args.batch_ms / 1000)
            idle_rtts = await idle_events(args, sender, session)
            idle_count = sender.sent
            sampler = CpuSampler({"server": [server.pid], "clients": workers.pids,
                                  "sender": [os.getpid()]})
            sampling = asyncio.create_task(sampler.run())
            await workers.tell(b"GO")
            go_wall = time.time()
            sent_cpu = sampler.read()
            await sender.run(session)
            send_cpu = sampler.read()
            await asyncio.sleep(args.drain)
            async with session.get(f"{base}/metrics") as resp:
                metrics = await resp.text()
            results = await workers.finish()
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
    except BaseException:
        log = (tmp / "server.log").read_text(errors="replace")[-3000:]
        print(f"server log ({tmp / 'server.log'}):\n{log}", file=sys.stderr)
        raise
    finally:
        await workers.kill()
        await stop_process(server)
        server_log.close()

    usage = sampler.usage(sent_cpu, send_cpu)
    clients = [c for w in results for c in w["clients"]]
    window = max(w["stop"] for w in results) - go_wall
    send_span = max(sender.last_send - sender.first_send, 1e-9)
    messages = sum(c["messages"] for c in clients)
    per_second: dict[int, int] = {}
    for w in results:
        for sec, n in w["per_second"].items():
            per_second[int(sec)] = per_second.get(int(sec), 0) + n
    full_seconds = range(math.ceil(sender.first_send), math.floor(sender.last_send))
    sending_rate = (sum(per_second.get(sec, 0) for sec in full_seconds) / len(full_seconds)
                    if full_seconds else messages / window)
    idle = phase_latency(results, sender.batches[:idle_count])
    idle.update(events=idle_count, post_rtt_ms=rtt_ms(idle_rtts))
    total_bytes = sum(c["bytes"] for c in clients)
    report.update(phase_latency(results, sender.batches, skip=idle_count))
    report.update({
        "idle": idle,
        "clients_requested": args.clients,
        "clients_connected": sum(c["connected"] for c in clients),
        "clients_closed_early": sum(c["closed_early"] for c in clients),
        "server_ws_clients_metric": read_metric(metrics, "wallboard_websocket_clients"),
        "server_ws_dropped_metric": read_metric(metrics, "wallboard_websocket_clients_dropped"),
        # The journal's commits (fsync each with journal.sync: full) are in every POST's
        # round trip and before every fold: a busy disk shows here first.
        "journal_commit_mean_ms": round(1000 * (read_metric(
            metrics, "wallboard_journal_batch_seconds_sum") or 0.0) / max(1.0, read_metric(
                metrics, "wallboard_journal_batch_seconds_count") or 0.0), 2),
        "events_sent": sender.sent - idle_count,
        "events_per_s_sent": round((sender.sent - idle_count) / send_span, 1),
        "batches": len(sender.batches) - idle_count,
        "post_errors": len(sender.errors),
        "post_error_examples": sender.errors[:3],
        "post_rtt_ms": rtt_ms(sender.rtts),
        "messages_received": messages,
        "messages_per_s": round(sending_rate, 1),
        "messages_per_s_incl_drain": round(messages / window, 1),
        "snapshots_received": sum(c["snapshots"] for c in clients),
        "sequence_gaps": sum(c.get("gaps", 0) for c in clients),
        "bytes_per_s": round(total_bytes / window),
        "bytes_per_message": round(total_bytes / messages) if messages else 0,
        "cpu_pct_of_one_core_while_sending": {k: round(v, 1) for k, v in usage.items()},
        "cpu_per_second": sampler.per_second(),
        "client_loop_lag_ms": [w["loop_lag_ms"] for w in results],
        "client_process_cpu_s": [round(w["cpu_s"], 2) for w in results],
        "load_average": [round(v, 2) for v in os.getloadavg()],
    })
    if args.probe_server and probe.exists():
        report["server_probe"] = summarize_probe(probe, go_wall, go_wall + send_span + 0.2,
                                                 report["clients_connected"])
    if args.profile_server and Path(args.profile_server).exists():
        report["server_profile"] = print_profile(Path(args.profile_server))
    shutil.rmtree(tmp, ignore_errors=True)
    return report


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
    parser.add_argument("--client-procs", type=int, default=2,
                        help="client processes (one per core: the clients are part of the floor)")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="websocket permessage-deflate, as browsers negotiate it")
    parser.add_argument("--profile-server", type=Path, help="run the server under cProfile")
    parser.add_argument("--probe-server", action="store_true",
                        help="time snapshot builds, flushes and fan-out inside the server")
    parser.add_argument("--idle-events", type=int, default=20,
                        help="isolated events on the idle server before the load")
    parser.add_argument("--journal-batch-ms", type=int,
                        help="what-if: the journal's wait for more appends before a commit")
    parser.add_argument("--fanout-slice", type=int,
                        help="what-if: clients written to per loop turn (implies the probe)")
    parser.add_argument("--bare-bytes", type=int, default=2048,
                        help="size of the bare broadcast's message")
    parser.add_argument("--quick", action="store_true", help="a ~10 s smoke run")
    parser.add_argument("--out", type=Path, help="the whole report (default "
                        "bench/results/latency.json)")
    parser.add_argument("--json", type=Path, help="the acceptance figures alone: `figures` "
                        "(as bench/report.py reads them) and a flat `summary`")
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
    args.probe_server = args.probe_server or bool(args.fanout_slice)
    if args.quick:
        args.clients, args.rate, args.duration, args.drain = 50, 200, 4.0, 1.0
        args.idle_events = min(args.idle_events, 5)
    out = args.out or SCRIPT.parent / "results" / "latency.json"
    print(f"latency benchmark: {args.clients} clients, {args.rate:,} events/s, "
          f"{args.duration:g}s, push interval {args.push_interval_ms} ms"
          f"{' (server probed)' if args.probe_server else ''}, python "
          f"{platform.python_version()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    started = time.perf_counter()
    load_before = [round(v, 2) for v in os.getloadavg()]
    report = asyncio.run(measure(args))
    report["summary"] = summary(report, args.push_interval_ms, args.clients, args.rate)
    report["summary"]["load_average_before"] = load_before
    add_figures(report)
    print_report(report)
    report.update(name="latency", quick=args.quick, clients=args.clients, rate=args.rate,
                  duration_s=args.duration, push_interval_ms=args.push_interval_ms,
                  compression=args.compression,
                  elapsed_s=round(time.perf_counter() - started, 1))
    figures = {"figures": report["figures"], "summary": report["summary"]}
    for path, body in ((out, report), (args.json, figures)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body, indent=2, default=str) + "\n")
            print(f"wrote {path}")
    print(f"{report['elapsed_s']}s")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
