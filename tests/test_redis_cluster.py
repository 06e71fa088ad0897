"""Two real wallboard processes on one real redis-server: same KPIs, de-dup, Redis restarts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
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
from tests.redisproc import RedisServer
from tests.serverproc import ServerProcess, journal_config


def redis_config(workdir: Path, url: str, node: str, **journal: Any) -> dict[str, Any]:
    """The journal tests' site (two queues, a webhook) on the Redis backend."""
    config = journal_config(workdir / "unused")
    config["journal"] = {"backend": "redis", "url": url, "node": node, "retry_s": 0.3,
                         "timeout_s": 1.0, "lease_s": 3, **journal}
    return config


def node(tmp_path: Path, name: str, config: dict[str, Any]) -> ServerProcess:
    """A server process in a directory of its own (its config file, its log)."""
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    return ServerProcess(workdir, config)


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    """Two nodes, a and b, configured alike on the test's Redis (not started)."""
    made = [node(tmp_path, name, redis_config(tmp_path / name, redis_server.url, name))
            for name in ("a", "b")]
    yield made
    for server in made:
        server.stop()


async def until(check: Any, timeout: float, what: str) -> float:
    """Poll the coroutine function `check` until it returns true; seconds it took."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        last = await check()
        if last is True:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not within {timeout}s: {last}")


async def health(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    """GET /healthz."""
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_events_posted_to_one_node_show_identical_kpis_on_the_other_within_a_second(
        nodes: list[ServerProcess]) -> None:
    a, b = nodes
    rng = random.Random(7)
    stream = contacts(rng, "two")
    await a.start()
    sent: list[Contact] = []
    async with aiohttp.ClientSession() as http:
        # Some history before b starts: b rebuilds it from the stream at start.
        early = [next(stream) for _ in range(30)]
        status, body, _ = await a.post(http, [e for c in early for e in c.events])
        assert status == 202 and body["accepted"] == sum(len(c.events) for c in early), body
        sent += early
        await b.start()
        for round_ in range(6):
            batch = [next(stream) for _ in range(rng.randint(1, 6))]
            target = (a, b)[round_ % 2]
            status, body, _ = await target.post(http, [e for c in batch for e in c.events])
            assert status == 202, body
            sent += batch
            posted = time.monotonic()
            want = expected_today(sent)

            async def both_show_it(want: dict[str, Any] = want) -> Any:
                shots = [await s.snapshot(http) for s in (a, b)]
                if not all(approx_equal(observed_today(x["total"]["today"]), want)
                           for x in shots):
                    return [observed_today(x["total"]["today"]) for x in shots]
                return windows_of(shots[0]) == windows_of(shots[1]) or "windows differ"

            await until(both_show_it, 5.0, f"round {round_}: both nodes show {want}")
            assert time.monotonic() - posted < 1.0 + 0.5  # a second, plus our own polling

        # The same event on both nodes (a sender retrying through the balancer): once.
        again = sent[0].events[:1]
        for server in (a, b):
            status, body, _ = await server.post(http, again)
            assert (status, body["accepted"], body["duplicates"]) == (202, 0, 1), body
        fresh = next(stream)
        status, body, _ = await b.post(http, fresh.events)
        assert status == 202
        status, body, _ = await a.post(http, fresh.events)  # b stored them first
        assert (body["accepted"], body["duplicates"]) == (0, len(fresh.events)), body
        sent.append(fresh)
        want = expected_today(sent)

        async def settled() -> Any:
            shots = [await s.snapshot(http) for s in (a, b)]
            return all(approx_equal(observed_today(x["total"]["today"]), want) for x in shots)

        await until(settled, 5.0, "the duplicates counted once on both nodes")
        info = [await health(http, s) for s in (a, b)]
        assert [i["node"] for i in info] == ["a", "b"]
        assert all(i["journal"] == "up" and i["stream_lag_events"] == 0 for i in info), info
        assert all(i["role"] == "standby" and i["sources_held"] == [] for i in info), info
        async with http.get(f"{b.url}/metrics") as resp:
            metrics = await resp.text()
        assert 'wallboard_node_info{node="b",role="standby"} 1.0' in metrics
        assert "wallboard_stream_lag_events 0.0" in metrics
        assert 'wallboard_stream_apply_delay_seconds{quantile="0.99"}' in metrics
    # The stream, read by `wallboard journal export` (not by a server): each event once.
    result = b.cli("journal", "export", "--since", "now-1d")
    assert result.returncode == 0, result.stderr
    ids = [orjson.loads(line)["id"] for line in result.stdout.splitlines()]
    assert sorted(ids) == sorted(e["id"] for c in sent for e in c.events)


def failover_config(workdir: Path, url: str, name: str, ami_port: int, zendesk_url: str
                    ) -> dict[str, Any]:
    """Webhook, an AMI login (queue support) and a Zendesk poll (queue tickets), lease_s 10."""
    config = redis_config(workdir, url, name)
    del config["journal"]["lease_s"]  # the default bound: 10 s
    config["site"]["lateness_s"] = 7200  # tickets are read up to an hour after creation
    config["queues"].update({"support": {"channel": "voice"}, "tickets": {"channel": "email"}})
    config["sources"].update({
        "pbx": {"type": "asterisk_ami", "host": "127.0.0.1", "port": ami_port,
                "username": "wallboard", "secret": "s3cret"},
        # Each node its own cursor file: the node taking over reads the export from the start
        # again, and the ids stored in Redis keep it from counting anything twice.
        "zd": {"type": "zendesk", "url": zendesk_url, "email": "admin@acme.example",
               "api_token": "tok-123456", "state_dir": str(workdir / "state"),
               "interval_s": 0.2, "max_requests_per_s": 100, "burst": 10,
               "groups": {"360001": "tickets"}}})
    return config


async def test_sigkill_of_the_node_holding_the_sources_moves_them_within_ten_seconds(
        tmp_path: Path, redis_server: RedisServer) -> None:
    from wallboard_plugins.zendesk.mapping import parse_time

    from tests.ami_peer import AmiPeer
    from tests.test_asterisk_ami import PARAMS as AMI_PARAMS
    from tests.test_asterisk_ami import STAFF, abandon, connect, entry, join, leave, member
    from tests.test_zendesk_live import NOW_IN_RECORDING
    from tests.zendesk_peer import ZendeskPeer

    now = time.time()
    ami = await AmiPeer(snapshot=STAFF).start()
    servers: list[ServerProcess] = []
    try:
        async with ZendeskPeer(shift_s=now - parse_time(NOW_IN_RECORDING)) as zendesk, \
                aiohttp.ClientSession() as http:
            zendesk.stage(1)
            first_pages = dict(zendesk.pages)
            a, b = (node(tmp_path, n, failover_config(tmp_path / n, redis_server.url, n,
                                                      ami.port, zendesk.url))
                    for n in ("a", "b"))
            servers += [a, b]
            await a.start()
            await until(lambda: _holds(http, a, ["pbx", "zd"]), 10, "a holds both sources")
            await b.start()
            rng = random.Random(3)
            stream = contacts(rng, "fo")
            acked: list[Contact] = []

            async def post(server: ServerProcess) -> None:
                batch = [next(stream) for _ in range(3)]
                status, body, _ = await server.post(http, [e for c in batch for e in c.events])
                assert status == 202, body
                acked.extend(batch)

            for _ in range(5):
                await post(a)
            await ami.send([join(1), join(2, 2)])

            async def stage_one_everywhere() -> Any:
                shots = [await s.snapshot(http) for s in (a, b)]
                got = [(x["queues"]["support"]["today"]["offered"],
                        x["queues"]["tickets"]["today"]["tickets_created"],
                        x["queues"]["tickets"]["today"]["sla_breaches"]) for x in shots]
                return got == [(2, 3, 1)] * 2 or got

            await until(stage_one_everywhere, 10, "calls and tickets of stage 1 on both")
            assert ami.connections == 1 and ami.logins == 1  # b never logged in
            assert (await health(http, b))["sources_held"] == []

            async def b_shows_their_status() -> Any:
                sources = (await b.snapshot(http))["sources"]
                return all(sources[n]["status"] == "up" for n in ("pbx", "zd")) or sources

            # b runs neither, but its boards show how they are doing on a.
            await until(b_shows_their_status, 5, "a's source statuses on b")
            async with http.get(f"{b.url}/metrics") as resp:
                metrics = await resp.text()
            assert 'wallboard_source_held{source="pbx"} 0.0' in metrics
            check_cluster_families(metrics)

            a.kill()
            killed = time.monotonic()
            assert a.wait() == -9
            # While nobody runs them: both callers still wait; then the PBX answers 1, and
            # 2 is still waiting when the new holder asks for the queue status.
            ami.snapshot = [AMI_PARAMS, member("Alice", "PJSIP/1001", 2),
                            member("Bob", "PJSIP/1002", 1), member("Carol", "PJSIP/1003", 5),
                            entry(2, 30, 1)]
            zendesk.stage(2)
            zendesk.pages = {**first_pages, **zendesk.pages}  # b reads from the start
            for _ in range(3):
                await post(b)  # webhooks carry on through the other node meanwhile
            await until(lambda: _holds(http, b, ["pbx", "zd"]), 10, "b holds both sources")
            took = time.monotonic() - killed
            assert took < 10, f"leases taken over after {took:.1f}s"
            await until(_ami_logged_in(ami, 2), 10, "b's AMI login")
            took = time.monotonic() - killed
            assert took < 10, f"AMI taken over after {took:.1f}s"
            await ami.send([connect(1, hold=12), leave(1, 1), abandon(2, hold=40), leave(2, 0),
                            join(3)])

            # By hand: calls 1, 2, 3 offered (2's snapshot entry carries its counted join's
            # id); 1 answered after 12 s, 2 abandoned after 40 s, 3 waiting. Tickets as
            # after the zendesk restart test: 4 created, 2 resolved, 2 first replies, 2
            # breaches, although b read the stage 1 pages a second time.
            want_calls = {"offered": 3, "answered": 1, "abandoned": 1, "asa_s": 12.0}
            want_tickets = (4, 2, 2, 2)
            want_web = {q: expected_today([c for c in acked if c.queue == q])
                        for q in ("sales", "chat")}

            async def all_counted_once() -> Any:
                shot = await b.snapshot(http)
                queues = shot["queues"]
                calls = {k: queues["support"]["today"][k] for k in want_calls}
                t = queues["tickets"]["today"]
                tickets = (t["tickets_created"], t["tickets_resolved"], t["first_responses"],
                           t["sla_breaches"])
                web = all(approx_equal(observed_today(queues[q]["today"]), want_web[q])
                          for q in want_web)
                if calls == want_calls and tickets == want_tickets and web:
                    return True
                return calls, tickets, web

            await until(all_counted_once, 15, "every acknowledged event once")
            await asyncio.sleep(1.0)  # more polls by b, which must find nothing new
            assert await all_counted_once() is True
            # A node started now rebuilds the same numbers from the stream.
            await a.start()
            # Occupancy grows with the clock while agents sit in a state, and each node
            # rebuilds its snapshot once a second: that one ratio is compared loosely.
            shots = [windows_of(await s.snapshot(http)) for s in (a, b)]
            occupancy = [{k: block.pop("occupancy") for k, block in shot.items()}
                         for shot in shots]
            diff = {k: {f: (v, shots[1][k][f]) for f, v in block.items() if v != shots[1][k][f]}
                    for k, block in shots[0].items()}
            assert shots[0] == shots[1], {k: v for k, v in diff.items() if v}
            assert occupancy[0].keys() == occupancy[1].keys()
            for key, value in occupancy[0].items():
                assert (value is None) == (occupancy[1][key] is None), key
            assert (await health(http, a))["sources_held"] == []  # b keeps them
            assert ami.logins == 2
            # A planned stop (SIGTERM) hands the leases back: a takes them at its next try,
            # well before they would have expired (7 s).
            b.stop()
            stopped = time.monotonic()
            await until(lambda: _holds(http, a, ["pbx", "zd"]), 10, "a holds both again")
            assert time.monotonic() - stopped < 5, "the leases were not released"
            await until(_ami_logged_in(ami, 3), 10, "a's second AMI login")
    finally:
        for server in servers:
            server.stop()
        await ami.stop()


async def _holds(http: aiohttp.ClientSession, server: ServerProcess, sources: list[str]
                 ) -> Any:
    info = await health(http, server)
    return (info["sources_held"] == sources and info["role"] == "active") or info


def _ami_logged_in(peer: Any, logins: int) -> Any:
    async def check() -> Any:
        return (peer.logins >= logins and bool(peer.sessions)) or peer.logins
    return check


async def test_redis_restart_503_meanwhile_the_board_serves_then_both_nodes_catch_up(
        nodes: list[ServerProcess], redis_server: RedisServer) -> None:
    a, b = nodes
    await a.start()
    await b.start()
    stream = contacts(random.Random(5), "rr")
    acked: list[Contact] = []
    async with aiohttp.ClientSession() as http:
        batch = [next(stream) for _ in range(5)]
        status, body, _ = await a.post(http, [e for c in batch for e in c.events])
        assert status == 202, body
        acked += batch
        want = expected_today(acked)

        async def both_show(want: dict[str, Any]) -> Any:
            shots = [await s.snapshot(http) for s in (a, b)]
            return all(approx_equal(observed_today(x["total"]["today"]), want)
                       for x in shots) or [observed_today(x["total"]["today"]) for x in shots]

        await until(lambda: both_show(want), 5, "the first batch on both nodes")
        redis_server.stop()
        refused = [next(stream) for _ in range(2)]
        for server in (a, b):
            status, body, headers = await server.post(http, [e for c in refused for e in c.events])
            assert status == 503, body
            assert int(headers["Retry-After"]) >= 1 and "journal down" in body["error"]

        async def down_everywhere() -> Any:
            states = [(await s.snapshot(http))["meta"]["journal"] for s in (a, b)]
            states += [(await health(http, s))["journal"] for s in (a, b)]
            return states == ["down"] * 4 or states

        await until(down_everywhere, 5, "both nodes say the journal is down")
        # The boards keep serving what they had; nothing refused was counted.
        for server in (a, b):
            shot = await server.snapshot(http)
            assert approx_equal(observed_today(shot["total"]["today"]), want)

        redis_server.start()

        for server, size in ((b, 4), (a, 3)):
            batch = [next(stream) for _ in range(size)]

            async def accepted_again(server: ServerProcess = server,
                                     batch: list[Contact] = batch) -> Any:
                # A sender retrying on 503 (after Retry-After, shortened here).
                status, body, _ = await server.post(http, [e for c in batch for e in c.events])
                return status == 202 or (status, body)

            await until(accepted_again, 10, "accepted again")
            acked += batch
        want = expected_today(acked)
        await until(lambda: both_show(want), 10, "both nodes caught up")
        info = [await health(http, s) for s in (a, b)]
        assert all(i["journal"] == "up" and i["stream_lag_events"] == 0 for i in info), info


def check_cluster_families(metrics: str) -> None:
    """A node's families beyond docs/metrics.md's table are those its list names, typed and
    labelled as written; and `promtool check metrics` has nothing to say."""
    import re
    import subprocess

    from tests.conftest import REPO, require_program
    from tests.opsmetrics import catalogue, exposition

    live = exposition(metrics)
    extra = {name: value for name, value in live.items() if name not in catalogue()}
    section = (REPO / "docs" / "metrics.md").read_text().split("## Several nodes", 1)[1]
    section = section.split("\n## ", 1)[0]
    listed = {}
    for name, kind, labels in re.findall(r"^- `(wallboard_[a-z0-9_]+)` \((\w+)(?:; ([^)]*))?\)",
                                         section, re.MULTILINE):
        listed[name] = (kind, frozenset(re.findall(r"labels? ((?:`[a-z_]+`(?:, )?)+)",
                                                   labels)[0].replace("`", "").split(", "))
                        if labels else frozenset())
    assert extra == listed
    require_program("/usr/bin/promtool",
                    "Debian package prometheus provides promtool, which lints the exposition")
    result = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=metrics,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr

