"""Benchmark report: run the headline benches one after another, one JSON, one table.

Each bench writes its own JSON with a `figures` list (benchio.figure): the figure, the floor
measured in the same run, their ratio and the target. This script runs them in turn on an
otherwise idle machine, records the load average around each, and writes them all with the
machine's description to one JSON and a Markdown table (what the README quotes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# name: (script, extra arguments for a full run). Order: the cheap ones first.
BENCHES: dict[str, tuple[str, list[str]]] = {
    "metrics": ("metrics.py", []),
    "fold": ("fold.py", []),
    "restart": ("restart.py", []),
    "backfill": ("backfill.py", []),
    "reports": ("reports.py", []),
    "latency": ("latency.py", []),
}


def machine() -> dict[str, Any]:
    """What ran the benches: CPU model, cores, memory, Python, kernel."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return {"cpu": model, "cpus": os.cpu_count(), "memory_gib": round(memory_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def run(name: str, quick: bool, results: Path) -> dict[str, Any]:
    """Run one bench, return its JSON with the load averages around it."""
    script, extra = BENCHES[name]
    out = results / f"{name}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / script), "--out", str(out),
               *(["--quick"] if quick else extra)]
    before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    entry: dict[str, Any] = {"command": " ".join(["python", f"bench/{script}", *command[2:]]),
                             "returncode": done.returncode,
                             "seconds": round(time.perf_counter() - started, 1),
                             "load_average_before": [round(x, 2) for x in before],
                             "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    if done.returncode != 0 or not out.exists():
        entry["error"] = (done.stdout[-1500:] + done.stderr[-1500:]).strip()
        entry["figures"] = []
        return entry
    figures = json.loads(out.read_text()).get("figures", [])
    entry["figures"] = figures
    return entry


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(report: dict[str, Any]) -> str:
    """The Markdown table: figure | value | floor (what) | ratio | target | met."""
    rows = ["| figure | value | floor or reference, same run | ratio | target | |",
            "|---|---:|---|---:|---|---|"]
    for name, entry in report["benches"].items():
        if entry.get("error"):
            rows.append(f"| {name}: FAILED (exit {entry['returncode']}) | | | | | ✗ |")
        for f in entry["figures"]:
            floor = (f"{_number(f['floor'], f['unit'])} ({f['floor_name']})"
                     if f["floor"] is not None else "–")
            ratio = f"{f['ratio']:.2f}×" if f["ratio"] is not None else "–"
            met = {True: "met", False: "**missed**", None: ""}[f["met"]]
            rows.append(f"| {f['figure']} | {_number(f['value'], f['unit'])} | {floor} | {ratio} "
                        f"| {f['target']} | {met} |")
    return "\n".join(rows)


def main() -> int:
    """Run the benches, write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="each bench's small mode")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="a subset")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "report.json")
    args = parser.parse_args()
    results = args.out.parent
    results.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "quick": args.quick, "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "benches": {}}
    for name in args.only or list(BENCHES):
        print(f"running {name} …", flush=True)
        report["benches"][name] = entry = run(name, args.quick, results)
        print(f"  {entry['seconds']} s, load {entry['load_average_before'][0]} -> "
              f"{entry['load_average_after'][0]}" + ("  FAILED" if entry.get("error") else ""))
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["table"] = table(report)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    m = report["machine"]
    print(f"\n{report['date']} · {m['cpu']} · {m['cpus']} CPUs · {m['memory_gib']} GiB · "
          f"Python {m['python']} · load {report['load_average_at_start'][0]} at start\n")
    print(report["table"])
    missed = [f["figure"] for e in report["benches"].values() for f in e["figures"]
              if f["met"] is False]
    failed = [n for n, e in report["benches"].items() if e.get("error")]
    print(f"\nTARGET: {len(missed)} missed, {len(failed)} failed; wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
