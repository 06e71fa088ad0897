"""Who sees agent names: only the TVs of a board with an agent tile, as that board allows.

The real app on a real port with access on; real websocket clients and HTTP. Every byte a TV
receives (its snapshot, each delta, /api/snapshot with its token) is searched for the names.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import base_config
from tests.wsclient import BoardClient

ADMIN = "admin-token-0123456789"
TV = {"plain": "tv-token-plain-000001", "names": "tv-token-names-000001",
      "initials": "tv-token-initials-0001", "hidden": "tv-token-hidden-000001"}
ROSTERED = "agent-7731"  # an id the roster names "Zebulon Quixote"
UNROSTERED = "Wilhelmina Fairweather"  # a source whose agent ids are names
EVERY_NAME = ("Zebulon", "Quixote", "Wilhelmina", "Fairweather", ROSTERED)
GRID = {"type": "agent_grid"}


def config(tmp_path: Path) -> dict[str, Any]:
    return base_config(
        journal={"data_dir": str(tmp_path / "journal")},
        agents={"roster": {ROSTERED: {"name": "Zebulon Quixote", "team": "red"}},
                "reasons": {"Lunch break": "lunch"}},
        boards={"plain": {"tiles": [{"kpi": "waiting"}, {"type": "agents"}]},
                "names": {"agents": "names",
                          "tiles": [{"kpi": "waiting"}, GRID, {"type": "team_table"}]},
                "initials": {"agents": "initials",
                             "tiles": [{"kpi": "waiting"}, GRID, {"type": "agent_table"}]},
                "hidden": {"tiles": [{"kpi": "waiting"}, GRID]}},
        access={"enabled": True, "admin_token": ADMIN,
                "boards": {board: [token] for board, token in TV.items()}})


def events() -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"type": "agent.state", "id": "s1", "ts": now - 30, "agent": ROSTERED, "state": "away",
         "reason": "Lunch break", "queue": "sales"},
        {"type": "agent.state", "id": "s2", "ts": now - 30, "agent": UNROSTERED,
         "state": "busy", "team": "blue", "queue": "sales"},
        {"type": "contact.queued", "id": "q1", "ts": now - 20, "queue": "sales",
         "contact_id": "c1"},
        {"type": "contact.answered", "id": "a1", "ts": now - 10, "queue": "sales",
         "contact_id": "c1", "agent": UNROSTERED},
        # Last: once a TV shows this contact waiting, every agent event above is folded.
        {"type": "contact.queued", "id": "q2", "ts": now, "queue": "sales",
         "contact_id": "c2"},
    ]


async def received(live: Any, board: str) -> tuple[list[str], dict[str, Any]]:
    """Every text a TV of `board` receives until the last event shows; and its flat state."""
    texts: list[str] = []
    async with BoardClient(f"{live.ws_url}/ws?board={board}&token={TV[board]}") as tv:
        assert tv.conn is not None
        deadline = time.monotonic() + 20
        while tv.state.get("total.live.waiting") != 1:
            assert time.monotonic() < deadline, f"{board}: the events never showed"
            text = await tv.conn.recv()
            texts.append(text if isinstance(text, str) else text.decode())
            tv.apply(orjson.loads(texts[-1]))
        return texts, tv.state


async def api_body(live: Any, token: str) -> str:
    """/api/snapshot as a reader with `token`: the admin's as a header, a TV's as ?token=."""
    url, headers = f"{live.url}/api/snapshot", {}
    if token == ADMIN:
        headers["Authorization"] = f"Bearer {token}"
    else:
        url += f"?token={token}"
    async with live.session.get(url, headers=headers) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_agent_names_reach_only_the_boards_that_show_them(live_server,
                                                                 tmp_path: Path) -> None:
    live = await live_server(config(tmp_path))
    status, body = await live.post(events())
    assert status == 202, body
    # The names are in the system: the admin's snapshot has the agents, by their ids.
    for _ in range(200):
        admin = orjson.loads(await api_body(live, ADMIN))
        if admin["total"]["live"]["waiting"] == 1:
            break
    assert {ROSTERED, UNROSTERED} <= set(admin["agents"])

    seen = {}
    for board in TV:
        texts, state = await received(live, board)
        seen[board] = ("\n".join(texts) + await api_body(live, TV[board]), state)

    # A board without an agent tile: no name, no id, no agent-keyed data at all.
    everything, state = seen["plain"]
    assert not [name for name in EVERY_NAME if name in everything]
    assert not [k for k in state if k.startswith(("agents.", "people."))]
    assert '"agents":' not in await api_body(live, TV["plain"])

    # names: display names from the roster, else the source's id; never a rostered id.
    everything, state = seen["names"]
    rows = state["people.names.t1"]
    assert sorted(r["name"] for r in rows) == ["Wilhelmina Fairweather", "Zebulon Quixote"]
    assert ROSTERED not in everything
    assert rows[0]["name"] == "Zebulon Quixote"  # away first
    assert (rows[0]["state"], rows[0]["reason"]) == ("away", "lunch")
    assert {r["team"] for r in state["people.names.t2"]} == {"red", "blue"}

    # initials: only initials, in the grid and the table, over websocket and HTTP.
    everything, state = seen["initials"]
    assert not [name for name in EVERY_NAME if name in everything], everything[:2000]
    assert sorted(r["name"] for r in state["people.initials.t1"]) == ["WF", "ZQ"]
    assert sorted(r["name"] for r in state["people.initials.t2"]) == ["WF", "ZQ"]
    # No key names an agent either: the rows are lists, scoped by board and tile only.
    assert not [k for k in state if k.startswith("agents.")]

    # hidden (the default): states and times without any name.
    everything, state = seen["hidden"]
    assert not [name for name in EVERY_NAME if name in everything]
    rows = state["people.hidden.t1"]
    assert sorted(r["state"] for r in rows) == ["away", "busy"]
    assert {r["name"] for r in rows} == {""}

    # No board reads another board's rows: each TV got its own board's people only.
    for board in TV:
        assert not [k for k in seen[board][1]
                    if k.startswith("people.") and not k.startswith(f"people.{board}.")]
