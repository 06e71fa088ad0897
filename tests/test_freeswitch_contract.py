"""freeswitch_callcenter passes the plugin kit's contract suite against an ESL transcript."""

from __future__ import annotations

import time
from typing import ClassVar

from wallboard_plugins.freeswitch_callcenter import FreeswitchCallcenterSource

from tests.esl_peer import (
    AGENT_COLUMNS,
    MEMBER_COLUMNS,
    agent_row,
    event_frame,
    frame,
    member_row,
    table,
)
from wallboard.kit.testing import SourceContract, TcpReplay

# Callers joined a minute before the run: the source reports their waits against the clock,
# and a wait past the event model's 7-day bound would make the transcript invalid.
Q, T = "support@default", int(time.time()) - 60

# What FreeSWITCH says, in order, to a client that authenticates, subscribes with
# `event json CUSTOM callcenter::info` and asks for the members and agents of one queue
# (FreeSWITCH event socket). The replay peer sends it whatever the client writes.
TRANSCRIPT = b"".join([
    frame({"Content-Type": "auth/request"}),
    frame({"Content-Type": "command/reply", "Reply-Text": "+OK accepted"}),
    frame({"Content-Type": "command/reply", "Reply-Text": "+OK event listener enabled json"}),
    frame({"Content-Type": "api/response"},
          table(MEMBER_COLUMNS, [member_row(Q, "m-1", T - 30)])),
    frame({"Content-Type": "api/response"},
          table(AGENT_COLUMNS, [agent_row("1000@default", "Available", "Waiting")])),
    event_frame({"CC-Action": "member-queue-start", "CC-Queue": Q, "CC-Member-UUID": "m-2",
                 "CC-Member-Joined-Time": T, "Event-Date-Timestamp": T * 1_000_000}),
    event_frame({"CC-Action": "bridge-agent-start", "CC-Queue": Q, "CC-Member-UUID": "m-2",
                 "CC-Agent": "1000@default", "CC-Agent-Answered-Time": T + 8,
                 "CC-Member-Joined-Time": T, "Event-Date-Timestamp": (T + 8) * 1_000_000}),
    event_frame({"CC-Action": "agent-state-change", "CC-Agent": "1000@default",
                 "CC-Agent-State": "In a queue call",
                 "Event-Date-Timestamp": (T + 8) * 1_000_000}),
])


class TestFreeswitchCallcenterContract(SourceContract):
    """Every check applies: the source holds an ESL connection to its peer."""

    source_class = FreeswitchCallcenterSource
    config: ClassVar[dict] = {"host": "{peer_host}", "port": "{peer_port}",
                              "password": "ClueCon", "queues": [Q]}
    bad_configs: ClassVar[list] = [
        ({"password": None}, "password: Field required"),
        ({"port": 0}, "port: Input should be greater than or equal to 1"),
        ({"host": ""}, "host: String should have at least 1 character"),
        ({"queues": ["ok", " "]}, "queues: queue names must be non-empty"),
        ({"timeout_s": 0}, "timeout_s: Input should be greater than 0"),
    ]
    peer = TcpReplay(TRANSCRIPT)
