"""A restart mid-shift loses nothing: the real server killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.journal_traffic import (
    Contact,
    approx_equal,
    contacts,
    expected_today,
    observed_today,
    windows_of,
)
from tests.serverproc import ServerProcess, journal_config

CONTACTS_PER_POST = 4
def exported_ids(server: ServerProcess) -> list[str]:
    """Ids in the journal, read by `wallboard journal export` (not by the server)."""
    result = server.cli("journal", "export", "--since", "now-1d")
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line)["id"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize("seed", [11, 22, 33])
async def test_sigkill_at_a_random_moment_loses_and_doubles_no_acknowledged_event(
        tmp_path: Path, seed: int, server_process) -> None:
    rng = random.Random(seed)
    server = server_process(journal_config(tmp_path / "data"))
    await server.start()
    stream = contacts(rng, f"s{seed}")
    acked: list[Contact] = []
    in_flight: list[Contact] = []
    board_after_last_ack: dict[str, Any] | None = None
    asyncio.get_running_loop().call_later(rng.uniform(0.3, 1.5), server.kill)
    async with aiohttp.ClientSession() as http:
        for _ in range(5000):
            batch = [next(stream) for _ in range(CONTACTS_PER_POST)]
            try:
                status, body, _ = await server.post(http, [e for c in batch for e in c.events])
            except aiohttp.ClientError:
                in_flight = batch  # no answer: the sender must assume nothing was stored
                break
            assert status == 202, body
            acked += batch
            try:
                snapshot = await server.snapshot(http)
            except aiohttp.ClientError:
                board_after_last_ack = None  # killed before the board could be read
                break
            # Nothing else is in flight: the board shows exactly the acknowledged events.
            assert approx_equal(observed_today(snapshot["total"]["today"]),
                                expected_today(acked))
            board_after_last_ack = snapshot
        else:
            pytest.fail("the server was never killed: send for longer")
    assert server.wait() == -signal.SIGKILL
    assert acked, "killed before the first acknowledgement: pick a later moment"

    ids = exported_ids(server)
    assert len(ids) == len(set(ids)), "an event is stored twice"
    acked_ids = [e["id"] for c in acked for e in c.events]
    flight_ids = [e["id"] for c in in_flight for e in c.events]
    # Every acknowledged event is stored; of the unanswered request, all of it or nothing.
    assert set(ids) in (set(acked_ids), set(acked_ids) | set(flight_ids))
    survived = acked + (in_flight if flight_ids and flight_ids[0] in ids else [])

    await server.start()
    async with aiohttp.ClientSession() as http:
        restored = await server.snapshot(http)
        assert restored["meta"]["journal"] == "up"
        assert approx_equal(observed_today(restored["total"]["today"]), expected_today(survived))
        assert restored["total"]["live"]["waiting"] == \
            sum(c.outcome == "waiting" for c in survived)
        if board_after_last_ack is not None and len(survived) == len(acked):
            # Same events folded in the same order at the same arrival times: the very same
            # numbers in every window, not merely in the counts checked above.
            assert windows_of(restored) == windows_of(board_after_last_ack)

        # The sender retries the request it never heard back about: counted once either way.
        if in_flight:
            status, body, _ = await server.post(http, [e for c in in_flight for e in c.events])
            assert status == 202, body
            stored_before = len(survived) > len(acked)
            assert body["duplicates"] == (len(flight_ids) if stored_before else 0)
            assert body["accepted"] + body["duplicates"] == len(flight_ids)
        final = await server.snapshot(http)
    server.stop()
    assert approx_equal(observed_today(final["total"]["today"]),
                        expected_today(acked + in_flight))


async def test_restart_when_idle_shows_the_same_board_in_every_window(
        tmp_path: Path, server_process) -> None:
    rng = random.Random(5)
    server = server_process(journal_config(tmp_path / "data"))
    await server.start()
    stream = contacts(rng, "idle")
    sent = [next(stream) for _ in range(120)]
    async with aiohttp.ClientSession() as http:
        for i in range(0, len(sent), 10):
            status, body, _ = await server.post(http, [e for c in sent[i:i + 10]
                                                       for e in c.events])
            assert status == 202, body
        before = await server.snapshot(http)
    server.kill()
    server.wait()
    await server.start()
    async with aiohttp.ClientSession() as http:
        after = await server.snapshot(http)
        async with http.get(f"{server.url}/metrics") as resp:
            metrics = await resp.text()
    server.stop()
    assert windows_of(after) == windows_of(before)
    assert approx_equal(observed_today(after["total"]["today"]), expected_today(sent))
    assert after["total"]["live"]["waiting"] == before["total"]["live"]["waiting"] > 0
    events = sum(len(c.events) for c in sent)
    assert f"wallboard_journal_replayed_events {float(events)}" in metrics
    # Prometheus counters count what this process took in: the replay is not new traffic.
    assert 'wallboard_contacts_offered_total{channel="voice",queue="sales"} 0.0' in metrics


async def test_exported_journal_replays_to_the_numbers_the_server_showed(
        tmp_path: Path, server_process) -> None:
    rng = random.Random(8)
    server = server_process(journal_config(tmp_path / "data"))
    await server.start()
    stream = contacts(rng, "export")
    sent = [next(stream) for _ in range(60)]
    async with aiohttp.ClientSession() as http:
        status, body, _ = await server.post(http, [e for c in sent for e in c.events])
        assert status == 202, body
        shown = await server.snapshot(http)
    exported = server.cli("journal", "export", "--since", "today")
    stats = server.cli("journal", "stats", "--json")
    server.stop()
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "events.ndjson"
    path.write_text(exported.stdout)
    doc = orjson.loads(stats.stdout)
    assert doc["events"] == sum(len(c.events) for c in sent) == len(exported.stdout.splitlines())
    assert doc["sources"] == {"hook": doc["events"]} and doc["bytes_per_event"] > 0

    replayed = subprocess.run([sys.executable, "-m", "wallboard", "replay", str(path),
                               "--json", "--config", str(server.config_path)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    result = orjson.loads(replayed.stdout.splitlines()[-1])
    # The replay's clock is event time, so the daily totals are what can match exactly.
    assert observed_today(result["total"]["today"]) == observed_today(shown["total"]["today"])
    assert approx_equal(observed_today(result["total"]["today"]), expected_today(sent))
