"""genesys_cloud on a real board: hand-computed KPIs, a drop mid-message, a server restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from tests.ami_frames import kpis, subset, until
from tests.conftest import base_config
from tests.genesys_peer import (
    ALICE,
    BOB,
    CLOSING,
    Q_SALES,
    Q_SUPPORT,
    GenesysPeer,
    conversation,
    queue_topic,
    routing,
)
from tests.serverproc import midday_zone
from tests.test_genesys_cloud import genesys_config
from wallboard.kit.source import UP
from wallboard.server import keys


def board(peer: GenesysPeer, **extra: Any) -> dict[str, Any]:
    """A board with voice queues `support` and `sales` fed by the local Genesys Cloud."""
    # A zone where it is about noon: 'today' cannot roll over during the test.
    extra.setdefault("site", {"name": "Test site", "timezone": midday_zone()})
    return base_config(queues={"support": {"label": "Support", "channel": "voice"},
                               "sales": {"label": "Sales", "channel": "voice"}},
                       sources={"gc": genesys_config(peer)}, **extra)


def status(live: Any) -> Any:
    """The genesys source's runtime status."""
    return live.app[keys.RUNNERS]["gc"].status


async def test_full_call_lifecycles_give_the_hand_computed_kpis(live_server) -> None:
    peer = await GenesysPeer(users={ALICE: ("On Queue", "IDLE"),
                                    BOB: ("On Queue", "IDLE")}).start()
    try:
        live = await live_server(board(peer))
        await until(live, lambda api: kpis(api)["agents_available"] == 2, "the users snapshot")
        t = time.time() - 300  # inside site.lateness_s (600 s): nothing counted as late
        support, sales = queue_topic(Q_SUPPORT), queue_topic(Q_SALES)
        steps = [
            (support, conversation("c1", Q_SUPPORT, t)),
            (support, conversation("c2", Q_SUPPORT, t + 5)),
            (f"v2.users.{ALICE}.routingStatus", routing("INTERACTING", t + 12)),
            (support, conversation("c1", Q_SUPPORT, t, answered=t + 12, agent=ALICE)),
            (support, conversation("c3", Q_SUPPORT, t + 20)),
            (support, conversation("c4", Q_SUPPORT, t + 30)),
            (f"v2.users.{BOB}.routingStatus", routing("INTERACTING", t + 40)),
            (support, conversation("c3", Q_SUPPORT, t + 20, answered=t + 40, agent=BOB)),
            (support, conversation("c2", Q_SUPPORT, t + 5, left=t + 45, hung_up=t + 45)),
            (support, conversation("c5", Q_SUPPORT, t + 50)),
            (support, conversation("c4", Q_SUPPORT, t + 30, left=t + 60, to_queue=Q_SALES)),
            (sales, conversation("c4", Q_SALES, t + 60)),
            (support, conversation("c3", Q_SUPPORT, t + 20, answered=t + 40, agent=BOB,
                                   ended=t + 135, hung_up=t + 135)),
            (f"v2.users.{BOB}.routingStatus", routing("NOT_RESPONDING", t + 140)),
            (support, conversation("c1", Q_SUPPORT, t, answered=t + 12, agent=ALICE,
                                   ended=t + 192, hung_up=t + 192)),
            (f"v2.users.{ALICE}.routingStatus", routing("IDLE", t + 200)),
        ]
        for topic, body in steps[:6]:
            await peer.publish(topic, body)
        # Genesys closes the socket before the channel expires: the rest comes on a new one.
        await peer.send_text(orjson.dumps(CLOSING).decode())
        await until(live, lambda api: peer.connections == 2 and peer.sockets == 1,
                    "a second channel after socket_closing")
        for topic, body in steps[6:]:
            await peer.publish(topic, body)
        # By hand, support: c1..c5 offered; c1 answered after 12 s by Alice, c3 after 20 s by
        # Bob (ASA 16 s); c2 hung up after 40 s in queue; c4 moved to sales after 30 s; c1
        # talked 180 s and c3 95 s (AHT 137.5 s); c5 still waiting. Alice idle again, Bob not
        # responding (away). Sales: c4 waiting.
        expected = {"offered": 5, "answered": 2, "abandoned": 1, "asa_s": 16.0,
                    "aht_s": 137.5, "transfers": 1, "waiting": 1, "agents_available": 1,
                    "agents_away": 1, "agents_busy": 0}
        api = await until(live, lambda api: subset(kpis(api), expected), f"{expected}")
        assert subset(kpis(api, "sales"), {"offered": 1, "waiting": 1, "answered": 0})
        states = {name: a["state"] for name, a in api["agents"].items()}
        assert states == {"Alice": "available", "Bob": "away"}
        assert status(live).status == UP and status(live).last_error is None
        await peer.send_text("{not json")  # skipped, counted on /metrics, never fatal
        for _ in range(200):
            code, text = await live.get_text("/metrics")
            counted = [line for line in text.splitlines()
                       if line.startswith("wallboard_source_skipped_total{")
                       and 'source="gc"' in line and 'reason="not_json"' in line]
            if counted:
                break
            await asyncio.sleep(0.05)
        assert code == 200 and counted and counted[0].endswith(" 1.0"), counted
        assert status(live).status == UP
    finally:
        await peer.stop()


async def test_drop_mid_message_and_restart_count_nothing_twice(live_server,
                                                               tmp_path: Path) -> None:
    peer = await GenesysPeer(users={ALICE: ("On Queue", "IDLE")}).start()
    journal = {"journal": {"data_dir": str(tmp_path / "journal")}}
    t = time.time() - 300
    support = queue_topic(Q_SUPPORT)
    answered = conversation("c1", Q_SUPPORT, t, answered=t + 10, agent=ALICE)
    ended = conversation("c1", Q_SUPPORT, t, answered=t + 10, agent=ALICE, ended=t + 70,
                         hung_up=t + 70)
    try:
        live = await live_server(board(peer, **journal))
        await until(live, lambda api: kpis(api)["agents_available"] == 1, "the users snapshot")
        await peer.publish(support, conversation("c1", Q_SUPPORT, t))
        await peer.publish(support, answered)
        await until(live, lambda api: subset(kpis(api), {"offered": 1, "answered": 1}),
                    "c1 answered")
        channels = peer.connections
        await peer.drop(mid_message=True)  # half a frame, then the line is cut
        await peer.restore()
        await until(live, lambda api: peer.connections > channels and peer.sockets == 1
                    and status(live).status == UP, "a new channel after the drop")
        # Genesys resends the conversation as it is now; what was counted is not again.
        await peer.publish(support, answered)
        await peer.publish(support, ended)
        first = {"offered": 1, "answered": 1, "asa_s": 10.0, "aht_s": 60.0, "waiting": 0}
        await until(live, lambda api: subset(kpis(api), first), f"{first} after the drop")

        await live.server.close()  # a restart: the journal replays, the source starts afresh
        channels = peer.connections
        live = await live_server(board(peer, **journal))
        await until(live, lambda api: peer.connections > channels and peer.sockets == 1
                    and status(live).status == UP, "the source back after the restart")
        for body in (conversation("c1", Q_SUPPORT, t), answered, ended,
                     conversation("c2", Q_SUPPORT, t + 100)):
            await peer.publish(support, body)
        after = {**first, "offered": 2, "waiting": 1}
        api = await until(live, lambda api: subset(kpis(api), after), f"{after} after restart")
        assert subset(kpis(api), after)
    finally:
        await peer.stop()
