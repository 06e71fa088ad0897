"""Latency bench, server side: a probed server timing snapshot builds, flushes and fan-out."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import time
from pathlib import Path
from typing import Any

import orjson
from latency_stats import pct

# --------------------------------------------------------------------------- server probe


def run_probed_server(out: Path, argv: list[str]) -> int:
    """Run `wallboard serve` with timers on snapshot builds, flushes and websocket sends."""
    from wallboard import cli
    from wallboard.server import app as app_mod
    from wallboard.server import hub as hub_mod

    trees: list[tuple[float, float]] = []  # (wall start, seconds) of each snapshot build
    flushes: list[tuple[int, float, float, float]] = []  # (seq, wall, perf start, seconds)
    sends: dict[int, list[float]] = {}  # seq -> [sends, first done, last done] (perf)
    lag: list[tuple[float, float]] = []  # (wall, seconds late)
    pauses: list[tuple[float, int, float]] = []  # (wall, generation, seconds) of each gc run
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.time(), info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(on_gc)
    if os.environ.get("WALLBOARD_BENCH_FANOUT_SLICE"):  # a what-if: clients per loop turn
        hub_mod.FANOUT_SLICE = int(os.environ["WALLBOARD_BENCH_FANOUT_SLICE"])

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

    orig_offer = hub_mod.Client.offer

    def offer(self: hub_mod.Client, frame: bytes) -> None:
        # Deltas are written in the flush itself (the hub's seq is theirs); a client that is
        # behind gets a snapshot later from its sender, not counted here.
        orig_offer(self, frame)
        done = time.perf_counter()
        if not self.pending:
            record = sends.setdefault(self.hub.seq, [0, done, done])
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
    hub_mod.Client.offer = offer  # type: ignore[method-assign]
    try:
        return cli.main(argv)
    finally:
        out.write_bytes(orjson.dumps({
            "trees": trees, "lag": lag, "gc": pauses,
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
        return {"n": len(values), "p50": round(1000 * pct(values, 0.5), 2),
                "p99": round(1000 * pct(values, 0.99), 2),
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
        **{f"gc_gen{g}_pause_ms": stats([s for w, gen, s in data["gc"]
                                         if gen == g and start <= w <= end]) for g in (0, 1, 2)},
    }
