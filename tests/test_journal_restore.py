"""Start-up replay in process: where it starts, arrival-time clocks, reconcile, retention."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import Live, base_config
from wallboard import hookimpl
from wallboard.config.settings import JournalConfig, parse_settings
from wallboard.ingest.restore import replay_start
from wallboard.journal import sqlite_backend as journal_sqlite
from wallboard.journal.sqlite_backend import DB_NAME, SqliteJournal
from wallboard.kit.source import Source, SourceConfig
from wallboard.model.events import Event, parse_event
from wallboard.server import keys
from wallboard.server.app import create_app
from wallboard.server.plugins import make_plugin_manager


def utc(*parts: int) -> float:
    """Epoch seconds of a UTC wall-clock time."""
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def settings(windows: list[str], timezone: str = "UTC", **site: Any) -> Any:
    return parse_settings({"site": {"timezone": timezone, **site}, "windows": windows})


class Clock:
    """A server clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(config: dict[str, Any], clock: Clock | None = None,
                  plugin: object | None = None) -> AsyncIterator[Live]:
    """The app on a real port until the block ends (then the journal is closed and unlocked)."""
    pm = make_plugin_manager()
    if plugin is not None:
        pm.register(plugin, name="journal_test")
    app = create_app(parse_settings(config, "<test>"), plugin_manager=pm,
                     clock=clock or time.time)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    session = ClientSession()
    try:
        yield Live(server, session)
    finally:
        await session.close()
        await server.close()


# -- where the replay starts ---------------------------------------------------------------


def test_replay_starts_at_local_midnight_minus_the_lateness() -> None:
    now = utc(2026, 11, 18, 9, 30)  # 11:30 in Jerusalem (UTC+2 in November)
    assert replay_start(settings(["15m", "1h", "today"], "Asia/Jerusalem"), now) == \
        utc(2026, 11, 17, 22, 0) - 600


def test_replay_start_on_a_dst_day_is_that_day_s_local_midnight() -> None:
    # Israel moves to UTC+3 on Friday 2026-03-27 at 02:00: midnight was still UTC+2.
    now = utc(2026, 3, 27, 12, 0)
    assert replay_start(settings(["today"], "Asia/Jerusalem", lateness_s=0), now) == \
        utc(2026, 3, 26, 22, 0)


def test_yesterday_and_a_night_shift_reach_further_back() -> None:
    now = utc(2026, 11, 18, 3, 0)
    assert replay_start(settings(["today", "yesterday"]), now) == utc(2026, 11, 17) - 600
    night = settings(["today", "shift"], shift_resets=["06:00", "22:00"], lateness_s=60)
    assert replay_start(night, now) == utc(2026, 11, 17, 22, 0) - 60  # the 22:00 shift


def test_a_24h_rolling_window_and_a_queue_in_another_zone_count_too() -> None:
    now = utc(2026, 11, 18, 20, 0)
    assert replay_start(settings(["24h", "today"]), now) == now - 86_400 - 600
    config = parse_settings({"site": {"timezone": "Asia/Tokyo"}, "windows": ["today"],
                             "queues": {"us": {"timezone": "America/New_York"}}})
    # Tokyo's day began at 15:00 UTC on the 18th, New York's at 05:00 UTC: the earlier wins.
    assert replay_start(config, now) == utc(2026, 11, 18, 5, 0) - 600


# -- arrival time is the replay's clock ----------------------------------------------------


async def test_rolling_windows_and_late_events_come_back_as_they_were(tmp_path: Path) -> None:
    clock = Clock(utc(2026, 11, 18, 12, 0))
    config = base_config(journal={"data_dir": str(tmp_path / "data")})

    def contact(n: int, **extra: Any) -> list[dict[str, Any]]:
        ts = extra.pop("ts", clock.now)
        base = {"queue": "sales", "contact_id": f"c{n}"}
        return [{"type": "contact.queued", "id": f"q{n}", "ts": ts - 30, **base},
                {"type": "contact.answered", "id": f"a{n}", "ts": ts, "wait_s": 30, **base}]

    async with running(config, clock) as live:
        assert (await live.post(contact(1)))[0] == 202
        clock.now += 25 * 60
        assert (await live.post(contact(2)))[0] == 202
        clock.now += 10 * 60
        # Arrives now but happened almost 12 minutes ago: past the 10-minute lateness, so not
        # counted. Event time alone would not say so: the newest event before it is older.
        assert (await live.post(contact(4, ts=clock.now - 700)))[0] == 202
        assert (await live.post(contact(3)))[0] == 202
        before = await live.get_json("/api/snapshot")
    sales = before["queues"]["sales"]
    assert [sales[w]["offered"] for w in ("15m", "1h", "today")] == [2, 3, 3]
    assert before["meta"]["late_events"] == 2

    async with running(config, clock) as live:
        after = await live.get_json("/api/snapshot")
    for window in ("15m", "1h", "today"):
        assert after["queues"]["sales"][window] == sales[window], window
    # Had the replay used event time as its clock, contact 4 would not have been late.
    assert after["meta"]["late_events"] == 2


# -- sources reconcile after the replay ----------------------------------------------------


class PbxConfig(SourceConfig):
    waiting: int


class Pbx(Source):
    """A PBX that can report its queue's current status, and re-sends one call on connect."""

    type: ClassVar[str] = "test_pbx"
    Config: ClassVar[type[SourceConfig]] = PbxConfig

    async def current_state(self) -> list[dict[str, Any]]:
        waiting = self.config.waiting  # type: ignore[attr-defined]
        return [{"type": "queue.snapshot", "id": f"snap-{waiting}", "ts": time.time(),
                 "queue": "sales", "waiting": waiting, "agents": {"available": 4}}]

    async def run(self, emit: Any) -> None:
        self.connected()
        emit({"type": "contact.queued", "id": "pbx-call-1", "ts": time.time(),
              "queue": "sales", "contact_id": "call-1"})
        await asyncio.Event().wait()


class PbxPlugin:
    @hookimpl
    def register_source_types(self) -> list[type[Source]]:
        return [Pbx]


async def wait_for(live: Live, check: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Poll /api/snapshot until `check(snapshot)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = await live.get_json("/api/snapshot")
        if check(snapshot):
            return snapshot
        assert time.monotonic() < deadline, snapshot["queues"]["sales"]
        await asyncio.sleep(0.05)


async def test_a_source_snapshot_corrects_live_state_after_the_replay(tmp_path: Path) -> None:
    def config(waiting: int) -> dict[str, Any]:
        return {"queues": {"sales": {}}, "journal": {"data_dir": str(tmp_path / "data")},
                "sources": {"pbx": {"type": "test_pbx", "waiting": waiting}}}

    async with running(config(7), plugin=PbxPlugin()) as live:
        first = await wait_for(live, lambda s: s["queues"]["sales"]["today"]["offered"] == 1)
    assert first["queues"]["sales"]["live"]["waiting"] == 7

    async with running(config(2), plugin=PbxPlugin()) as live:
        restored = live.app[keys.RESTORED]
        # The clean stop wrote a checkpoint holding the old snapshot and the call: they come
        # back from it, with nothing after it left to replay.
        assert restored.checkpoint is not None and restored.events == 0
        second = await wait_for(live, lambda s: s["queues"]["sales"]["live"]["waiting"] == 2)
        await asyncio.sleep(0.2)  # let the re-sent call arrive too
        second = await live.get_json("/api/snapshot")
    # The replayed snapshot said 7; the PBX's current one, applied after it, says 2.
    assert second["queues"]["sales"]["live"]["waiting"] == 2
    assert second["queues"]["sales"]["live"]["agents_available"] == 4
    # The call the PBX sent again on connect was already replayed: counted once.
    assert second["queues"]["sales"]["today"]["offered"] == 1


# -- retention -----------------------------------------------------------------------------


async def test_events_past_retention_are_pruned_in_the_background(tmp_path: Path) -> None:
    clock = Clock(utc(2026, 11, 18, 12, 0))
    data = tmp_path / "data"
    seed = SqliteJournal(JournalConfig(data_dir=str(data)))
    seed.open()
    seed.start()
    def event(n: int) -> Event:  # distinct ids: the journal stores an id once
        return parse_event({"type": "contact.queued", "id": f"x{n}",
                            "ts": clock.now - 10 * 86_400, "queue": "sales",
                            "contact_id": "old"}, "hook")

    await seed.append([event(n) for n in range(12_000)], clock.now - 10 * 86_400)  # past 7 days
    await seed.append([event(n) for n in range(12_000, 12_005)],
                      clock.now - 3 * 86_400)  # within retention
    await seed.close()

    config = base_config(journal={"data_dir": str(data), "retention_days": 7})
    async with running(config, clock) as live:
        status, _ = await live.post({"type": "contact.queued", "id": "new", "ts": clock.now,
                                     "queue": "sales", "contact_id": "new"})
        assert status == 202
        reader = SqliteJournal(JournalConfig(data_dir=str(data)))
        reader.open(writable=False)
        deadline = time.monotonic() + 10
        while (events := reader.stats().events) != 6:
            assert time.monotonic() < deadline, f"{events} events left"
            await asyncio.sleep(0.05)
        await reader.close()
        with contextlib.closing(sqlite3.connect(data / DB_NAME)) as con:  # ids go with them
            assert con.execute("SELECT count(*) FROM ids").fetchone()[0] == 6
        # Neither old batch is replayed: both arrived before today began.
        assert live.app[keys.RESTORED].events == 0


def test_journal_settings_are_checked_with_their_key_path(tmp_path: Path) -> None:
    from wallboard.config.settings import ConfigError, load_settings

    path = tmp_path / "site.yaml"
    path.write_text("journal:\n  batch_ms: 500\n  retention_days: 0\n")
    with pytest.raises(ConfigError) as failed:
        load_settings(path)
    assert f"{path}: journal.batch_ms: Input should be less than or equal to 100" in \
        failed.value.problems
    assert f"{path}: journal.retention_days: Input should be greater than or equal to 1" in \
        failed.value.problems


# -- push sources while the journal is down ------------------------------------------------


class Ticker(Source):
    """A push source: one queued contact every 20 ms."""

    type: ClassVar[str] = "test_ticker"

    async def run(self, emit: Any) -> None:
        self.connected()
        for n in range(100_000):
            emit({"type": "contact.queued", "id": f"t{n}", "ts": time.time(), "queue": "sales",
                  "contact_id": f"t{n}"})
            await asyncio.sleep(0.02)


class TickerPlugin:
    @hookimpl
    def register_source_types(self) -> list[type[Source]]:
        return [Ticker]


async def test_a_push_source_stays_live_while_the_journal_is_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_sqlite, "BUSY_TIMEOUT_MS", 200)
    config = {"queues": {"sales": {}}, "sources": {"tick": {"type": "test_ticker"}},
              "journal": {"data_dir": str(tmp_path / "data"), "retry_s": 0.3}}

    def offered(snapshot: dict[str, Any]) -> int:
        return snapshot["queues"]["sales"]["today"]["offered"]

    async with running(config, plugin=TickerPlugin()) as live:
        await wait_for(live, lambda s: offered(s) >= 3)
        holder = sqlite3.connect(tmp_path / "data" / DB_NAME, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            down = await wait_for(live, lambda s: s["meta"]["journal"] == "down")
            # Nobody waits for an acknowledgement: the board keeps counting, unstored.
            await wait_for(live, lambda s: offered(s) >= offered(down) + 5)
            status = live.app[keys.JOURNAL].status  # type: ignore[union-attr]
            failed = status.failed + live.app[keys.PIPELINE].unstored
            assert failed >= 5
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await wait_for(live, lambda s: s["meta"]["journal"] == "up")
        await wait_for(live, lambda s: offered(s) >= offered(down) + 10)
    stored = status.appended
    async with running({**config, "sources": {}}) as live:
        restored = await live.get_json("/api/snapshot")
    # What the journal stored comes back; what it could not store does not.
    assert offered(restored) == stored == live.app[keys.RESTORED].events
