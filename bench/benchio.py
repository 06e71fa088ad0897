"""What the benchmarks share: a free port, a process's CPU time, and the JSON report at the end."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process from /proc (0.0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_report(report: dict[str, Any], out: Path, started: float) -> None:
    """Finish `report` (started at perf_counter `started`) and write it to `out` as JSON."""
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["load_average_at_end"] = round(os.getloadavg()[0], 2)
    if max(report.get("load_average_at_start", 0.0), report["load_average_at_end"]) > 1.5:
        # Figures from a shared machine are still printed, but marked as such.
        print(f"note: load average {report.get('load_average_at_start')} -> "
              f"{report['load_average_at_end']} on {os.cpu_count()} cpus: other processes "
              f"shared the CPUs; wall-clock figures suffer most, CPU-time figures less")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['elapsed_s']}s)")


def figure(report: dict[str, Any], name: str, value: float, unit: str, *,
           floor: float | None = None, floor_name: str = "", target: str = "",
           met: bool | None = None) -> None:
    """Add one headline figure to `report["figures"]`: what bench/report.py tabulates.

    `floor` is the same quantity for the physical floor measured in the same run (a bare
    parse, a bare broadcast, a full fold); the ratio is value / floor.
    """
    ratio = round(value / floor, 2) if floor else None
    report.setdefault("figures", []).append({
        "figure": name, "value": round(value, 3), "unit": unit, "floor": floor,
        "floor_name": floor_name, "ratio": ratio, "target": target, "met": met})
