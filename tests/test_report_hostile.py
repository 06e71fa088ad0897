"""Near-valid report requests through a real server process: every answer is a 200 with rows or
a 400 naming the parameter, counted in /metrics; the server keeps answering, with access on."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TOKEN
from tests.serverproc import ServerProcess, journal_config

ADMIN = "admin-secret-for-reports-0123"
PARAMS = ("from", "to", "interval", "queue", "format")
TODAY = date.today()

_dates = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(str),
    st.integers(-40, 40).map(lambda d: str(TODAY + timedelta(days=d))),
    st.sampled_from(["2026-02-30", "2026-13-01", "", "today", "2026-1-1", "20261201",
                     "2026-12-01T00:00", "\u0662\u0660\u0662\u0666-12-01", "2026-12-01\x00"]))
_values = {
    "from": _dates, "to": _dates,
    "interval": st.sampled_from(["15m", "30m", "1h", "1d", "5m", "1H", "", "15m\n", "1w"]),
    "queue": st.one_of(st.sampled_from(["sales", "chat", "nope", "", "\u202esales"]),
                       st.text(max_size=300)),
    "format": st.sampled_from(["json", "csv", "table", "xml", "", "JSON"]),
}
_pairs = st.lists(st.one_of(*(st.tuples(st.just(k), v) for k, v in _values.items()),
                            st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=20))),
                  max_size=8)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("report-hostile")
    config = journal_config(workdir / "data")
    config["access"] = {"enabled": True, "admin_token": ADMIN}
    proc = ServerProcess(workdir, config)
    asyncio.run(proc.start())
    now = time.time()
    body = orjson.dumps([{"type": "contact.queued", "id": f"q{i}", "ts": now - 60 + i,
                          "queue": "sales", "contact_id": f"c{i}"} for i in range(5)])
    request = urllib.request.Request(f"{proc.url}/api/events", data=body, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status in (200, 202)
    yield proc
    proc.stop()


def _get(server: ServerProcess, query: str, token: str | None = ADMIN) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{server.url}/api/report?{query}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _bad_requests(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith('wallboard_report_requests_total{result="bad_request"}'):
                return float(line.split()[-1])
    raise AssertionError("no wallboard_report_requests_total")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.data_too_large])
@given(pairs=_pairs)
def test_near_valid_queries_get_rows_or_a_named_refusal(server: ServerProcess,
                                                        pairs: list[tuple[str, str]]) -> None:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    before = _bad_requests(server)
    status, body = _get(server, query)
    assert status in (200, 400), (status, body[:300])
    if status == 400:
        text = body.decode()
        assert text.startswith("GET /api/report: ")
        assert any(f" {name}:" in text for name in PARAMS), text
        assert _bad_requests(server) == before + 1
        return
    fmt = dict(pairs).get("format", "json") if pairs else "json"
    if fmt == "csv":
        assert body.startswith("\ufeff".encode())
    elif fmt == "json":
        assert isinstance(orjson.loads(body)["rows"], list)
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert resp.status == 200


def test_the_report_needs_the_admin_token_when_access_is_on(server: ServerProcess) -> None:
    assert _get(server, "", None)[0] == 401
    assert _get(server, "", "wrong-token")[0] == 401
    assert _get(server, "", TOKEN)[0] == 401  # a source's token is not the admin's
    status, body = _get(server, "interval=1h")
    assert status == 200
    rows = orjson.loads(body)["rows"]
    assert sum(r["offered"] for r in rows if r["level"] == "queue" and r["queue"] == "sales") == 5
