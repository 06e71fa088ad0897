"""The interval report through the real server: a month of contacts posted to the webhook on a
moving clock (or imported, with the real helpdesk log), the day's rows at 15m and 1h against a
recount by hand, the forecast against an independent mean, CSV, bad parameters, and the same
report after a restart."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import base_config
from tests.helpdesk_events import helpdesk_events
from tests.report_traffic import (
    CHANNEL,
    DAY,
    DAY_TS,
    THRESHOLD_S,
    Call,
    Clock,
    Server,
    events_of,
    iso,
    month,
    post_month,
    recount,
)
from wallboard.ingest.backfill_cli import run_import

HELPDESK = Path(__file__).resolve().parent / "data" / "helpdesk" / "helpdesk.csv"


def rows_by(doc: dict[str, Any], level: str) -> dict[tuple[str, str], dict[str, Any]]:
    name = {"site": "", "queue": "queue", "channel": "channel"}[level]
    return {(row[name] if name else "", row["start"]): row for row in doc["rows"]
            if row["level"] == level}


def forecast_by_hand(days: dict[date, list[Call]], width: int) -> dict[tuple[str, int], float]:
    """The mean offered per (queue or site, time of day) over the last four Mondays with data.

    Intervals where those days had any fact (an answer, an end, a deadline) but no offer
    have a forecast of 0; intervals where they had nothing have none.
    """
    used = [d for d in (DAY - timedelta(days=7 * k) for k in range(1, 9))
            if days.get(d)][:4]
    sums: dict[tuple[str, int], float] = defaultdict(float)
    for d in used:
        midnight = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        for c in days[d]:
            left = c.queued + c.wait
            facts = [left, left + c.handle] if c.answered else [left]
            if c.wait > THRESHOLD_S[c.queue]:
                facts.append(c.queued + THRESHOLD_S[c.queue])
            for ts, offered in [(c.queued, 1.0)] + [(ts, 0.0) for ts in facts]:
                offset = int((ts - midnight) // width) * width
                sums[(c.queue, offset)] += offered
                sums[("", offset)] += offered
    return {key: total / len(used) for key, total in sums.items()}


def import_month(data: Path, days: dict[date, list[Call]], workdir: Path) -> None:
    """`wallboard journal import` of the month and of the real helpdesk log (tickets)."""
    config = workdir / "wallboard.yaml"
    config.write_bytes(orjson.dumps(base_config(journal={"data_dir": str(data)})))
    month_file = workdir / "month.ndjson"
    month_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in
                                    events_of([c for calls in days.values() for c in calls])))
    helpdesk = workdir / "helpdesk.ndjson"
    helpdesk.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in helpdesk_events(HELPDESK)))
    for path in (month_file, helpdesk):
        out = io.StringIO()
        args = argparse.Namespace(file=str(path), config=str(config), data_dir=None,
                                  source="import")
        assert run_import(args, out, io.StringIO()) == 0, out.getvalue()
        assert "refused: 0" in out.getvalue() and "fold errors: 0" in out.getvalue()


@pytest.mark.parametrize("path", ["webhook", "import"])
@pytest.mark.parametrize("interval,width", [("15m", 900), ("1h", 3600)])
async def test_a_days_report_matches_a_recount_and_the_forecast_a_mean(
        tmp_path: Path, interval: str, width: int, path: str) -> None:
    days = month()
    if path == "import":  # the command runs its own event loop: off this one
        await asyncio.to_thread(import_month, tmp_path / "data", days, tmp_path)
    clock = Clock(DAY_TS - 28 * 86_400 if path == "webhook" else DAY_TS + 86_400 + 3600)
    async with Server(tmp_path / "data", clock) as server:
        if path == "webhook":
            await post_month(server, days)
        status, body, _ = await server.report(f"from={DAY}&interval={interval}")
        assert status == 200, body
        doc = orjson.loads(body)
    expected = recount(days[DAY], width)
    site, queues, channels = (rows_by(doc, "site"), rows_by(doc, "queue"),
                              rows_by(doc, "channel"))
    fields = ("offered", "answered", "abandoned", "abandoned_short", "handled", "asa_s",
              "aht_s", "service_level", "abandon_rate")
    counted = 0
    for (queue, start), want in expected.items():
        row = site[("", iso(start))] if queue == "" else queues[(queue, iso(start))]
        assert row["end"] == iso(start + width)
        assert {f: row[f] for f in fields} == {f: want[f] for f in fields}, (queue, start)
        if want["wait_p90_s"] is None:
            assert row["wait_p90_s"] is None
        else:  # the sketch's guarantee: within 1% of the exact nearest-rank value
            assert row["wait_p90_s"] == pytest.approx(want["wait_p90_s"], rel=0.0101)
        if queue:
            channel = channels[(CHANNEL[queue], iso(start))]
            assert {f: channel[f] for f in fields} == {f: want[f] for f in fields}
        counted += 1
    # Only the day's rows with actuals or a forecast, and every actual accounted for.
    assert sum(r["offered"] for r in site.values()) == len(days[DAY]) > 0
    assert counted == len(expected)
    forecast = forecast_by_hand(days, width)
    assert forecast, "the month must give the day a forecast"
    for (queue, offset), mean in forecast.items():
        row = (site if queue == "" else queues)[(queue, iso(DAY_TS + offset))]
        assert row["forecast_offered"] == pytest.approx(mean, abs=1e-4), (queue, offset)
    without = [r for r in doc["rows"] if r["level"] in ("site", "queue") and
               (r["queue"], int(datetime.fromisoformat(r["start"]).timestamp() - DAY_TS))
               not in forecast]
    assert all(r["forecast_offered"] is None for r in without)
    assert without or interval == "1h"  # at 15m the day has intervals the Mondays lacked


async def test_csv_round_trips_and_bad_parameters_are_refused_by_name(tmp_path: Path) -> None:
    days = {d: calls for d, calls in month().items() if d >= DAY - timedelta(days=1)}
    async with Server(tmp_path / "data", Clock(DAY_TS - 86_400)) as server:
        await post_month(server, days)
        status, body, _ = await server.report(f"from={DAY}&interval=1h")
        doc = orjson.loads(body)
        status, body, headers = await server.report(f"from={DAY}&interval=1h&format=csv")
        assert status == 200
        assert headers["Content-Type"].startswith("text/csv")
        assert "attachment" in headers["Content-Disposition"]
        assert body.startswith("\ufeff".encode())
        table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        assert len(table) == len(doc["rows"]) > 0
        for line, row in zip(table, doc["rows"], strict=True):
            for name in ("offered", "answered", "abandoned", "service_level", "asa_s"):
                value = row[name]
                assert line[name] == ("" if value is None else str(value))
        for query, named in [("from=2026-13-01", "from:"), (f"from={DAY}&interval=7m",
                             "interval:"), (f"from={DAY}&to=2026-11-01", "to:"),
                             ("from=2025-01-01&to=2026-11-30&interval=15m", "to:"),
                             (f"from={DAY}&format=xml", "format:"),
                             (f"from={DAY}&queue=" + "q" * 500, "queue:")]:
            status, body, _ = await server.report(query)
            assert status == 400 and named in body.decode(), (query, body)
        async with server.session.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
        assert 'wallboard_report_requests_total{result="bad_request"} 6.0' in text


async def test_the_report_is_the_same_after_a_restart(tmp_path: Path) -> None:
    days = {d: calls for d, calls in month().items() if d >= DAY - timedelta(days=1)}
    clock = Clock(DAY_TS - 86_400)
    async with Server(tmp_path / "data", clock) as server:
        # Stopped at 16:05: the report mixes stored, closed and still open intervals.
        await post_month(server, days, until=DAY_TS + 16 * 3600 + 300)
        for minute in range(1, 4):  # sparkline samples at three more minutes, each one seen
            clock.now += 60
            await server.post([{"type": "contact.queued", "id": f"spark-{minute}",
                                "ts": clock.now, "queue": "sales",
                                "contact_id": f"spark-{minute}"}])
            await server.wait_for_snapshot_at(clock.now)
        _, before, _ = await server.report(f"from={DAY - timedelta(days=1)}&to={DAY}")
        _, snap_before, _ = await server.report(f"from={DAY}&interval=1d")
        series_before = await server.series()
    async with Server(tmp_path / "data", clock) as server:
        _, after, _ = await server.report(f"from={DAY - timedelta(days=1)}&to={DAY}")
        _, snap_after, _ = await server.report(f"from={DAY}&interval=1d")
        series_after = await server.series()
    assert orjson.loads(after)["rows"] == orjson.loads(before)["rows"]
    assert orjson.loads(snap_after) == orjson.loads(snap_before)
    # The sparklines too: their samples are part of the checkpoint taken at the stop.
    assert series_after == series_before
    assert any(v is not None for points in series_before.values() for v in points[:-1])
    assert len(orjson.loads(before)["rows"]) > 20
