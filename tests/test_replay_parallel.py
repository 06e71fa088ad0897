"""Replay reading in a child process gives exactly what reading in-process gives."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from wallboard.replay.input import CHUNK_BYTES, PARALLEL_ENV

ROOT = Path(__file__).resolve().parents[1]
T0 = 1736935200  # 2025-01-15T10:00:00Z
_RATES = re.compile(r" in [\d.]+s \([\d,]+ events/s; [\d.]+s CPU, [\d,]+ events/CPU s\)"
                    r"( with a reader process \([\d.]+s CPU\))?")


def run(path: Path, parallel: bool, *args: str) -> tuple[int, str, str]:
    """Replay with the reader forced in-process or in a child; exit code, stdout, stderr."""
    env = {**os.environ, PARALLEL_ENV: "1" if parallel else "0"}
    proc = subprocess.run([sys.executable, "-m", "wallboard", "replay", str(path), *args],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    return proc.returncode, proc.stdout, _RATES.sub(" in <time>", proc.stderr)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Several read chunks of contacts and agents with bad, blank and duplicate lines."""
    rng = random.Random(7)
    lines: list[bytes] = []
    waiting: list[int] = []
    for n in range(12_000):
        ts = T0 + n * 0.7
        roll = rng.random()
        if roll < 0.01:
            lines.append(rng.choice([b"{\"type\": \"contact.queued\", \"ts\": ", b"nonsense",
                                     b"[1, 2]", b"   "]))
            continue
        if roll < 0.02:
            event = {"type": "contact.answered", "ts": ts, "queue": "sales", "contact_id": "x",
                     "wait_s": "soon" if roll < 0.015 else -1}
        elif waiting and roll < 0.5:
            c = waiting.pop(rng.randrange(len(waiting)))
            event = {"type": "contact.answered", "ts": ts, "queue": "sales", "contact_id": f"c{c}",
                     "agent": f"a{c % 20}", "id": f"a{c}"}
        elif roll < 0.6:
            event = {"type": "agent.state", "ts": f"2025-01-15T{10 + n // 5000:02d}:00:00Z",
                     "agent": f"a{n % 20}", "state": rng.choice(["available", "busy", "away"]),
                     "queues": ["sales", "support"]}
        else:
            waiting.append(n)
            event = {"type": "contact.queued", "ts": ts - rng.random() * 30,
                     "queue": rng.choice(["sales", "support"]), "contact_id": f"c{n}",
                     "id": f"q{n if rng.random() > 0.01 else n - 1}"}  # some duplicate ids
        lines.append(orjson.dumps(event))
    path = tmp_path_factory.mktemp("parallel") / "messy.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    assert path.stat().st_size > 3 * CHUNK_BYTES  # several batches from the child
    return path


@pytest.mark.parametrize("args", [("--json",), ("--json", "--every", "10m"),
                                  ("--json", "--until", str(T0 + 4000))])
def test_child_reader_gives_the_same_snapshots_and_reports(messy: Path,
                                                           args: tuple[str, ...]) -> None:
    local, child = run(messy, False, *args), run(messy, True, *args)
    assert local[0] == 0, local[2][-2000:]
    assert child == local
    assert re.search(r"messy\.ndjson:\d+: .*\[malformed\]", local[2])
    assert re.search(r"messy\.ndjson:\d+: wait_s: .*\[bad_value\]", local[2])
    assert re.search(r"; [1-9][\d,]* duplicates", local[2])
    if "--until" in args:
        assert "stopped at line" in local[2]


def test_child_reader_stops_with_the_replay(messy: Path, tmp_path: Path) -> None:
    # Bad lines after --until are never reported, though the child may have read them.
    late_bad = tmp_path / "late_bad.ndjson"
    late_bad.write_bytes(messy.read_bytes() + b"garbage after the end\n")
    code, _, err = run(late_bad, True, "--json", "--until", str(T0 + 100))
    assert code == 0 and "garbage" not in err and ":12001:" not in err
