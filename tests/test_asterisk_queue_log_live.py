"""asterisk_queue_log on a real server: a day written in real time, two rotations, a kill -9."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import IO, Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.ami_frames import (
    STAFF,
    abandon,
    ami_config,
    complete,
    connect,
    entry,
    join,
    kpis,
    leave,
    subset,
    until,
)
from tests.ami_peer import AmiPeer
from tests.serverproc import midday_zone

CYCLE = ("answered", "answered", "abandoned", "answered", "timeout", "transferred")
CALLS = 60


class Writer:
    """Asterisk's side: appends lines through a handle it keeps, as the logger does."""

    def __init__(self, path: Path, queue: str = "q-sales") -> None:
        self.path, self.queue = path, queue
        self.handle: IO[str] = path.open("a")

    def line(self, callid: str, agent: str, event: str, *data: object,
             ts: float | None = None) -> None:
        stamp = int(time.time() if ts is None else ts)
        fields = [str(stamp), callid, self.queue, agent, event, *map(str, data)]
        self.handle.write("|".join(fields) + "\n")
        self.handle.flush()

    def reopen(self) -> None:
        """`logger reload`: the file at the path from now on."""
        self.handle.close()
        self.handle = self.path.open("a")


def call(w: Writer, i: int, outcome: str, expected: dict[str, Any]) -> None:
    """One call's lines, and what it adds to today's counts."""
    uid = f"{int(time.time())}.{i}"
    wait, talk, agent = 3 + i % 17, 40 + 7 * i, ("Alice", "Bob")[i % 2]
    w.line(uid, "NONE", "ENTERQUEUE", "", f"+1555000{i:04d}", 1)
    expected["offered"] += 1
    if outcome == "abandoned":
        w.line(uid, "NONE", "ABANDON", 1, 1, wait)
        expected["abandoned"] += 1
        return
    if outcome == "timeout":
        w.line(uid, "NONE", "EXITWITHTIMEOUT", 1, 1, 300)
        expected["transfers"] += 1
        return
    w.line(uid, agent, "RINGNOANSWER", 15000)
    w.line(uid, agent, "CONNECT", wait, f"{uid}1", 2)
    expected["answered"] += 1
    expected["waits"].append(wait)
    expected["talks"].append(talk)
    if outcome == "transferred":
        w.line(uid, agent, "BLINDTRANSFER", "2000", "from-internal", wait, talk, 1)
        expected["transfers"] += 1
    else:
        w.line(uid, agent, ("COMPLETEAGENT", "COMPLETECALLER")[i % 2], wait, talk, 1)


async def today(server: Any, http: aiohttp.ClientSession) -> dict[str, Any]:
    api = await server.snapshot(http)
    return {**api["queues"]["sales"]["today"], **api["queues"]["sales"]["live"]}


async def test_a_day_in_real_time_across_rename_copytruncate_and_a_kill(
        tmp_path: Path, server_process: Any) -> None:
    zone = midday_zone()
    log = tmp_path / "asterisk" / "queue_log"
    log.parent.mkdir()
    w = Writer(log)
    w.line("NONE", "Alice", "ADDMEMBER", "", ts=time.time() - 86_400)  # yesterday: members only
    w.line("1.0", "NONE", "ENTERQUEUE", "", "x", 1, ts=time.time() - 86_400)
    w.line("1.0", "NONE", "ABANDON", 1, 1, 9, ts=time.time() - 86_400)
    server = server_process({
        "site": {"name": "queue_log", "timezone": zone},
        "server": {"push_interval_ms": 50},
        "queues": {"sales": {"channel": "voice", "service_level": {"threshold_s": 10}}},
        "sources": {"pbx": {"type": "asterisk_queue_log", "path": str(log),
                            "state_dir": str(tmp_path / "state"), "timezone": zone,
                            "poll_interval_s": 0.1, "queues": {"q-sales": "sales"},
                            "only_mapped_queues": True}},
        "journal": {"data_dir": str(tmp_path / "data"), "batch_ms": 5}})
    await server.start()
    expected: dict[str, Any] = {"offered": 0, "answered": 0, "abandoned": 0, "transfers": 0,
                                "waits": [], "talks": []}
    w.line("NONE", "Bob", "ADDMEMBER", "")
    async with aiohttp.ClientSession() as http:
        for i in range(CALLS):
            if i == 10:
                w.line("NONE", "Bob", "PAUSE", "Lunch")
            if i == 20:  # logrotate by rename; the logger writes one more call to the old file
                os.rename(log, log.with_name("queue_log.1"))
            if i == 21:
                w.reopen()
            if i == 25:
                w.line("NONE", "Bob", "UNPAUSE", "Lunch")
            if i == 30:
                await asyncio.sleep(1.5)  # the position of what came before is saved
                server.kill()
                server.wait()
            if i == 40:
                await server.start()
            if i == 45:  # logrotate's copytruncate, the logger's handle (O_APPEND) kept
                shutil.copyfile(log, log.with_name("queue_log-20261207"))
                with log.open("r+") as f:
                    f.truncate(0)
            if i == 50:  # a torn line and a newer Asterisk's event: skipped and counted
                w.handle.write("1796|half a line\n")
                w.line("NONE", "Alice", "SOMETHINGNEW", "x")
            call(w, i, CYCLE[i % len(CYCLE)], expected)
            await asyncio.sleep(0.03)
        answered = expected["answered"]
        want = {"offered": CALLS, "answered": answered, "abandoned": expected["abandoned"],
                "transfers": expected["transfers"],
                "asa_s": round(sum(expected["waits"]) / answered, 6),
                "aht_s": round(sum(expected["talks"]) / answered, 6),
                "waiting": 0, "agents_available": 2}
        got: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = await today(server, http)
            if {k: got.get(k) for k in want} == want:
                break
            await asyncio.sleep(0.2)
        assert {k: got.get(k) for k in want} == want, server.log.read_text()[-3000:]
        assert expected["offered"] == CALLS and expected["transfers"] == 20
        async with http.get(f"{server.url}/metrics") as resp:
            families = text_string_to_metric_families(await resp.text())
            skipped = {s.labels["reason"]: s.value for f in families for s in f.samples
                       if s.name == "wallboard_source_skipped_total"}
        assert skipped == {"bad_line": 1.0, "unknown_event": 1.0}
    w.handle.close()


async def test_with_ami_nothing_is_lost_while_it_is_down_and_nothing_counted_twice(
        tmp_path: Path, live_server: Any) -> None:
    """Both sources on; AMI's link drops for part of the day. The queue_log has every fact,
    AMI some of them, under the same ids: each is counted once."""
    log = tmp_path / "queue_log"
    w = Writer(log, queue="support")
    peer = await AmiPeer(snapshot=STAFF).start()
    try:
        config = ami_config(peer, id_scope="pbx")
        config["site"]["timezone"] = midday_zone()  # about noon: 'today' cannot roll over
        config["sources"]["log"] = {"type": "asterisk_queue_log", "path": str(log),
                                    "state_dir": str(tmp_path / "state"),
                                    "poll_interval_s": 0.05, "id_scope": "pbx",
                                    "agent_states": False}
        live = await live_server(config)
        await until(live, lambda api: kpis(api)["agents_available"] == 2, "the staff snapshot")
        uid = "1700000000.{}".format
        # Call 1, while both are up: AMI and the queue_log tell the same facts.
        await peer.send([join(1), connect(1, hold=12), leave(1), complete(1, hold=12, talk=180)])
        w.line(uid(1), "NONE", "ENTERQUEUE", "", "4155550101", 1)
        w.line(uid(1), "Alice", "CONNECT", 12, "1700000003.1", 3)
        w.line(uid(1), "Alice", "COMPLETECALLER", 12, 180, 1)
        await until(live, lambda api: subset(kpis(api), {"offered": 1, "answered": 1}),
                    "call 1 once")
        # AMI goes down. Meanwhile caller 2 joins and abandons (the queue_log alone has it)
        # and caller 3 joins and is still waiting when AMI's snapshot comes back.
        peer.snapshot = [*STAFF, entry(3, 4, 1)]
        peer.hang_up()
        w.line(uid(2), "NONE", "ENTERQUEUE", "", "4155550102", 1)
        w.line(uid(2), "NONE", "ABANDON", 1, 1, 35)
        w.line(uid(3), "NONE", "ENTERQUEUE", "", "4155550103", 1)
        await until(live, lambda api: peer.sessions != [] and
                    subset(kpis(api), {"offered": 3, "abandoned": 1}), "AMI back, 3 offered")
        # Both up again: call 3 answered, call 4 abandoned, told by both.
        await peer.send([connect(3, hold=20), leave(3), complete(3, hold=20, talk=95),
                         join(4), abandon(4, hold=8), leave(4)])
        w.line(uid(3), "Bob", "CONNECT", 20, "1700000003.3", 2)
        w.line(uid(3), "Bob", "COMPLETEAGENT", 20, 95, 1)
        w.line(uid(4), "NONE", "ENTERQUEUE", "", "4155550104", 1)
        w.line(uid(4), "NONE", "ABANDON", 1, 1, 8)
        # By hand: 4 offered, 2 answered (12 s and 20 s: ASA 16), 2 abandoned (2 and 4),
        # handled 180 s and 95 s (AHT 137.5); nobody waiting.
        expected = {"offered": 4, "answered": 2, "abandoned": 2, "asa_s": 16.0,
                    "aht_s": 137.5, "waiting": 0}
        api = await until(live, lambda api: subset(kpis(api), expected), f"{expected}")
        await asyncio.sleep(0.5)  # late duplicates would show now
        api = await live.get_json("/api/snapshot")
        assert subset(kpis(api), expected), kpis(api)
    finally:
        await peer.stop()
        w.handle.close()
