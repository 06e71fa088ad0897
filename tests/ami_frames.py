"""AMI frames for the asterisk_ami tests: callers, members, queue entries, a board config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.ami_peer import AmiPeer
from tests.conftest import base_config

CALLER = """Channel: PJSIP/trunk-{n:08d}
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: 41555501{n:02d}
CallerIDName: <unknown>
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: en
AccountCode:
Context: from-trunk
Exten: 700
Priority: 3
Uniqueid: 1700000000.{n}
Linkedid: 1700000000.{n}"""

AGENT = """DestChannel: PJSIP/1001-000000{n:02d}
DestUniqueid: 1700000003.{n}
DestLinkedid: 1700000000.{n}
Queue: support
Interface: PJSIP/1001
MemberName: Alice"""


def call_event(name: str, n: int, extra: str = "", agent: bool = False) -> str:
    """One queue event for caller n (Uniqueid 1700000000.n), as Asterisk 18+ writes it."""
    body = f"Event: {name}\nPrivilege: agent,all\n" + CALLER.format(n=n)
    body += "\n" + (AGENT.format(n=n) if agent else "Queue: support")
    return body + (f"\n{extra}" if extra else "")


def join(n: int, count: int = 1) -> str:
    return call_event("QueueCallerJoin", n, f"Position: {count}\nCount: {count}")


def leave(n: int, count: int = 0) -> str:
    return call_event("QueueCallerLeave", n, f"Count: {count}\nPosition: 1")


def connect(n: int, hold: int) -> str:
    return call_event("AgentConnect", n, f"RingTime: 3\nHoldTime: {hold}", agent=True)


def complete(n: int, hold: int, talk: int, reason: str = "caller") -> str:
    return call_event("AgentComplete", n, f"HoldTime: {hold}\nTalkTime: {talk}\n"
                      f"Reason: {reason}", agent=True)


def abandon(n: int, hold: int) -> str:
    return call_event("QueueCallerAbandon", n,
                      f"Position: 1\nOriginalPosition: 1\nHoldTime: {hold}")


def member(name: str, interface: str, status: int, paused: int = 0, event: str = "",
           reason: str = "") -> str:
    """A member: a QueueMember list item (Name/Location) or an event (MemberName/Interface)."""
    if event:
        head = (f"Event: {event}\nPrivilege: agent,all\nQueue: support\nMemberName: {name}\n"
                f"Interface: {interface}\nStateInterface: {interface}")
    else:
        head = f"Event: QueueMember\nQueue: support\nName: {name}\nLocation: {interface}\n" \
               f"StateInterface: {interface}"
    return (head + f"\nMembership: dynamic\nPenalty: 0\nCallsTaken: 0\nLastCall: 0\n"
            f"LastPause: 0\nLoginTime: 1700000000\nInCall: 0\nStatus: {status}\n"
            f"Paused: {paused}\nPausedReason: {reason}\nWrapuptime: 0")


def entry(n: int, wait: int, position: int = 1) -> str:
    return (f"Event: QueueEntry\nQueue: support\nPosition: {position}\n"
            f"Channel: PJSIP/trunk-{n:08d}\nUniqueid: 1700000000.{n}\nCallerIDNum: 4155550100\n"
            f"CallerIDName: <unknown>\nConnectedLineNum: <unknown>\n"
            f"ConnectedLineName: <unknown>\nWait: {wait}\nPriority: 0")


PARAMS = ("Event: QueueParams\nQueue: support\nMax: 0\nStrategy: ringall\nCalls: 0\n"
          "Holdtime: 0\nTalkTime: 0\nCompleted: 0\nAbandoned: 0\nServiceLevel: 60\n"
          "ServicelevelPerf: 0.0\nServicelevelPerf2: 0.0\nWeight: 0")
STAFF = [PARAMS, member("Alice", "PJSIP/1001", 1), member("Bob", "PJSIP/1002", 1),
         member("Carol", "PJSIP/1003", 5)]


def ami_config(peer: AmiPeer, **extra: Any) -> dict[str, Any]:
    """A board config with one voice queue `support` fed by the AMI peer."""
    source = {"type": "asterisk_ami", "host": "127.0.0.1", "port": peer.port,
              "username": "wallboard", "secret": "s3cret", **extra}
    return base_config(queues={"support": {"label": "Support", "channel": "voice"},
                               "sales": {"label": "Sales", "channel": "voice"}},
                       sources={"pbx": source})


async def until(live: Any, check: Callable[[dict[str, Any]], bool], what: str,
                timeout_s: float = 10.0) -> dict[str, Any]:
    """Poll /api/snapshot until `check` holds; fail naming `what` and the last snapshot."""
    deadline = time.monotonic() + timeout_s
    while True:
        api = await live.get_json("/api/snapshot")
        if check(api):
            return api
        if time.monotonic() > deadline:
            pytest.fail(f"board never showed {what}: {api['queues']}")
        await asyncio.sleep(0.05)


def source_status(live: Any) -> Any:
    from wallboard.server import keys
    return live.app[keys.RUNNERS]["pbx"].status


# -- protocol -----------------------------------------------------------------------------------


def kpis(api: dict[str, Any], queue: str = "support") -> dict[str, Any]:
    """The queue's live values and today's KPIs in one dict."""
    return {**api["queues"][queue]["live"], **api["queues"][queue]["today"]}


def subset(values: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(values.get(k) == v for k, v in expected.items())
