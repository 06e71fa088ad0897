"""The live forecast tile's numbers through the real server: a month of contacts posted on a
moving clock, then today's block at a clock mid-interval against a computation by hand (the
mean of the same Mondays, the elapsed share of the current interval, Erlang C called with the
hand-made inputs), only on the boards that show a forecast tile; refused configs by key path.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.report_traffic import (
    DAY,
    DAY_TS,
    THRESHOLD_S,
    Call,
    Clock,
    Server,
    month,
    post_month,
)
from tests.wsclient import BoardClient
from wallboard.config.settings import ConfigError, parse_settings
from wallboard.fold.counters import HANDLE_SUM, HANDLED, OFFERED
from wallboard.fold.intervals import IntervalRecord
from wallboard.ingest.historian import to_row
from wallboard.journal import intervals
from wallboard.kpi.erlang import agents_needed
from wallboard.server import keys

FC_TV = "tv-token-forecast-board-01"
PLAIN_TV = "tv-token-plain-board-0001"
ADMIN = "admin-token-0123456789"
NOW = DAY_TS + 12 * 3600 + 7 * 60 + 30  # 12:07:30 on the Monday: half of 12:00-12:15 gone
BOARDS = {
    "fc": {"tiles": [{"type": "forecast", "queue": "sales"}, {"type": "forecast"}]},
    "plain": {"tiles": [{"kpi": "waiting", "queue": "sales"}, {"kpi": "offered"}]},
}
ACCESS = {"enabled": True, "admin_token": ADMIN, "boards": {"fc": [FC_TV], "plain": [PLAIN_TV]}}


def by_hand(days: dict[date, list[Call]], queue: str | None) -> dict[str, Any]:
    """The block of `queue` (None: the site) at NOW, from the contacts themselves."""
    def mine(c: Call) -> bool:
        return queue is None or c.queue == queue

    used = [d for d in (DAY - timedelta(days=7 * k) for k in range(1, 9)) if days.get(d)][:4]
    assert len(used) == 3  # the quiet Monday is skipped; 28 days hold three more
    offered: dict[int, float] = defaultdict(float)  # offset into the day -> contacts
    handle: dict[int, list[float]] = defaultdict(list)  # offset -> handle times ended then
    for d in used:
        midnight = DAY_TS - (DAY - d).days * 86_400
        for c in filter(mine, days[d]):
            offered[int((c.queued - midnight) // 900) * 900] += 1
            if c.answered:
                end = c.queued + c.wait + c.handle
                handle[int((end - midnight) // 900) * 900].append(c.handle)
    mean = {offset: n / len(used) for offset, n in offered.items()}
    elapsed = NOW - DAY_TS
    current = int(elapsed // 900) * 900
    so_far = sum(m for o, m in mean.items() if o < current) + mean.get(current, 0.0) * (
        (elapsed - current) / 900)
    today = [c for c in days[DAY] if mine(c) and c.queued < NOW]
    ended = [c.handle for c in today if c.answered and c.queued + c.wait + c.handle < NOW]
    nxt = current + 900
    aht = (sum(handle[nxt]) / len(handle[nxt]) if handle[nxt]
           else sum(ended) / len(ended) if ended else None)
    return {"offered_so_far": len(today), "forecast_so_far": so_far,
            "forecast_day": sum(mean.values()), "next_offered": mean.get(nxt, 0.0),
            "next_aht": aht, "next_start": DAY_TS + nxt,
            "from_history": bool(handle[nxt])}


async def snapshot(server: Server) -> dict[str, Any]:
    async with server.session.get(f"{server.url}/api/snapshot",
                                  headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def test_todays_block_equals_a_computation_by_hand_on_forecast_boards_only(
        tmp_path: Path) -> None:
    days = month()
    async with Server(tmp_path / "data", Clock(DAY_TS - 28 * 86_400), boards=BOARDS,
                      access=ACCESS) as server:
        await post_month(server, days, until=NOW)
        app = server.app
        app[keys.AGGREGATOR].advance(NOW)
        historian, forecast, hub = app[keys.HISTORIAN], app[keys.FORECAST], app[keys.HUB]
        assert historian is not None and forecast is not None
        await historian.flush()  # what the loop does every 5 s: the past Mondays stored
        await forecast.refresh()
        hub.flush()
        tree = (await snapshot(server))["forecast_today"]
        settings = server.settings
        agents_seen = 0
        for queue in ("sales", "chat", None):
            got = tree["queues"][queue] if queue else tree["total"]
            want = by_hand(days, queue)
            assert got["offered_so_far"] == want["offered_so_far"] > 0, queue
            assert got["forecast_so_far"] == pytest.approx(want["forecast_so_far"], abs=1e-4)
            assert got["forecast_day"] == pytest.approx(want["forecast_day"], abs=1e-4)
            assert got["forecast_rest"] == pytest.approx(
                want["forecast_day"] - want["forecast_so_far"], abs=1e-4)
            assert got["difference"] == pytest.approx(
                (want["offered_so_far"] - want["forecast_so_far"]) / want["forecast_so_far"],
                abs=1e-4)
            nxt = got["next"]
            assert nxt["start"] == want["next_start"]
            assert nxt["forecast_offered"] == pytest.approx(want["next_offered"], abs=1e-4)
            if want["next_aht"] is None:
                assert nxt["aht_s"] is None and nxt["agents_needed"] is None
                continue
            assert nxt["aht_s"] == pytest.approx(want["next_aht"], abs=1e-3)
            if queue is None:  # sales and chat differ in threshold: the site has no target
                assert nxt["agents_needed"] is None
                continue
            sl = settings.queues[queue].service_level
            assert sl.threshold_s == THRESHOLD_S[queue]
            expected = agents_needed(want["next_offered"] / 900, want["next_aht"],
                                     sl.threshold_s, sl.target).agents
            assert nxt["agents_needed"] == expected
            agents_seen += expected is not None and want["next_offered"] > 0
        assert agents_seen, "the month must give some queue a next interval to staff"

        # Scoped: the forecast board's TV gets its tiles' blocks, the other board's none.
        async with BoardClient(f"ws://127.0.0.1:{server.server.port}/ws?board=fc"
                               f"&token={FC_TV}") as tv:
            first = await tv.receive()
        assert first["type"] == "snapshot"
        keys_fc = [k for k in first["data"] if k.startswith("forecast_today.")]
        assert "forecast_today.queues.sales.forecast_so_far" in keys_fc
        assert "forecast_today.total.next.agents_needed" in keys_fc
        assert not [k for k in keys_fc if k.startswith("forecast_today.queues.chat.")]
        assert first["data"]["forecast_today.queues.sales.forecast_day"] == pytest.approx(
            by_hand(days, "sales")["forecast_day"], abs=1e-4)
        async with BoardClient(f"ws://127.0.0.1:{server.server.port}/ws?board=plain"
                               f"&token={PLAIN_TV}") as tv:
            first = await tv.receive()
        assert first["type"] == "snapshot"
        assert "queues.sales.live.waiting" in first["data"]
        assert not [k for k in first["data"] if k.startswith("forecast_today")]

        # A new day: yesterday's forecast is never shown as today's; read again, it is back.
        server.clock.now = DAY_TS + 86_400 + 9 * 3600
        app[keys.AGGREGATOR].advance(server.clock.now)
        assert forecast.due(server.clock.now)
        hub.flush()
        blank = (await snapshot(server))["forecast_today"]["queues"]["sales"]
        assert blank["forecast_day"] is None and blank["next"]["agents_needed"] is None
        await historian.flush()
        await forecast.refresh()
        assert not forecast.due(server.clock.now)
        hub.flush()
        tuesday = (await snapshot(server))["forecast_today"]["queues"]["sales"]
        tuesdays = [d for d in (DAY + timedelta(days=1 - 7 * k) for k in range(1, 5))
                    if days.get(d)]
        assert tuesday["forecast_day"] == pytest.approx(
            sum(c.queue == "sales" for d in tuesdays for c in days[d]) / len(tuesdays),
            abs=1e-4)
        async with server.session.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
        assert 'wallboard_forecast_refreshes_total{result="ok"}' in text


async def test_without_history_the_block_is_null_everywhere(tmp_path: Path) -> None:
    async with Server(tmp_path / "data", Clock(NOW), boards=BOARDS, access=ACCESS) as server:
        await server.post([{"type": "contact.queued", "id": "q1", "ts": NOW - 60,
                            "queue": "sales", "contact_id": "c1"}])
        forecast = server.app[keys.FORECAST]
        assert forecast is not None
        await forecast.refresh()
        server.app[keys.HUB].flush()
        tree = (await snapshot(server))["forecast_today"]
    for block in (tree["total"], *tree["queues"].values()):
        assert block == {"offered_so_far": None, "forecast_so_far": None,
                         "forecast_rest": None, "forecast_day": None, "difference": None,
                         "next": {"start": None, "forecast_offered": None, "aht_s": None,
                                  "agents_needed": None}}


async def test_a_server_without_forecast_tiles_adds_no_block(tmp_path: Path) -> None:
    async with Server(tmp_path / "data", Clock(NOW), boards={"plain": BOARDS["plain"]}) as s:
        assert s.app[keys.FORECAST] is None
        s.app[keys.HUB].flush()
        assert "forecast_today" not in await snapshot(s)


@pytest.mark.parametrize("tile,windows,path,words", [
    ({"type": "forecast", "queue": "nope"}, None, "boards.b.tiles[0].queue", "unknown queue"),
    ({"type": "forecast"}, ["15m", "1h"], "boards.b.tiles[0].type", "'today' window"),
    ({"type": "forecast", "channel": "voice"}, None, "boards.b.tiles[0]", "not a channel"),
    ({"type": "forecast", "window": "1h"}, None, "boards.b.tiles[0]", "today window"),
])
def test_check_config_refuses_a_bad_forecast_tile_by_key_path(
        tile: dict[str, Any], windows: list[str] | None, path: str, words: str) -> None:
    config: dict[str, Any] = {
        "site": {"name": "S", "timezone": "UTC"}, "queues": {"sales": {}},
        "boards": {"b": {"tiles": [tile]}}}
    if windows:
        config["windows"] = windows
    with pytest.raises(ConfigError) as err:
        parse_settings(config, "<test>")
    assert path in str(err.value) and words in str(err.value), str(err.value)


async def test_hostile_history_is_counted_and_never_crashes_the_snapshot(tmp_path: Path) -> None:
    """A row that does not decode is left out and counted; absurd counts give null agents."""
    data = tmp_path / "data"
    data.mkdir()
    nxt = int(NOW // 900) * 900 + 900
    rows = [(nxt - 7 * 86_400, "queue", "chat", "chat", b"\xff not json"),
            to_row(IntervalRecord(nxt - 7 * 86_400, "queue", "sales", "voice",
                                  {OFFERED: 1e300, HANDLED: 1.0, HANDLE_SUM: 120.0},
                                  [{}, {}, {}, {}]))]
    with sqlite3.connect(data / "journal.sqlite3") as con:
        intervals.create(con)
        con.isolation_level = None  # store() runs its own transaction
        intervals.store(con, rows, True, None)
    async with Server(data, Clock(NOW), boards=BOARDS, access=ACCESS) as server:
        forecast = server.app[keys.FORECAST]
        assert forecast is not None
        await forecast.refresh()
        server.app[keys.HUB].flush()
        tree = (await snapshot(server))["forecast_today"]
        journal = server.app[keys.JOURNAL]

        def broken(since: int, until: int, queues: frozenset[str] = frozenset()
                   ) -> list[Any]:
            raise sqlite3.OperationalError("disk I/O error")

        journal.intervals = broken  # type: ignore[method-assign,union-attr]  # a store failing
        await forecast.refresh()
        server.app[keys.HUB].flush()
        kept = (await snapshot(server))["forecast_today"]
        async with server.session.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
    assert kept == tree  # a failed read keeps the forecast it had
    assert forecast.due(NOW + 61) and not forecast.due(NOW + 59)  # tried again in a minute
    sales = tree["queues"]["sales"]
    assert sales["next"]["forecast_offered"] == pytest.approx(1e300)
    assert sales["next"]["aht_s"] == 120.0
    assert sales["next"]["agents_needed"] is None  # past Erlang's bounds: not computable
    assert tree["queues"]["chat"]["forecast_day"] is None  # its only row was unreadable
    # Counted at each read (the loop's at start and the forced one): never silently.
    assert float(sample(text, "wallboard_history_unreadable_total")) >= 1
    assert float(sample(text, 'wallboard_forecast_refreshes_total{result="ok"}')) >= 1
    assert float(sample(text, 'wallboard_forecast_refreshes_total{result="failed"}')) == 1


def sample(text: str, name: str) -> str:
    """One sample's value in an exposition."""
    return next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " "))
