"""Soak bench: a server with a SQLite journal for many minutes under load, churning TVs.

One server process (`wallboard serve`, log at INFO captured to a file), a load generator in
this process (`--rate` events/s of contacts and agents over `--queues` queues, batched POSTs),
`--tvs` websocket TVs in a separate process (bench/soak_tvs.py) that each minute reconnect,
stall (stop reading) or vanish (RST, no close), a Freshdesk-like source that is down for the
first 20 s of every minute, an announcement and a config edit (a TV token added or removed;
the config watcher applies it) every minute. Every minute it records the server's RSS, open
fds, journal file sizes, a probe event's latency to the TVs, /api/snapshot, /metrics and
/healthz (the floor) latencies and the log lines by level. At the end: a restart storm (the
server restarted, every TV reconnecting), the table, slopes after the warm-up and a JSON
report. Everything it starts is stopped and its temporary directory removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
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
from benchio import figure, free_port, write_report
from latency_stats import ensure_open_files
from soak_load import PROBE_QUEUE, TOKEN, FlapPeer, Load, Probe, contact_events, queue_names
from soak_report import LogCounter, ms, slope_per_hour, table, window_p99

SCRIPT = Path(__file__).resolve()
ADMIN = "soak-admin-token-0123456789"
TV_TOKEN = "soak-tv-token-0123456789"
SPARE_TOKEN = "soak-spare-token-0123456789"  # added and removed by the config edits
BOARD = "floor"


def write_config(path: Path, args: argparse.Namespace, flap_port: int, edit: int) -> None:
    """The server's config; `edit` toggles a spare TV token (what the config edits change)."""
    queues = queue_names(args.queues)
    tiles: list[dict[str, Any]] = [
        {"kpi": "offered", "queue": PROBE_QUEUE, "window": "1h"},
        {"kpi": "waiting", "type": "sparkline"}, {"kpi": "answered", "window": "15m",
                                                  "type": "sparkline"},
        {"kpi": "service_level", "window": "15m", "type": "sparkline"},
        {"type": "queue_table", "window": "15m", "cols": 2, "rows": 2},
    ]
    tiles += [{"kpi": "waiting", "queue": q} for q in queues[:8]]
    tokens = [TV_TOKEN] + ([SPARE_TOKEN] if edit % 2 else [])
    config = {
        "site": {"name": "Soak", "timezone": "UTC"},
        "server": {"push_interval_ms": 200, "send_timeout_s": 10,
                   "max_body_bytes": 4 * 1024 * 1024,
                   "max_connections_per_ip": args.tvs * 2 + 256},
        "queues": {**{q: {"label": q.upper(), "channel": "voice"} for q in queues},
                   PROBE_QUEUE: {"label": "Probe", "channel": "voice"}},
        "sources": {
            "hook": {"type": "webhook", "token": TOKEN},
            "flap": {"type": "freshdesk", "url": f"http://127.0.0.1:{flap_port}",
                     "api_key": "soak-api-key-0123", "interval_s": 5,
                     "initial_lookback_s": 60},
        },
        "boards": {BOARD: {"title": "Soak floor", "columns": 6, "tiles": tiles}},
        "access": {"enabled": True, "admin_token": ADMIN, "boards": {BOARD: tokens}},
        "journal": {"data_dir": str(path.parent / "journal")},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.replace(path)  # the watcher never reads half a file


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM it when the bench dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_status(pid: int) -> tuple[float | None, int | None]:
    """(RSS in MB, open fds) of a process, None when gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:"))
        return round(rss / 1024, 1), len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None, None


def journal_sizes(data_dir: Path) -> tuple[float, float]:
    """(database MB, WAL MB) of the SQLite journal."""
    db = wal = 0
    for entry in data_dir.glob("*") if data_dir.exists() else []:
        size = entry.stat().st_size if entry.is_file() else 0
        if entry.name.endswith("-wal"):
            wal += size
        elif entry.suffix in (".db", ".sqlite", ".sqlite3"):
            db += size
    return round(db / 2**20, 2), round(wal / 2**20, 2)


async def timed_get(http: aiohttp.ClientSession, url: str, into: list[float],
                    every_s: float, **kw: Any) -> None:
    """GET `url` every `every_s` until cancelled; round trips (s) appended to `into`."""
    while True:
        start = time.perf_counter()
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with http.get(url, **kw) as resp:
                await resp.read()
                if resp.status == 200:
                    into.append(time.perf_counter() - start)
        await asyncio.sleep(every_s)


class Server:
    """The server process: started, restarted, stopped; its log in one file (appended)."""

    def __init__(self, tmp: Path, config: Path) -> None:
        self.tmp, self.config = tmp, config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> float:
        """Start and wait for /healthz; seconds taken."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "wallboard", "--log-level", "INFO", "serve",
                "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port),
                cwd=self.tmp, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=die_with_parent)
        while time.monotonic() - started < 120:
            if self.proc.returncode is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            await asyncio.sleep(0.05)
        raise RuntimeError("server not healthy within 120 s")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal it and wait; SIGKILL past 30 s."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class TVs:
    """The TV process (bench/soak_tvs.py), talked to one line at a time."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, args: argparse.Namespace, url: str) -> None:
        """Start the TVs; they connect and reconnect by themselves."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "import sys, asyncio; sys.path.insert(0, sys.argv[1]); import soak_tvs; "
            "asyncio.run(soak_tvs.worker(sys.argv[2], *map(int, sys.argv[3:5]), "
            "*map(float, sys.argv[5:])))",
            str(SCRIPT.parent), url, str(args.tvs), "5", str(args.reconnect_share),
            str(args.stall_share), str(args.vanish_share), "60",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent, limit=64 * 2**20)  # a sample lists every probe seen

    async def ask(self, word: str, timeout: float = 60) -> dict[str, Any]:
        """Send a command, read its one-line JSON answer."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(word.encode() + b"\n")
        await self.proc.stdin.drain()
        return orjson.loads(await asyncio.wait_for(self.proc.stdout.readline(), timeout))

    async def stop(self) -> None:
        """STOP, then kill if it lingers."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.write(b"STOP\n")
            await proc.stdin.drain()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def edits(http: aiohttp.ClientSession, args: argparse.Namespace, config: Path,
                base: str, flap_port: int, counts: dict[str, int]) -> None:
    """Every minute (offset 30 s): an announcement, and the config file rewritten."""
    await asyncio.sleep(30)
    while True:
        counts["edits"] += 1
        write_config(config, args, flap_port, counts["edits"])
        async with http.post(f"{base}/api/announcements", json={
                "text": f"Soak announcement {counts['edits']}", "ttl_s": 90},
                headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            counts["announcements"] += resp.status == 201
        await asyncio.sleep(60)


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The whole soak; returns the report."""
    config = tmp / "wallboard.yaml"
    flap_port = free_port()
    write_config(config, args, flap_port, 0)
    server, tvs, flap = Server(tmp, config), TVs(), FlapPeer()
    logs = LogCounter(server.log)
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "load_average_at_start": os.getloadavg()[0]}
    counts = {"edits": 0, "announcements": 0}
    tasks: list[asyncio.Task[Any]] = []
    reads: dict[str, list[float]] = {"api": [], "metrics": [], "health": []}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
        try:
            await flap.start(flap_port)
            report["server_start_s"] = round(await server.start(http), 2)
            base = server.url
            await tvs.start(args, f"ws://127.0.0.1:{server.port}/ws?board={BOARD}"
                            f"&token={TV_TOKEN}")
            load = Load(f"{base}/api/events", args.rate,
                        contact_events(queue_names(args.queues), args.agents))
            probe = Probe(f"{base}/api/events")
            tasks = [asyncio.create_task(c) for c in (
                load.run(http), probe.run(http), flap.flap(60, 20),
                edits(http, args, config, base, flap_port, counts),
                timed_get(http, f"{base}/api/snapshot?token={TV_TOKEN}", reads["api"], 1.0),
                timed_get(http, f"{base}/metrics", reads["metrics"], 5.0),
                timed_get(http, f"{base}/healthz", reads["health"], 1.0))]
            t0 = time.monotonic()
            for minute in range(1, args.minutes + 1):
                await asyncio.sleep(max(0.0, t0 + 60 * minute - time.monotonic()))
                tv = await tvs.ask("SAMPLE")
                rows.append(minute_row(minute, server, tmp, tv, probe, load, reads, logs))
                print(table(rows[-1:]).splitlines()[-1] if minute > 1 else table(rows),
                      flush=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks = []
            report["restart_storm"] = await restart_storm(server, tvs, http)
            print(f"restart storm: {report['restart_storm']}", flush=True)
            report.update(events_sent=load.sent, post_errors=len(load.errors),
                          post_error_examples=load.errors[:5], load_behind=load.behind,
                          probes=probe.n, flap_requests=flap.requests,
                          flap_failed=flap.failed, **counts)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await tvs.stop()
            await server.stop(signal.SIGINT)
            await flap.stop()
    final = logs.read()  # the stop's lines, and the restart's
    report["final_log"] = final
    report["unexpected_log_lines"] = logs.examples
    report["rows"] = rows
    return report


def minute_row(minute: int, server: Server, tmp: Path, tv: dict[str, Any], probe: Probe,
               load: Load, reads: dict[str, list[float]], logs: LogCounter) -> dict[str, Any]:
    """One minute's figures (the reads and probe receptions since the last row)."""
    assert server.proc is not None
    rss, fds = proc_status(server.proc.pid)
    db, wal = journal_sizes(tmp / "journal")
    lat = [t - probe.sent[v] for v, t in tv["probes"] if v in probe.sent and t >= probe.sent[v]]
    figures = {name: ms(values) for name, values in reads.items()}
    for values in reads.values():
        values.clear()
    log = logs.read()
    post = ms(load.take())
    return {
        "minute": minute, "rss_mb": rss, "fds": fds, "db_mb": db, "wal_mb": wal,
        "events": load.sent, "tvs_connected": tv["connected"], "tvs_stalled": tv["stalled"],
        "probe_p50_ms": ms(lat)["p50"], "probe_p99_ms": ms(lat)["p99"], "probe_n": len(lat),
        "api_p50_ms": figures["api"]["p50"], "api_p99_ms": figures["api"]["p99"],
        "metrics_p50_ms": figures["metrics"]["p50"], "metrics_p99_ms": figures["metrics"]["p99"],
        "health_p50_ms": figures["health"]["p50"], "health_p99_ms": figures["health"]["p99"],
        "post_p99_ms": post["p99"], "post_errors": len(load.errors),
        "messages": tv["messages"], "snapshots": tv["snapshots"], "tv_bytes": tv["bytes"],
        "connects": tv["connects"], "server_closes": tv["server_closes"], "gaps": tv["gaps"],
        "reconnects": tv["reconnects"], "stalls": tv["stalls"], "vanishes": tv["vanishes"],
        "log_info": log["INFO"], "log_warning": log["WARNING"],
        "log_error": log["ERROR"] + log["CRITICAL"],
        "log_injected": log["injected_warning"] + log["injected_error"],
        "tracebacks": log["traceback"], "never_retrieved": log["never_retrieved"],
        "load1": round(os.getloadavg()[0], 2),
    }


async def restart_storm(server: Server, tvs: TVs, http: aiohttp.ClientSession
                        ) -> dict[str, Any]:
    """Stop the server, start it again: every TV reconnects; when each has its snapshot."""
    killed = time.time()
    await server.stop(signal.SIGTERM)
    restart_s = await server.start(http)
    healthy = time.time()
    result = await tvs.ask(f"STORM {killed} {healthy}", timeout=90)
    result["restart_s"] = round(restart_s, 2)
    return result


def summarize(report: dict[str, Any], warmup: int) -> None:
    """Slopes after the warm-up, the first/last five minutes' p99, counts; headline figures."""
    rows = report["rows"]
    last = rows[-1]["minute"] if rows else 0
    s = report["summary"] = {
        "rss_mb_per_h": slope_per_hour(rows, "rss_mb", warmup),
        "fds_per_h": slope_per_hour(rows, "fds", warmup),
        "db_mb_per_h": slope_per_hour(rows, "db_mb", warmup),
        "wal_mb_per_h": slope_per_hour(rows, "wal_mb", warmup),
        "probe_p99_ms_per_h": slope_per_hour(rows, "probe_p99_ms", warmup),
        "api_p99_ms_per_h": slope_per_hour(rows, "api_p99_ms", warmup),
        "probe_p99_first5_ms": window_p99(rows, warmup + 1, warmup + 5),
        "probe_p99_last5_ms": window_p99(rows, last - 4, last),
        "log_errors": sum(r["log_error"] for r in rows) + report["final_log"]["ERROR"]
        + report["final_log"]["CRITICAL"],
        "tracebacks": sum(r["tracebacks"] for r in rows) + report["final_log"]["traceback"],
        "never_retrieved": sum(r["never_retrieved"] for r in rows)
        + report["final_log"]["never_retrieved"],
        "injected_lines": sum(r["log_injected"] for r in rows),
        "minutes": len(rows),
        "events_per_s": round(report["events_sent"] / max(1, 60 * len(rows)), 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    first, later = s["probe_p99_first5_ms"], s["probe_p99_last5_ms"]
    s["probe_p99_drift"] = round(later / first - 1, 3) if first and later else None
    health = sorted(r["health_p99_ms"] for r in rows if r["health_p99_ms"] is not None)
    floor = health[len(health) // 2] if health else None
    api = sorted(r["api_p99_ms"] for r in rows if r["api_p99_ms"] is not None)
    if s["rss_mb_per_h"] is not None:
        figure(report, "RSS slope after warm-up", s["rss_mb_per_h"], "MB/h",
               target="<= 5", met=s["rss_mb_per_h"] <= 5)
    if api:
        figure(report, "/api/snapshot p99 (median minute)", api[len(api) // 2], "ms",
               floor=floor, floor_name="/healthz p99", target="<= 20",
               met=api[len(api) // 2] <= 20)
    if s["probe_p99_drift"] is not None:
        figure(report, "event->TV p99, last 5 min vs first 5", 100 * s["probe_p99_drift"], "%",
               target="within 20 %", met=abs(s["probe_p99_drift"]) <= 0.2)
    figure(report, "ERROR lines not injected", s["log_errors"] + s["tracebacks"], "lines",
           target="0", met=s["log_errors"] + s["tracebacks"] == 0)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the soak, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--warmup-minutes", type=int, default=10,
                        help="slopes are fitted on the minutes after this")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--tvs", type=int, default=500)
    parser.add_argument("--reconnect-share", type=float, default=0.10, help="per minute")
    parser.add_argument("--stall-share", type=float, default=0.03, help="per minute")
    parser.add_argument("--vanish-share", type=float, default=0.03, help="per minute")
    parser.add_argument("--out", type=Path, default=SCRIPT.parent / "results" / "soak.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ensure_open_files(2 * args.tvs + 1024)
    tmp = Path(tempfile.mkdtemp(prefix="wallboard-soak-"))
    print(f"soak: {args.minutes} min, {args.rate:g} events/s, {args.queues} queues, "
          f"{args.agents} agents, {args.tvs} TVs; load average {os.getloadavg()}; {tmp}",
          flush=True)
    try:
        report = asyncio.run(run(args, tmp))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    summarize(report, min(args.warmup_minutes, max(0, args.minutes - 2)))
    print(table(report["rows"]))
    for key, value in report["summary"].items():
        print(f"  {key}: {value}")
    for f in report.get("figures", []):
        print(f"  {f['figure']}: {f['value']} {f['unit']} (TARGET {f['target']}: "
              f"{'met' if f['met'] else 'MISSED'})")
    for line in report["unexpected_log_lines"]:
        print(f"  unexpected: {line}")
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
