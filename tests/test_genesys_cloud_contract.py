"""genesys_cloud passes the plugin kit's contract suite against the local Genesys Cloud."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import orjson
from wallboard_plugins.genesys_cloud import GenesysCloudSource

from tests.genesys_peer import (
    ALICE,
    CLIENT_ID,
    CLIENT_SECRET,
    Q_SALES,
    Q_SUPPORT,
    GenesysPeer,
    conversation,
    queue_topic,
)
from wallboard.kit.testing import HttpReplay, SourceContract, SourceHarness

# One notification in the documented shape: what the peer declaration "records".
NOTIFICATION = orjson.dumps({"topicName": queue_topic(Q_SUPPORT),
                             "eventBody": conversation("conv-1", Q_SUPPORT, 1.8e9)})


class TestGenesysCloudContract(SourceContract):
    """Every check applies: the source holds a notification websocket to its peer.

    The kit's ReplayPeer speaks plain HTTP or TCP, not a websocket with its REST calls, so
    `_running` starts the local Genesys Cloud instead; it offers the same drop, restore,
    send_next and served that the checks use, and answers every request in Genesys's shapes.
    """

    source_class = GenesysCloudSource
    config: ClassVar[dict] = {"api_url": "{peer_url}", "login_url": "{peer_url}",
                              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                              "queues": {Q_SUPPORT: "support", Q_SALES: "sales"},
                              "users": {ALICE: {"name": "Alice", "queues": [Q_SUPPORT]}}}
    bad_configs: ClassVar[list] = [
        ({"client_secret": None}, "client_secret: Field required"),
        ({"queues": {}}, "queues: Dictionary should have at least 1 item"),
        ({"region": "https://api.mypurecloud.com"}, "region: String should match pattern"),
        ({"api_url": "api.mypurecloud.com"}, "api_url: String should match pattern"),
        ({"users": {ALICE: {"name": "Alice", "queues": ["nope"]}}},
         "users name queues not in `queues`: nope"),
        ({"queues": {Q_SUPPORT: "support", **{f"q{n}": f"q{n}" for n in range(998)}}},
         "need 1001 topics; a Genesys channel takes at most 1000"),
        ({"heartbeat_timeout_s": 0}, "heartbeat_timeout_s: Input should be greater than 0"),
        ({"users": {ALICE: {"name": "a\x07b"}}}, "users.a1a1a1a1-alice.name: String should"),
    ]
    peer = HttpReplay(NOTIFICATION)  # declares a peer; the live one is GenesysPeer below
    malformed: ClassVar[list[bytes]] = [
        NOTIFICATION[: len(NOTIFICATION) // 2], b"", b"\x00\xff\xfe not json at all", b"null",
        b"[]", b"{}", b'"text"', b"42", b'[{"unexpected": true}]',
        b'{"topicName": "v2.routing.queues.5c2a8f0e-support.conversations", "eventBody": 1}',
        b'{"topicName": "v2.users.a1a1a1a1-alice.presence", "eventBody": {}}']

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[tuple[SourceHarness, Any]]:
        peer = await GenesysPeer().start()
        harness = SourceHarness(self.make_source(peer))  # type: ignore[arg-type]  # duck peer
        try:
            await harness.start()
            yield harness, peer
        finally:
            await harness.stop(self.cancel_timeout_s)
            await peer.stop()
