"""request_tracker against a real Request Tracker 5 (Debian's request-tracker5, SQLite).

RT's database is the package's global one (/var/lib/dbconfig-common/sqlite3/request-tracker5/
rtdb, created by the install, see .ci/run), so each run works in a queue of its
own, created here through REST2, and the source follows only that queue. RT reads a site
config of the test's (RT_SITE_CONFIG) that defines service levels, for the SLA test.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientError, ClientSession

from tests.conftest import base_config, free_port, require_program

RT_SERVER = "/usr/share/request-tracker5/libexec/rt-server"
# The preseeded root password (.ci/run).
AUTH = {"Authorization": "Basic " + base64.b64encode(b"root:password123").decode()}
INTERVAL_S = 1.0
# RT's own SLA: a Resolve deadline counted from creation. `StartImmediately` so that the clock
# does not wait for business hours; 0.05 minutes is a 3 s deadline, to see a breach at once.
# RT checks an API token by bcrypt at every request; at RT's default cost (12) that is ~10 s
# per request on a CI core, longer than the test waits. A token made under cost 4 is checked
# in milliseconds, and the server must run at cost 4 too, or it re-hashes the token upward.
# RT tries each of the user's tokens in turn, so the test also drops those of earlier runs.
SITE_CONFIG = """Set($BcryptCost, 4);
Set(%ServiceAgreements, (
    Default => 'wb-10m',
    Levels  => {
        'wb-10m' => { StartImmediately => 1, Resolve => { RealMinutes => 10 } },
        'wb-3s'  => { StartImmediately => 1, Resolve => { RealMinutes => 0.05 } },
    },
));
1;
"""
pytestmark = pytest.mark.timeout(240)


class RT:
    """One rt-server process on a loopback port, and REST2 calls to it."""

    def __init__(self, port: int, session: ClientSession, site_config: Path) -> None:
        self.port, self.session, self.site_config = port, session, site_config
        self.api = f"http://127.0.0.1:{port}/rt/REST/2.0"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start rt-server and wait for REST2 to answer (about 3 s)."""
        self.proc = await asyncio.create_subprocess_exec(
            RT_SERVER, "--host", "127.0.0.1", "--port", str(self.port), "--webpath", "/rt",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "RT_SITE_CONFIG": str(self.site_config)},
            start_new_session=True)  # its own process group: the workers stop with it
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                async with self.session.get(f"{self.api}/queues/all", headers=AUTH) as resp:
                    if resp.status == 200:
                        return
            except ClientError:
                pass
            assert self.proc.returncode is None, "rt-server exited at start"
            await asyncio.sleep(0.2)
        raise AssertionError("rt-server did not answer within 60 s")

    async def stop(self) -> None:
        """Stop the master and its Starlet workers (the group this process leads)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    async def call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """One REST2 write as root."""
        async with self.session.request(method, f"{self.api}/{path}", json=body,
                                        headers=AUTH) as resp:
            assert resp.status < 300, (method, path, resp.status, await resp.text())
            return await resp.json()

    async def get(self, path: str) -> Any:
        """One REST2 read as root."""
        async with self.session.get(f"{self.api}/{path}", headers=AUTH) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            return await resp.json()

    async def create(self, queue: str, subject: str, **fields: Any) -> str:
        ticket = await self.call("POST", "ticket", {
            "Queue": queue, "Subject": subject, "Requestor": "caller@example.com",
            "Content": "Customer cannot log in", "ContentType": "text/plain", **fields})
        return str(ticket["id"])

    async def reply(self, ticket: str) -> None:
        await self.call("POST", f"ticket/{ticket}/correspond",
                        {"Content": "We are looking into it", "ContentType": "text/plain"})

    async def resolve(self, ticket: str) -> None:
        await self.call("PUT", f"ticket/{ticket}", {"Status": "resolved"})


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[RT]:
    require_program(RT_SERVER, "the Request Tracker test needs Debian's request-tracker5 "
                    "(see .ci/run)")
    # RT_SiteConfig.pm of the package holds only comments; RT_SiteConfig.d (the database and
    # the answers of the install) is still read.
    site_config = tmp_path / "RT_SiteConfig.pm"
    site_config.write_text(SITE_CONFIG)
    async with ClientSession() as session:
        server = RT(free_port(), session, site_config)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


async def wait_for(live: Any, check: Callable[[dict[str, Any]], bool], what: str,
                   timeout_s: float) -> dict[str, Any]:
    """Poll /api/snapshot until `check` holds; fail with the last snapshot's relevant parts."""
    deadline = time.monotonic() + timeout_s
    while True:
        snap = await live.get_json("/api/snapshot")
        if check(snap):
            return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}; sources "
                                 f"{snap['sources']}, queue {snap['queues'].get('helpdesk')}")
        await asyncio.sleep(0.1)


def kpis(snap: dict[str, Any]) -> tuple[int, int, int, int]:
    """(backlog, created, first responses, resolved) of the helpdesk queue, last hour."""
    queue = snap["queues"]["helpdesk"]
    hour = queue["1h"]
    return (queue["live"]["tickets_open"], hour["tickets_created"], hour["first_responses"],
            hour["tickets_resolved"])


async def test_board_follows_rt5_through_bad_login_and_restart(rt: RT, live_server: Any) -> None:
    queue = f"wb-{uuid.uuid4().hex[:10]}"
    await rt.call("POST", "queue", {"Name": queue})
    t1, t2, t3 = [await rt.create(queue, f"ticket {n}") for n in (1, 2, 3)]
    await rt.reply(t1)
    await rt.reply(t2)
    await rt.resolve(t2)

    source = {"type": "request_tracker", "url": f"http://127.0.0.1:{rt.port}/rt",
              "username": "root", "password": "password123", "queues": {queue: "helpdesk"},
              "interval_s": INTERVAL_S, "overlap_s": 5}
    config = base_config(
        queues={"helpdesk": {"label": "Helpdesk", "channel": "email"}},
        sources={"rt": source, "rt_bad": {**source, "password": "wrong-password"}})
    live = await live_server(config)

    snap = await wait_for(live, lambda s: kpis(s) == (2, 3, 2, 1),
                          "backlog 2, created 3, first responses 2, resolved 1", 30)
    assert snap["sources"]["rt"]["status"] == "up"
    frt = snap["queues"]["helpdesk"]["1h"]["frt_p50_s"]
    assert frt is not None and 0 <= frt < 120  # answered seconds after creation
    snap = await wait_for(live, lambda s: s["sources"]["rt_bad"]["status"] == "down",
                          "the source with a wrong password is down", 15)
    error = snap["sources"]["rt_bad"]["last_error"]
    assert "RT refused the credentials: check the username and password" in error, error
    assert "HTTP 401" in error

    # A change shows within one poll interval (plus RT's and the board's own latency).
    await rt.resolve(t1)
    started = time.monotonic()
    await wait_for(live, lambda s: kpis(s) == (1, 3, 2, 2), "t1 resolved", 10)
    assert time.monotonic() - started < INTERVAL_S + 2.5

    # RT stops: the source goes down; RT returns: it recovers, re-reads, counts nothing twice.
    await rt.stop()
    await wait_for(live, lambda s: s["sources"]["rt"]["status"] == "down", "rt down", 20)
    await rt.start()
    await rt.reply(t3)
    # The back-off after the failure is up to a minute; the re-read is then one poll.
    snap = await wait_for(live, lambda s: kpis(s)[2] == 3, "t3's first response", 90)
    assert snap["sources"]["rt"]["status"] == "up"
    assert kpis(snap) == (1, 3, 3, 2)
    await asyncio.sleep(3 * INTERVAL_S)  # more polls over the same overlap window
    assert kpis(await live.get_json("/api/snapshot")) == (1, 3, 3, 2)


# RT's own Perl API makes a token headless (RT::AuthToken); it needs the rights to
# write RT's database, as the package's root does.
MAKE_TOKEN = """use RT; RT::LoadConfig(); RT::Init();
my $u = RT::User->new(RT->SystemUser); $u->Load("root");
my $old = RT::AuthTokens->new(RT->SystemUser); $old->LimitOwner(VALUE => $u->id);
while (my $t = $old->Next) { $t->Delete if $t->Description eq "wallboard test" }
my ($ok, $msg, $auth) = RT::AuthToken->new($u)->Create(Owner => $u->id,
                                                        Description => "wallboard test");
die "token: $msg\\n" unless $ok; print $auth;"""


async def test_token_login(rt: RT, live_server: Any) -> None:
    perl = await asyncio.create_subprocess_exec(
        "perl", "-I/usr/share/request-tracker5/lib", "-e", MAKE_TOKEN,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RT_SITE_CONFIG": str(rt.site_config)})
    out, err = await perl.communicate()
    assert perl.returncode == 0, f"cannot make an RT token: {err.decode()[-500:]}"
    token = out.decode().strip()
    queue = f"wb-{uuid.uuid4().hex[:10]}"
    await rt.call("POST", "queue", {"Name": queue})
    ticket = await rt.create(queue, "by token")
    await rt.reply(ticket)
    source = {"type": "request_tracker", "url": f"http://127.0.0.1:{rt.port}/rt",
              "token": token, "queues": {queue: "helpdesk"}, "interval_s": INTERVAL_S}
    live = await live_server(base_config(
        queues={"helpdesk": {"label": "Helpdesk", "channel": "email"}},
        sources={"rt": source, "rt_bad": {**source, "token": "1-14-0000000000000000"}}))
    await wait_for(live, lambda s: kpis(s) == (1, 1, 1, 0), "the ticket, read by token", 30)
    snap = await wait_for(live, lambda s: s["sources"]["rt_bad"]["status"] == "down",
                          "the source with a wrong token is down", 15)
    assert "RT refused the credentials: check the token" in snap["sources"]["rt_bad"]["last_error"]


def rt_time(text: str) -> float:
    """An RT REST2 date as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ticket_kpis(snap: dict[str, Any]) -> tuple[int, int, int, int]:
    """(backlog, at risk, overdue, SLA breaches in the last hour) of the helpdesk queue."""
    queue = snap["queues"]["helpdesk"]
    live = queue["live"]
    return (live["tickets_open"], live["tickets_at_risk"], live["tickets_overdue"],
            queue["1h"]["sla_breaches"])


async def test_rt_sla_due_feeds_at_risk_overdue_and_breaches(rt: RT, live_server: Any) -> None:
    sla_queue, free_queue = (f"wb-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("sla", "free"))
    await rt.call("POST", "queue", {"Name": sla_queue, "SLADisabled": 0})
    await rt.call("POST", "queue", {"Name": free_queue})  # SLA off: Due is a free date field
    soon = await rt.create(sla_queue, "due in ten minutes", SLA="wb-10m")
    late = await rt.create(sla_queue, "due in three seconds", SLA="wb-3s")
    await rt.create(free_queue, "a free Due in the past", Due="2020-01-01T00:00:00Z")
    # RT computed the deadlines from its SLA, not we.
    deadlines = {}
    for ticket in (soon, late):
        body = await rt.get(f"ticket/{ticket}")
        deadlines[ticket] = rt_time(body["Due"]) - rt_time(body["Created"])
    assert deadlines == {soon: 600.0, late: 3.0}

    source = {"type": "request_tracker", "url": f"http://127.0.0.1:{rt.port}/rt",
              "username": "root", "password": "password123", "interval_s": INTERVAL_S,
              "queues": {sla_queue: "helpdesk", free_queue: "helpdesk"}}
    live = await live_server(base_config(
        queues={"helpdesk": {"label": "Helpdesk", "channel": "email"}}, sources={"rt": source}))
    # Three open; the 10-minute one at risk (due within 15 min); the 3-second one overdue and
    # breached once; the free Due of the SLA-off queue counts for nothing.
    await wait_for(live, lambda s: ticket_kpis(s) == (3, 1, 1, 1),
                   "open 3, at risk 1, overdue 1, breaches 1", 30)
    await rt.resolve(late)
    await wait_for(live, lambda s: ticket_kpis(s) == (2, 1, 0, 1),
                   "the late ticket resolved: no longer overdue, its breach counted once", 15)
    await asyncio.sleep(3 * INTERVAL_S)  # more polls re-read the same tickets
    assert ticket_kpis(await live.get_json("/api/snapshot")) == (2, 1, 0, 1)
