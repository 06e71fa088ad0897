"""Latency bench, server side: a probed server timing snapshot builds, flushes and fan-out."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from pathlib import Path
from typing import Any

import orjson
from latency_stats import pct

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
    from wallboard.server import hub as hub_mod

    if variant == "broadcast":
        # Frame each delta once and write the same bytes to every idle client's transport in
        # the flush itself (uncompressed frames are valid on deflate connections); clients
        # that are busy or backed up go through their outbox as before.
        def flush(self: hub_mod.Hub) -> None:
            self._scheduled = None
            self._last_flush = time.monotonic()
            if self.advance is not None:  # the tick: time moves, then the build reads
                self.advance()
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

    from wallboard import cli
    from wallboard.server import app as app_mod
    from wallboard.server import hub as hub_mod

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
    }
