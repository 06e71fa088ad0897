"""A hostile run (issue 17): the issue's findings, then random near-valid events, with SIGKILLs.

A `wallboard serve` with a SQLite journal on loopback gets, through the real webhook, each
finding of issue 17 (1.7e308 durations, 1e12 agents, waiting 1e300, 1 MB names, 30,000 agents,
year 9999, a 1 MB body of `1\\n`, hour-old events, duplicates, slow connections, a foreign
Origin), then batches drawn from the property suite's strategies (tests/hostile_events.py)
until the time budget is spent, with a few SIGKILL restarts on the same journal in between.

Printed: events tried, rejected (by reason), stored, duplicates, late, lost (acknowledged but
not in the journal, read back with `wallboard journal export`, or counts that differ after a
restart), 5xx answers and restarts that failed. Issue 17's acceptance: the last three are 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import os
import resource
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from benchio import write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the strategies and the server harness of the test suite

from hypothesis.errors import NonInteractiveExampleWarning  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402

from tests.hostile_events import batches  # noqa: E402
from tests.hostile_server import HostileServer, counts, encode, materialize  # noqa: E402

MB = 1 << 20


class Tally:
    """What the run did, per scenario and in total."""

    def __init__(self) -> None:
        self.rows: dict[str, Counter[str]] = {}
        self.reasons: Counter[str] = Counter()
        self.acknowledged: set[str] = set()  # ids of events the server took (stored or dup)
        self.lost = 0
        self.restart_mismatches = 0
        self.restarts = 0
        self.restarts_failed = 0
        self.unhealthy: list[str] = []
        self.notes: list[str] = []
        self.health_ms: list[float] = []
        self.current = ""  # the scenario under way, for progress lines

    def row(self, scenario: str) -> Counter[str]:
        return self.rows.setdefault(scenario, Counter())

    def total(self, key: str) -> int:
        return sum(row[key] for row in self.rows.values())


async def post(server: HostileServer, tally: Tally, scenario: str, events: list[Any] | None,
               body: bytes | None = None, content_type: str = "application/json") -> None:
    """Post one request and book its answer under `scenario`."""
    row = tally.row(scenario)
    data = body if body is not None else encode(events or [])
    tried = len(events) if events is not None else data.count(b"\n")
    row["tried"] += tried
    row["requests"] += 1
    try:
        reply = await server.request("POST", "/api/events", data, {
            "Authorization": "Bearer test-token-123", "Content-Type": content_type},
            timeout=15)
    except (TimeoutError, aiohttp.ClientError):
        row["timeouts"] += 1  # no answer: the sender would retry
        return
    row[f"status_{reply.status}"] += 1
    answer = reply.body if isinstance(reply.body, dict) else {}
    if reply.status >= 500 or "accepted" not in answer:
        if reply.status < 500:
            row["rejected"] += tried
            tally.reasons[f"request_{reply.status}"] += tried
        return
    row["stored"] += answer["accepted"]
    row["duplicates"] += answer.get("duplicates", 0)
    row["late"] += answer.get("late", 0)
    rejected = answer.get("rejected", [])
    total = answer.get("rejected_total", len(rejected))
    row["rejected"] += total
    reasons = answer.get("rejected_reasons") or Counter(r.get("reason", "unnamed")
                                                        for r in rejected)
    tally.reasons.update(reasons)
    if events is not None and total == len(rejected):
        refused = {r.get("index") for r in rejected}
        tally.acknowledged.update(str(e["id"]) for i, e in enumerate(events)
                                  if i not in refused and isinstance(e, dict)
                                  and isinstance(e.get("id"), str | int))


async def check_health(server: HostileServer, tally: Tally, after: str) -> None:
    """/healthz within a second, snapshot and metrics parse; else SIGKILL and restart."""
    started = time.monotonic()
    broken = await server.broken()
    tally.health_ms.append((time.monotonic() - started) * 1000)
    if broken:
        tally.unhealthy.append(after)
        await restart(server, tally, f"unhealthy after {after}", compare=False)


async def restart(server: HostileServer, tally: Tally, why: str, compare: bool = True) -> None:
    """SIGKILL and start on the same journal; on failure, book its losses and start afresh."""
    tally.restarts += 1
    before = None
    if compare:
        try:
            before = counts(await server.fresh_snapshot(time.time()))
        except (AssertionError, TimeoutError, OSError) as exc:
            tally.notes.append(f"no snapshot before the restart ({why}): {exc!s:.100}")
    try:
        await server.restart()
    except (AssertionError, TimeoutError, OSError) as exc:
        tally.restarts_failed += 1
        tally.notes.append(f"restart ({why}) failed: {str(exc).splitlines()[0][:200]}")
        await asyncio.to_thread(book_losses, server, tally)
        await server.open()
        return
    if before is not None:
        after = counts(await server.fresh_snapshot(time.time()))
        differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if differ:
            tally.restart_mismatches += len(differ)
            tally.notes.append(f"after restart ({why}) {len(differ)} counts differ: {differ[:5]}")


def book_losses(server: HostileServer, tally: Tally) -> None:
    """Acknowledged ids missing from this journal (read with `wallboard journal export`)."""
    assert server.server is not None
    result = server.server.cli("journal", "export", "--since", "1970-01-01T00:00:00Z")
    stored: set[str] = set()
    for line in result.stdout.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            event = orjson.loads(line)
            if isinstance(event, dict) and event.get("id") is not None:
                stored.add(str(event["id"]))
    if result.returncode != 0:
        tally.notes.append(f"journal export failed: {result.stderr.strip()[:200]}")
    tally.lost += len(tally.acknowledged - stored)
    tally.acknowledged.clear()


def contact(n: int, queue: str = "sales", **extra: Any) -> dict[str, Any]:
    """A valid contact.queued, or another type with `extra`."""
    return {"type": "contact.queued", "id": f"f-{n}", "ts": time.time(), "queue": queue,
            "contact_id": f"c{n}", **extra}


async def step(server: HostileServer, tally: Tally, name: str, work: Any,
               limit: float = 60.0) -> None:
    """One bounded step of a scenario; past `limit`, SIGKILL and restart the server."""
    if tally.current != name:
        tally.current = name
        print(f"  {name} ...", flush=True)
    try:
        await asyncio.wait_for(work, limit)
    except Exception as exc:  # a hostile run books what broke and carries on
        tally.notes.append(f"{name}: {type(exc).__name__} {exc!s:.100}")
        tally.unhealthy.append(name)
        await restart(server, tally, f"stuck in {name}", compare=False)


async def findings(server: HostileServer, tally: Tally, quick: bool, ids: int) -> None:
    """Issue 17's findings, one scenario each, with a health check after each."""
    now = time.time
    ended = {"type": "contact.ended", "agent": "alice"}
    scenarios: list[tuple[str, list[list[Any]]]] = [
        ("talk/hold/wrap 1.7e308", [[contact(1), contact(2, **ended, talk_s=1.7e308,
                                                          hold_s=1.7e308, wrap_s=1.7e308)]]),
        ("talk 1.797e308 other queue", [[contact(3, "chat", **ended,
                                                 talk_s=1.7976931348623157e308)]]),
        ("agents 1e12", [[contact(4), contact(5), {
            "type": "queue.snapshot", "id": "f-6", "ts": now(), "queue": "sales",
            "waiting": 1, "agents": {"available": 1e12}}]]),
        ("waiting 1e300", [[{"type": "queue.snapshot", "id": "f-7", "ts": now(),
                             "queue": "chat", "waiting": 1e300}]]),
        # Just under the webhook's 1 MiB body limit, so that the name itself is what is tried.
        ("1 MB queue name", [[contact(10 + i, "q" * (MB - 512))]
                             for i in range(1 if quick else 5)]),
        ("ts 9999, 1e300, wait 1.2e29", [[
            contact(20, ts="9999-12-31T23:59:59Z"), contact(21, ts=1e300),
            contact(22, type="contact.answered", agent="bob", wait_s=1.2e29)]]),
        ("hour-old events", [[contact(30 + i, ts=now() - 3600) for i in range(10)]]),
    ]
    for name, requests in scenarios:
        for events in requests:
            await step(server, tally, name, post(server, tally, name, events))
        await step(server, tally, name, check_health(server, tally, name))
    agents = 3_000 if quick else 30_000
    for start in range(0, agents, 1000):
        await step(server, tally, f"{agents:,} agents", post(server, tally, f"{agents:,} agents", [
            {"type": "agent.state", "id": f"ag-{n}", "ts": now(), "agent": f"agent-{n}",
             "state": "available", "queues": ["sales"]} for n in range(start, start + 1000)]))
    await step(server, tally, "agents", check_health(server, tally, f"{agents:,} agents"))
    await step(server, tally, "1 MB of 1\\n", post(server, tally, "1 MB of 1\\n", None,
                                                   b"1\n" * (MB // 2), "application/x-ndjson"))
    await step(server, tally, "1 MB of 1\\n", check_health(server, tally, "1 MB of 1\\n"))
    await step(server, tally, "duplicates", duplicates(server, tally, ids), 120)
    await step(server, tally, "slow connections",
               slow_connections(server, tally, 50 if quick else 1500))
    await step(server, tally, "foreign Origin", foreign_origin(server, tally))


async def duplicates(server: HostileServer, tally: Tally, ids: int) -> None:
    """`ids` new events, then the first ones again: each must be a duplicate."""
    name = f"resend past {ids:,} ids"
    for start in range(0, ids, 5000):
        await post(server, tally, f"{ids:,} new ids", [
            contact(1_000_000 + n) | {"type": "ticket.created"}
            for n in range(start, min(ids, start + 5000))])
    await post(server, tally, name, [contact(1_000_000 + n) | {"type": "ticket.created"}
                                     for n in range(min(ids, 1000))])
    await check_health(server, tally, name)


async def slow_connections(server: HostileServer, tally: Tally, count: int) -> None:
    """Connections that never finish their headers; is /healthz still quick meanwhile?"""
    assert server.server is not None
    writers = []
    with contextlib.suppress(OSError):
        for _ in range(count):
            _, writer = await asyncio.open_connection("127.0.0.1", server.server.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            writers.append(writer)
    await asyncio.sleep(1)
    row = tally.row(f"{count} slow connections")
    row["tried"] = len(writers)
    await check_health(server, tally, f"{count} slow connections")
    for writer in writers:
        writer.close()
    row["closed_by_server"] = sum(w.transport.is_closing() for w in writers)


async def foreign_origin(server: HostileServer, tally: Tally) -> None:
    """A websocket from another page's Origin should be refused (403)."""
    assert server.server is not None
    row = tally.row("foreign Origin on /ws")
    row["tried"] = 1
    url = f"ws://127.0.0.1:{server.server.port}/ws?board=overview"
    try:
        async with connect(url, origin="http://evil.example",  # type: ignore[arg-type]
                           max_size=None) as ws:
            await asyncio.wait_for(ws.recv(), 5)
        row["accepted"] = 1
    except InvalidStatus as exc:
        row[f"status_{exc.response.status_code}"] += 1


async def random_batches(server: HostileServer, tally: Tally, deadline: float,
                         restarts: int, at_least: int) -> int:
    """Near-valid batches from the property suite's strategy, with SIGKILLs in between."""
    print(f"  random near-valid batches (at least {at_least}) ...", flush=True)
    strategy = batches(max_items=20, restart_chance=0.0)
    sent_batches = 0
    # Restarts spread over the phase: at fractions of the batches sent or of the time left.
    hard_stop = max(deadline, time.time()) + 30  # a server that breaks at every batch
    deadline = max(deadline, time.time() + at_least * 0.1)
    restart_at = {deadline - (deadline - time.time()) * k / (restarts + 1)
                  for k in range(1, restarts + 1)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        while (time.time() < deadline or sent_batches < at_least) and time.time() < hard_stop:
            batch = strategy.example()
            events, _ = materialize(batch, time.time(), server.ids, "rnd", server.history)
            timeouts = tally.row("random near-valid")["timeouts"]
            await post(server, tally, "random near-valid", events)
            sent_batches += 1
            if sent_batches % 20 == 0 or tally.row("random near-valid")["timeouts"] > timeouts:
                await check_health(server, tally, "random near-valid")
            due = [t for t in restart_at if time.time() >= t]
            if due:
                restart_at.difference_update(due)
                await restart(server, tally, "scheduled SIGKILL")
                print(f"  ... {sent_batches} random batches, restart {tally.restarts}",
                      flush=True)
    return sent_batches


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="wallboard-hostile-") as workdir:
        server = HostileServer(Path(workdir), 15.0 if args.quick else 30.0)
        await server.open()
        try:
            await findings(server, tally, args.quick, 2_000 if args.quick else args.ids)
            await restart(server, tally, "after the findings")
            random_count = await random_batches(server, tally, started + args.seconds,
                                                args.restarts, 10 if args.quick else 100)
            await restart(server, tally, "at the end")
            await asyncio.to_thread(book_losses, server, tally)
        finally:
            statuses = dict(server.statuses)
            await server.close()
    five = sum(n for status, n in statuses.items() if status >= 500)
    return {"events_tried": tally.total("tried"), "stored": tally.total("stored"),
            "duplicates": tally.total("duplicates"), "late": tally.total("late"),
            "rejected": tally.total("rejected"), "rejected_by_reason": dict(tally.reasons),
            "lost": tally.lost, "counts_differing_after_restart": tally.restart_mismatches,
            "answers_5xx": five, "request_timeouts": tally.total("timeouts"),
            "restarts": tally.restarts, "restarts_failed": tally.restarts_failed,
            "unhealthy_after": tally.unhealthy, "random_batches": random_count,
            "health_check_max_ms": round(max(tally.health_ms, default=0.0), 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "scenarios": {k: dict(v) for k, v in tally.rows.items()}, "notes": tally.notes}


def print_report(figures: dict[str, Any]) -> None:
    columns = ("tried", "stored", "duplicates", "late", "rejected", "timeouts")
    print(f"{'scenario':<30}" + "".join(f"{c:>11}" for c in columns) + "  statuses")
    for name, row in figures["scenarios"].items():
        statuses = ",".join(f"{k[7:]}x{v}" for k, v in sorted(row.items())
                            if k.startswith("status_"))
        extra = " accepted" if row.get("accepted") else ""
        print(f"{name[:30]:<30}" + "".join(f"{row.get(c, 0):>11,}" for c in columns)
              + f"  {statuses}{extra}")
    print()
    for key in ("events_tried", "stored", "duplicates", "late", "rejected", "lost",
                "counts_differing_after_restart", "answers_5xx", "request_timeouts",
                "restarts", "restarts_failed", "random_batches", "health_check_max_ms"):
        print(f"  {key:<32} {figures[key]:,}")
    print(f"  {'rejected_by_reason':<32} {figures['rejected_by_reason']}")
    print(f"  {'unhealthy after':<32} {figures['unhealthy_after'] or 'none'}")
    for note in figures["notes"]:
        print(f"  note: {note}")
    ok = figures["lost"] == figures["answers_5xx"] == figures["restarts_failed"] == 0
    print(f"  TARGET lost = 5xx = failed restarts = 0 (issue 17): "
          f"{'met' if ok else 'NOT met'} ({figures['lost']}, {figures['answers_5xx']}, "
          f"{figures['restarts_failed']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, ~15 s")
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--restarts", type=int, default=3, help="SIGKILLs among random batches")
    parser.add_argument("--ids", type=int, default=210_000,
                        help="new ids before resending the first ones (dedupe memory)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hostile.json")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):  # room for the slow connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    if args.quick:
        args.seconds, args.restarts = min(args.seconds, 15.0), 1
    report: dict[str, Any] = {"cpus": os.cpu_count(), "quick": args.quick,
                              "load_average_at_start": round(os.getloadavg()[0], 2)}
    perf = time.perf_counter()
    # A run that hangs says where, in every thread, before its caller's timeout would kill it.
    faulthandler.dump_traceback_later(args.seconds + 240, exit=True)
    # SIGTERM (a timeout) ends the run through its cleanup: the server is killed, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = asyncio.run(main_async(args))
    print_report(figures)
    write_report({**report, **figures}, args.out, perf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
