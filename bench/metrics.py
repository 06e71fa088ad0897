"""Benchmark: the cost of one /metrics scrape (it runs on the event loop) by queues and agents."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from benchio import figure, write_report
from prometheus_client import generate_latest

from wallboard.config.settings import parse_settings
from wallboard.server import keys
from wallboard.server.app import create_app
from wallboard.server.exposition import encode

# A scrape blocks the loop that pushes to the boards every 200 ms: keep it well under that.
TARGET_SCRAPE_MS = 50.0
CONTACTS_PER_QUEUE = 200


def build(queues: int, agents: int, seed: int = 7) -> web.Application:
    """An app with `queues` queues, `agents` allow-listed agents and a busy hour folded in."""
    names = [f"q{i:03d}" for i in range(queues)]
    config: dict[str, Any] = {
        "site": {"name": "Bench", "timezone": "UTC", "min_survey_sample": 1},
        "server": {"max_queues": max(200, queues)},
        "queues": {n: {"channel": "voice" if i % 3 else "chat",
                       "legal_rules": [{"name": "limit", "limit_s": 360}] if i % 2 else []}
                   for i, n in enumerate(names)},
        "sources": {"hook": {"type": "webhook", "token": "bench-token-123"}},
        "metrics": {"agents": [f"agent{i:04d}" for i in range(agents)]},
        "journal": {"enabled": False},
    }
    app = create_app(parse_settings(config, "<bench>"))
    pipeline = app[keys.PIPELINE]
    rng = random.Random(seed)
    now = time.time()
    n = 0
    for queue in names:
        for _ in range(CONTACTS_PER_QUEUE):
            n += 1
            start = now - rng.uniform(10, 500)
            wait = rng.expovariate(1 / 30)
            outcome = "contact.answered" if rng.random() < 0.9 else "contact.abandoned"
            for kind, ts in (("contact.queued", start), (outcome, min(start + wait, now))):
                pipeline.ingest(pipeline.parse({"type": kind, "id": f"{kind}-{n}", "ts": ts,
                                                "queue": queue, "contact_id": f"c{n}"}, "hook"))
    states = ("available", "busy", "wrapup", "away")
    for i in range(max(agents, 50)):
        pipeline.ingest(pipeline.parse({"type": "agent.state", "id": f"a{i}", "ts": now - 5,
                                        "agent": f"agent{i:04d}", "team": f"team{i % 10}",
                                        "state": states[i % 4],
                                        "queues": [names[i % queues]]}, "hook"))
    return app


def measure(app: web.Application, scrapes: int) -> dict[str, float]:
    """CPU milliseconds per scrape (the snapshot is the hub's, already built), the same with
    prometheus_client's generate_latest, per snapshot rebuild (what the hub does anyway at
    most once per push interval), and the body size."""
    registry, hub = app[keys.METRICS_REGISTRY], app[keys.HUB]
    hub.current()
    scrape: list[float] = []
    library: list[float] = []
    rebuild: list[float] = []
    body = b""
    for _ in range(scrapes):
        t0 = time.process_time()
        hub.flush()
        t1 = time.process_time()
        body = encode(registry)
        t2 = time.process_time()
        rebuild.append((t1 - t0) * 1000)
        scrape.append((t2 - t1) * 1000)
    # The library's writer apart, after: interleaved, its garbage (a Sample per series) made
    # each following scrape a third slower than a server's scrapes, which have none of it.
    for _ in range(max(3, scrapes // 4)):
        t0 = time.process_time()
        reference = generate_latest(registry)
        library.append((time.process_time() - t0) * 1000)
    assert encode(registry) == reference, "the lean writer differs from prometheus_client's"
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {"scrape_median_ms": _median(scrape), "scrape_max_ms": round(max(scrape), 2),
            "generate_latest_median_ms": _median(library),
            "snapshot_median_ms": _median(rebuild), "bytes": len(body), "series": series}


def _median(values: list[float]) -> float:
    return round(sorted(values)[len(values) // 2], 2)


def main() -> int:
    """Print scrape cost per size and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few scrapes")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "metrics.json")
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = [(4, 0), (20, 50)] if args.quick else [(4, 0), (50, 100), (200, 0), (200, 500)]
    scrapes = 5 if args.quick else 40
    report: dict[str, Any] = {"target_scrape_ms": TARGET_SCRAPE_MS, "cpus": os.cpu_count(),
                              "load_average_at_start": round(os.getloadavg()[0], 2),
                              "contacts_per_queue": CONTACTS_PER_QUEUE, "runs": []}
    print(f"/metrics scrape cost (CPU ms per scrape, {scrapes} scrapes each)")
    for queues, agents in sizes:
        figures = measure(build(queues, agents), scrapes)
        ratio = TARGET_SCRAPE_MS / max(figures["scrape_median_ms"], 1e-3)
        report["runs"].append({"queues": queues, "agents": agents, **figures,
                               "ratio_to_target": round(ratio, 2)})
        print(f"  {queues:4d} queues {agents:4d} agents: {figures['series']:6d} series "
              f"{figures['bytes'] / 1024:7.1f} KiB  scrape {figures['scrape_median_ms']:7.2f} ms "
              f"(max {figures['scrape_max_ms']:.2f}; generate_latest "
              f"{figures['generate_latest_median_ms']:.2f} ms, "
              f"{figures['generate_latest_median_ms'] / figures['scrape_median_ms']:.1f}x)  "
              f"[snapshot rebuild, paid by the hub anyway: {figures['snapshot_median_ms']:.2f} ms]")
    worst = min(run["ratio_to_target"] for run in report["runs"])
    print(f"  TARGET <= {TARGET_SCRAPE_MS:g} ms of event-loop CPU per scrape: "
          f"worst ratio {worst:.2f}x ({'met' if worst >= 1 else 'NOT met'})")
    report["worst_ratio_to_target"] = worst
    for run in report["runs"]:
        figure(report, f"/metrics scrape, {run['queues']} queues {run['agents']} agents "
               f"({run['series']:,} series)", run["scrape_median_ms"], "ms CPU",
               floor=run["generate_latest_median_ms"],
               floor_name="prometheus_client generate_latest, same families",
               target=f"<= {TARGET_SCRAPE_MS:g} ms",
               met=run["scrape_median_ms"] <= TARGET_SCRAPE_MS)
    write_report(report, args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
