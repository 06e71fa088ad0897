"""Series in deltas: only the points that changed travel, and clients rebuild the server's lists.

Protocol level: the hub's deltas to an unscoped and a scoped client are applied by an applier
written here from the documented rule (`[drop, cut, tail]`: drop points at the front, cut at
the end, append the tail), independent of the server's own, over many random changes; a sequence
gap is repaired by a snapshot. In chromium: the page's applier (wb-sync.js) gives the same lists
as that rule, the real board's sparkline series equal the server's after many deltas, and the
page's reconnect delays are fully jittered (spread over the whole back-off ceiling).
"""

from __future__ import annotations

import copy
import json
import random
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.wsclient import unframe
from wallboard.server.hub import Hub, flatten
from wallboard.server.scope import scoped_tree

REPO = Path(__file__).resolve().parents[1]
SCOPE = (("meta",), ("series", "a"))


def reference_apply(state: dict[str, Any], message: dict[str, Any]) -> None:
    """A client's state after one message, by the protocol as docs/architecture.md states it."""
    if message["type"] == "snapshot":
        state.clear()
        state.update(message["data"])
        return
    state.update(message["changes"])
    for key in message["removed"]:
        state.pop(key, None)
    for key, (drop, cut, tail) in message.get("series", {}).items():
        old = state[key]
        state[key] = old[drop:len(old) - cut] + tail


class Outbox:
    """A hub client that keeps the frames it is offered."""

    board = "b"

    def __init__(self, scope: Any = None) -> None:
        self.scope = scope
        self.messages: list[bytes] = []

    def offer(self, frame: bytes) -> None:
        self.messages.append(unframe(frame))


def series_tree(points: list[float | None], other: list[float | None]) -> dict[str, Any]:
    return {"meta": {"ts": 1}, "series": {"a": points, "b": other}, "live": {"x": 1}}


def test_a_delta_where_one_point_moved_carries_that_point_alone() -> None:
    tree = series_tree([float(i) for i in range(60)], [0.5] * 60)
    hub = Hub(lambda: copy.deepcopy(tree))
    hub.flush()
    client = Outbox()
    hub.clients.add(client)  # type: ignore[arg-type]
    whole = len(orjson.dumps(tree["series"]["a"]))

    tree["series"]["a"][-1] = 99.25  # the newest point: the value now
    hub.flush()
    delta = orjson.loads(client.messages[-1])
    assert delta["changes"] == {} and delta["removed"] == []
    assert delta["series"] == {"series.a": [0, 1, [99.25]]}
    one_point = len(client.messages[-1])
    assert one_point < whole / 3, (one_point, whole)  # the message, smaller than the list

    tree["series"]["a"][-5:] = [1.5, 2.5, 3.5, 4.5, 5.5]  # five points: five in the delta
    hub.flush()
    assert orjson.loads(client.messages[-1])["series"] == {
        "series.a": [0, 5, [1.5, 2.5, 3.5, 4.5, 5.5]]}
    assert len(client.messages[-1]) - one_point == len(b"1.5,2.5,3.5,4.5,5.5") - len(b"99.25")

    tree["series"]["a"] = [*tree["series"]["a"][1:], 7.0]  # a step: shifted by one
    hub.flush()
    assert orjson.loads(client.messages[-1])["series"] == {"series.a": [1, 0, [7.0]]}

    tree["series"]["b"] = [float(i) for i in range(60)]  # changed throughout: the whole list
    hub.flush()
    delta = orjson.loads(client.messages[-1])
    assert delta["changes"] == {"series.b": tree["series"]["b"]} and "series" not in delta


def test_clients_rebuild_the_servers_lists_after_many_random_deltas() -> None:
    rng = random.Random(25)
    tree = series_tree([None] * 60, [1.0] * 60)
    hub = Hub(lambda: copy.deepcopy(tree))
    hub.flush()
    whole, scoped = Outbox(), Outbox(SCOPE)
    hub.clients.update({whole, scoped})  # type: ignore[arg-type]
    states: dict[Outbox, dict[str, Any]] = {
        whole: dict(orjson.loads(hub.snapshot_message())["data"]),
        scoped: dict(orjson.loads(hub.snapshot_message(SCOPE))["data"])}
    ops_seen = 0
    for step in range(600):
        for key in ("a", "b"):
            points = tree["series"][key] = tree["series"][key] or [None]
            kind = rng.random()
            if kind < 0.5:
                points[-1] = rng.choice([None, round(rng.uniform(0, 50), 2)])
            elif kind < 0.75:
                tree["series"][key] = [*points[1:], round(rng.uniform(0, 50), 2)]
            elif kind < 0.85:
                points[rng.randrange(len(points))] = rng.randrange(5)
            elif kind < 0.92:  # the list grows or shrinks (a history being refilled)
                tree["series"][key] = points[:rng.randrange(1, 70)] + [1.0] * rng.randrange(3)
            else:
                tree["series"][key] = [rng.uniform(0, 1) for _ in range(rng.randrange(0, 61))]
        tree["meta"]["ts"] = step
        hub.flush()
        for client, state in states.items():
            message = orjson.loads(client.messages[-1])
            assert message["seq"] == hub.seq
            ops_seen += len(message.get("series", {}))
            reference_apply(state, message)
        assert states[whole] == flatten(copy.deepcopy(tree))
        assert states[scoped] == flatten(scoped_tree(copy.deepcopy(tree), SCOPE))
    assert ops_seen > 300  # most changes went as ops, not whole lists

    # A client that missed a delta (a gap) starts again from a snapshot and is exact again.
    tree["series"]["a"][-1] = -1.0
    hub.flush()
    tree["series"]["a"] = [*tree["series"]["a"][1:], -2.0]
    hub.flush()
    resync = orjson.loads(hub.snapshot_message())
    assert resync["seq"] == hub.seq
    reference_apply(states[whole], resync)
    assert states[whole] == flatten(copy.deepcopy(tree))


# --------------------------------------------------------------------------- in chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.test_board_browser import launched

    with launched() as browser:
        yield browser


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    from tests.test_board_browser import recording_page

    with recording_page(browser, 800, 600) as page:
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=(REPO / "web/static/wb-sync.js").read_text())
        yield page
        assert page.errors == []


def test_the_pages_applier_matches_the_rule(page: Any) -> None:
    rng = random.Random(3)
    state = {"series.a": [float(i) for i in range(60)]}
    ops = []
    for _ in range(300):
        old = state["series.a"]
        drop = rng.randrange(0, min(2, len(old)) + 1)
        cut = rng.randrange(0, len(old) - drop + 1)
        op = [drop, cut, [rng.choice([None, rng.uniform(0, 9)]) for _ in range(rng.randrange(4))]]
        ops.append(op)
        reference_apply(state, {"type": "delta", "changes": {}, "removed": [],
                                "series": {"series.a": op}})
    result = page.evaluate("""([start, ops]) => {
        const state = {"series.a": start};
        for (const op of ops) {
            const before = state["series.a"];
            if (!WB.sync.applySeries(state, {"series.a": op})) return "refused";
            if (state["series.a"] === before) return "mutated in place";
        }
        const refused = !WB.sync.applySeries(state, {"series.a": [50, 50, []]})
            && !WB.sync.applySeries({}, {"series.x": [0, 0, [1]]});
        return refused ? state["series.a"] : "accepted an op that does not fit";
    }""", [[float(i) for i in range(60)], ops])
    assert result == state["series.a"]


def test_the_pages_reconnect_delays_are_fully_jittered(page: Any) -> None:
    # 1,000 TVs' delays for each attempt: spread over [0, ceiling), not bunched at its top.
    delays = page.evaluate("""() => [0, 1, 2, 3, 6, 12].map(
        (n) => Array.from({length: 1000}, () => WB.sync.reconnectDelay(n)))""")
    for attempt, values in zip([0, 1, 2, 3, 6, 12], delays, strict=True):
        ceiling = min(30000, 500 * 2 ** attempt)
        assert all(0 <= v < ceiling for v in values)
        assert min(values) < 0.05 * ceiling and max(values) > 0.95 * ceiling
        below_half = sum(v < ceiling / 2 for v in values)
        assert 400 < below_half < 600, below_half  # uniform: about half in each half
        assert len({round(v) for v in values}) > 300  # no lockstep


def test_the_boards_sparkline_series_equal_the_servers_after_many_deltas(
        browser: Any, tmp_path: Path) -> None:
    import yaml
    from websockets.sync.client import connect

    from tests.test_board_browser import Server, _free_port, recording_page
    from tests.test_board_tv import ADMIN, TOKEN

    config = {
        "site": {"name": "Series", "timezone": "UTC"},
        "server": {"push_interval_ms": 50, "history_step_s": 1},
        "queues": {"sales": {"channel": "voice"}},
        "sources": {"hook": {"type": "webhook", "token": TOKEN}},
        "journal": {"data_dir": str(tmp_path / "data")},
        "access": {"admin_token": ADMIN},
        "boards": {"s": {"tiles": [{"type": "sparkline", "kpi": "waiting"},
                                   {"type": "sparkline", "kpi": "offered", "window": "15m"}]}},
    }
    path = tmp_path / "wallboard.yaml"
    path.write_text(yaml.safe_dump(config))
    srv = Server(path, _free_port(), tmp_path / "server.log")
    srv.start()
    try:
        with recording_page(browser, 1280, 720) as page:
            page.goto(f"{srv.url}/board/s")
            page.wait_for_function("() => window.wallboard && window.wallboard.connected",
                                   timeout=20000)
            page.evaluate("""() => { const apply = WB.sync.applySeries; window.ops = 0;
                WB.sync.applySeries = (state, ops) => {
                    window.ops += Object.keys(ops).length; return apply(state, ops); }; }""")
            n = 0
            deadline = time.monotonic() + 8  # 8 steps of the series, ~100 deltas
            while time.monotonic() < deadline:
                n += 1
                post(srv.url, [{"type": "contact.queued", "id": f"q{n}", "ts": time.time(),
                                "queue": "sales", "contact_id": f"c{n}"}])
                time.sleep(0.07)
            keys = page.evaluate("() => Object.keys(wallboard.state).filter("
                                 "(k) => k.startsWith('series.'))")
            assert len(keys) == 2
            # The page against a fresh snapshot at the same sequence number (the series
            # still move once a step: a few tries until both are taken between two flushes).
            for _ in range(100):
                seq, page_series = page.evaluate(
                    "(keys) => [wallboard.seq, keys.map((k) => wallboard.state[k])]", keys)
                with connect(f"ws://127.0.0.1:{srv.port}/ws?board=s") as ws:
                    snapshot = json.loads(ws.recv(timeout=10))
                if snapshot["seq"] == seq:
                    break
                time.sleep(0.03)
            assert snapshot["seq"] == seq
            assert page_series == [snapshot["data"][k] for k in keys]
            assert any(v for series in page_series for v in series)  # not all None
            assert page.evaluate("() => window.ops") > 20  # the lists came as ops
            assert page.errors == []
    finally:
        srv.stop()


def post(url: str, events: list[dict[str, Any]]) -> None:
    from tests.test_board_tv import TOKEN

    request = urllib.request.Request(f"{url}/api/events", data=orjson.dumps(events), headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 202
