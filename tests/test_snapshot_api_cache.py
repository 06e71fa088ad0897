"""GET /api/snapshot is encoded once per snapshot sequence (and per token scope)."""

from __future__ import annotations

import asyncio
import time

import orjson

from tests.conftest import base_config
from wallboard.server import keys


async def test_the_body_is_encoded_once_per_sequence_and_follows_every_change(
        live_server) -> None:
    live = await live_server(base_config())
    hub = live.app[keys.HUB]
    first = await live.get_json("/api/snapshot")
    body = hub.api_body()
    # Within one sequence (no await: no tick between): the same bytes, not encoded again.
    assert hub.api_body() is body and hub._api_cache[None] == (hub.seq, body)
    assert orjson.loads(body)["queues"] == first["queues"]
    status, _ = await live.post([{"type": "contact.queued", "id": "c1", "ts": time.time(),
                                  "queue": "sales", "contact_id": "c1"}])
    assert status == 202
    deadline = time.monotonic() + 5
    while (await live.get_json("/api/snapshot"))["queues"]["sales"]["live"]["waiting"] != 1:
        assert time.monotonic() < deadline, "the cached body never showed the new contact"
        await asyncio.sleep(0.02)
    assert hub.api_body() is not body
    assert orjson.loads(hub.api_body())["queues"]["sales"]["live"]["waiting"] == 1
