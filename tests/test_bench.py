"""The benchmark scripts run and write their figures (smoke runs; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_program

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", ["fold.py", "latency.py", "replay.py", "journal.py",
                                    "surveys.py", "metrics.py", "redis_nodes.py",
                                    "cardinality.py", "restart.py", "backfill.py",
                                    "reports.py", "forecast.py", "agents.py"])
def test_bench_script_runs_quick_and_writes_json(script: str, tmp_path: Path) -> None:
    if script == "redis_nodes.py":
        require_program("/usr/bin/redis-server",
                        "Debian package redis-server: bench/redis_nodes.py runs two Redis nodes")
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "TARGET" in result.stdout
    figures = json.loads(out.read_text())
    assert figures  # the figures were written, whatever their values


def test_bench_report_runs_benches_and_tabulates_their_figures(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = subprocess.run([sys.executable, str(BENCH / "report.py"), "--quick", "--only",
                             "metrics", "--out", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cpus"] >= 1 and len(report["load_average_at_start"]) == 3
    entry = report["benches"]["metrics"]
    assert len(entry["load_average_before"]) == 3 and not entry.get("error")
    figures = entry["figures"]
    assert len(figures) == 2  # one per size of the quick run
    for f in figures:
        # The ratio is the figure over the floor of the same run, and the table shows both.
        assert f["ratio"] == round(f["value"] / f["floor"], 2)
        assert f["met"] == (f["value"] <= 50.0)
        assert f"| {f['figure']} |" in report["table"]
        assert f"| {f['figure']} |" in result.stdout
