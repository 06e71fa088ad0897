"""Journal faults: a clear error on start; at run time 503 while the board stays up, then recovery.

Every fault is real: a file size limit (RLIMIT_FSIZE, what a full quota does to a writer), a
lock held by another process, a corrupt file, a directory without write permission. Root
ignores directory modes, so as root that test drops the capabilities that let it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_config, now
from tests.journal_traffic import approx_equal, contacts, expected_today, observed_today
from tests.serverproc import journal_config
from tests.wsclient import BoardClient
from wallboard.journal import sqlite_backend as journal_sqlite
from wallboard.journal.sqlite_backend import DB_NAME

PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def metric(text: str, name: str) -> float:
    """One unlabelled sample from a metrics page."""
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == name)


def serve_once(tmp_path: Path, journal: dict, preexec=None) -> subprocess.CompletedProcess[str]:
    """`wallboard serve` that is expected to refuse to start."""
    config = tmp_path / "wallboard.yaml"
    settings = journal_config(Path(journal.pop("data_dir")), **journal)
    config.write_text(yaml.safe_dump(settings))
    return subprocess.run([sys.executable, "-m", "wallboard", "serve", "--config", str(config),
                           "--port", "0"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, preexec_fn=preexec)


def no_dac_override() -> None:
    """In the child: as root, give up the capabilities that bypass file modes."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_start_refuses_a_corrupt_journal_naming_path_and_cause(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / DB_NAME).write_bytes(os.urandom(8192))
    result = serve_once(tmp_path, {"data_dir": str(data)})
    assert result.returncode == 2
    assert f"error: journal: {data / DB_NAME}: file is not a database" in result.stderr
    assert "move it aside" in result.stderr and "Traceback" not in result.stderr


def test_start_refuses_a_read_only_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o555)
    result = serve_once(tmp_path, {"data_dir": str(data)}, preexec=no_dac_override)
    assert result.returncode == 2, result.stderr
    assert f"error: journal: {data / 'journal.lock'}: Permission denied" in result.stderr


def test_start_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("")
    result = serve_once(tmp_path, {"data_dir": str(data)})
    assert result.returncode == 2
    assert f"error: journal: {data}: not a directory" in result.stderr


def test_start_refuses_a_database_locked_by_another_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    holder = sqlite3.connect(data / DB_NAME, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = serve_once(tmp_path, {"data_dir": str(data)})
    finally:
        holder.close()
    assert result.returncode == 2
    assert f"error: journal: {data / DB_NAME}: database is locked" in result.stderr
    assert "another process holds a lock" in result.stderr


async def test_start_refuses_a_journal_another_server_uses(tmp_path: Path,
                                                         server_process) -> None:
    first = server_process(journal_config(tmp_path / "data"))
    await first.start()
    try:
        result = serve_once(tmp_path, {"data_dir": str(tmp_path / "data")})
    finally:
        first.stop()
    assert result.returncode == 2
    assert f"in use by another wallboard process (pid {first.proc.pid})" in result.stderr


def test_start_refuses_when_the_file_size_limit_leaves_no_room(tmp_path: Path) -> None:
    def tiny_quota() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))

    result = serve_once(tmp_path, {"data_dir": str(tmp_path / "data")}, preexec=tiny_quota)
    assert result.returncode == 2
    assert f"error: journal: {tmp_path / 'data' / DB_NAME}: disk I/O error" in result.stderr
    assert "file size limit (ulimit -f) 2,048 bytes" in result.stderr


async def test_full_quota_answers_503_keeps_the_board_up_and_recovers(
        tmp_path: Path, server_process) -> None:
    quota = 400_000

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (quota, resource.RLIM_INFINITY))

    server = server_process(journal_config(tmp_path / "data"), preexec=limited)
    await server.start()
    stream = contacts(random.Random(3), "quota")
    acked = []
    async with aiohttp.ClientSession() as http:
        for _ in range(2000):
            batch = [next(stream) for _ in range(10)]
            status, body, headers = await server.post(http, [e for c in batch for e in c.events])
            if status == 503:
                break
            assert status == 202, body
            acked += batch
        else:
            pytest.fail("the journal never filled its quota")
        refused = batch
        assert headers["Retry-After"] == "1" and body["retry_after_s"] == 1
        assert "file size limit (ulimit -f) 400,000 bytes" in body["error"]

        # Down, but serving from memory: the page, the API, the websocket, the metrics.
        async with http.get(f"{server.url}/") as resp:
            assert resp.status == 200
        shown = await server.snapshot(http)
        assert shown["meta"]["journal"] == "down" and "SQLITE_IOERR" in shown["meta"][
            "journal_error"]
        # Nothing of the refused request was counted.
        assert approx_equal(observed_today(shown["total"]["today"]), expected_today(acked))
        async with BoardClient(f"ws://127.0.0.1:{server.port}/ws?board=overview") as board:
            first = await board.receive()
            assert first["data"]["meta.journal"] == "down"
            assert first["data"]["total.today.offered"] == len(acked)
        async with http.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
        assert metric(text, "wallboard_journal_up") == 0
        assert metric(text, "wallboard_journal_events_failed_total") >= sum(
            len(c.events) for c in refused)

        # Space returns: the limit is lifted while the server runs.
        assert server.proc is not None
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        deadline = time.monotonic() + 15
        while (await server.snapshot(http))["meta"]["journal"] != "up":
            assert time.monotonic() < deadline, "the journal did not recover"
            await asyncio.sleep(0.1)
        status, body, _ = await server.post(http, [e for c in refused for e in c.events])
        assert status == 202 and body["duplicates"] == 0, body
        acked += refused
        recovered = await server.snapshot(http)
        async with http.get(f"{server.url}/metrics") as resp:
            assert metric(await resp.text(), "wallboard_journal_up") == 1
    assert approx_equal(observed_today(recovered["total"]["today"]), expected_today(acked))

    # And all of it is durable: the failed commit left nothing half-written behind.
    server.kill()
    server.wait()
    server.preexec = None  # the space that returned stays
    await server.start()
    async with aiohttp.ClientSession() as http:
        restored = await server.snapshot(http)
    server.stop()
    assert approx_equal(observed_today(restored["total"]["today"]), expected_today(acked))


async def test_locked_database_at_run_time_answers_503_then_recovers(
        live_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_sqlite, "BUSY_TIMEOUT_MS", 200)
    config = base_config(journal={"data_dir": str(tmp_path / "data"), "retry_s": 0.2})
    live = await live_server(config)
    event = {"type": "contact.queued", "id": "k1", "ts": now(), "queue": "sales",
             "contact_id": "k1"}
    assert (await live.post(event))[0] == 202
    holder = sqlite3.connect(tmp_path / "data" / DB_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        second = {**event, "id": "k2", "contact_id": "k2"}
        status, body = await live.post(second)
        assert status == 503 and "another process holds a lock" in body["error"]
        api = await live.get_json("/api/snapshot")
        assert api["meta"]["journal"] == "down"
        assert api["queues"]["sales"]["today"]["offered"] == 1
        assert (await live.get_text("/board/overview"))[0] == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deadline = time.monotonic() + 10
    while (await live.get_json("/api/snapshot"))["meta"]["journal"] != "up":
        assert time.monotonic() < deadline, "the journal did not recover"
        await asyncio.sleep(0.05)
    status, body = await live.post(second)
    assert status == 202 and body == {"accepted": 1, "duplicates": 0, "late": 0, "failed": 0,
                                     "rejected": [], "rejected_total": 0, "rejected_reasons": {}}
    assert (await live.get_json("/api/snapshot"))["queues"]["sales"]["today"]["offered"] == 2

