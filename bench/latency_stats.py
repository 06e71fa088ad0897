"""Latency bench helpers: ports, CPU sampling, the event sender and percentile arithmetic."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from benchio import proc_cpu_s

# Shared by the bench's modules: the webhook token, the queue whose count is followed, the key.
TOKEN = "bench-token-0123456789"
QUEUE = "bench"
KEY = f"queues.{QUEUE}.1h.offered"  # 1h, not today: immune to a midnight reset mid-run
META_TS = "meta.ts"  # when the server built the snapshot that carried a change
BOARD = "overview"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def ensure_open_files(needed: int) -> dict[str, int]:
    """Raise the soft RLIMIT_NOFILE to `needed` when allowed; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return {"soft_before": before, "soft": soft, "hard": hard, "needed": needed}


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

    def _body(self, due: int) -> bytes:
        now = time.time()
        return orjson.dumps([
            {"type": "contact.queued", "ts": now, "queue": QUEUE, "channel": "voice",
             "contact_id": f"c{i}", "id": f"b{i}"} for i in range(self.sent + 1, due + 1)])

    async def single(self, session: aiohttp.ClientSession) -> float:
        """Post one event on its own (numbered after those sent); its round trip in s."""
        body = self._body(self.sent + 1)
        self.sent += 1
        self.batches.append((self.sent, time.time()))
        rtts, self.rtts = self.rtts, []
        await self._post(session, body)
        rtt, self.rtts = self.rtts[0], rtts  # kept apart from the round trips under load
        return rtt

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Send for `duration` seconds, one batch per `batch_s`, then wait for the replies."""
        base = self.sent  # after any single events
        total = base + int(self.rate * self.duration)
        pending: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        k = 0
        while self.sent < total:
            k += 1
            delay = t0 + k * self.batch_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            due = min(total, base + int(self.rate * (time.monotonic() - t0)))
            if due <= self.sent:
                continue
            body = self._body(due)
            self.sent = due
            sent_at = time.time()
            self.batches.append((due, sent_at))
            self.first_send = self.first_send or sent_at
            self.last_send = sent_at
            task = asyncio.create_task(self._post(session, body))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)


def latency_pairs(changes: list[list[Any]], batches: list[tuple[int, float]], skip: int = 0
                  ) -> tuple[list[tuple[float, float, float | None]], int]:
    """Per client: (latency s, events, build - send s) runs, and the events never seen.

    Events up to `skip` (a batch boundary) are left out: they belong to another phase.
    """
    # Event i (cumulative) counts as delivered at the first change whose value is >= i.
    out: list[tuple[float, float, float | None]] = []
    seen = skip
    b = 0  # batch holding event seen + 1
    while b < len(batches) and batches[b][0] <= skip:
        b += 1
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


def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]
