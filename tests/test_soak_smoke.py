"""The soak bench, 2 minutes at small numbers: quiet logs, every minute recorded, a sane report.

Figures are printed (run with -s to see the table); no timing is asserted. What is asserted:
no ERROR line that was not injected on purpose, no traceback, no "Task exception was never
retrieved", the flapping source's injected faults seen (the log counter works), every minute
recorded with the server's RSS, fds and journal sizes, TVs connected and churning, probes
reaching them, and every TV back with a snapshot after the restart at the end.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
TVS = 40
MINUTES = 2


@pytest.mark.timeout(300)
def test_soak_bench_two_minutes_logs_no_error_and_records_every_minute(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), "--minutes", str(MINUTES), "--rate", "200",
         "--tvs", str(TVS), "--queues", "4", "--agents", "40", "--warmup-minutes", "0",
         # Enough churn that 40 TVs reconnect, stall and vanish every minute.
         "--reconnect-share", "0.2", "--stall-share", "0.1", "--vanish-share", "0.1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=280, cwd=tmp_path)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["log_errors"] == 0, report["unexpected_log_lines"]
    assert summary["tracebacks"] == 0, report["unexpected_log_lines"]
    assert summary["never_retrieved"] == 0
    assert summary["injected_lines"] >= 1  # "source flap down": seen and told apart
    rows = report["rows"]
    assert [r["minute"] for r in rows] == list(range(1, MINUTES + 1))
    for row in rows:
        assert row["rss_mb"] > 0 and row["fds"] > 0 and row["db_mb"] > 0, row
        assert 0 < row["tvs_connected"] <= TVS, row
        assert row["messages"] > 0 and row["probe_n"] > 0, row
        assert row["log_error"] == 0 and row["tracebacks"] == 0, row
    # The journal grows with the events stored; the cumulative count only rises.
    assert rows[-1]["db_mb"] >= rows[0]["db_mb"]
    assert rows[0]["events"] < rows[-1]["events"] <= report["events_sent"]
    assert sum(r["reconnects"] + r["vanishes"] for r in rows) > 0  # the TVs churned
    assert report["announcements"] >= 1 and report["edits"] >= 1
    assert report["flap_failed"] > 0  # the source was down on purpose
    storm = report["restart_storm"]
    assert storm["tvs"] == TVS and storm["snapshots"] == TVS, storm
    # It cleaned up: its directory is gone and no process of its own is left running.
    workdir = result.stdout.splitlines()[0].rsplit("; ", 1)[1]
    assert workdir.startswith(tempfile.gettempdir()) and not Path(workdir).exists()
    leftovers = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and workdir.encode() in (proc / "cmdline").read_bytes():
                leftovers.append(proc.name)
    assert leftovers == []
