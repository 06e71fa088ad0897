"""What every benchmark does at the end: elapsed time, a note on shared CPUs, the JSON report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


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
