"""Sources with one id_scope de-duplicate each other's events; without it ids are per source."""

from __future__ import annotations

import time

import pytest

from tests.conftest import TOKEN, base_config

OTHER = "other-webhook-token-0123"


@pytest.mark.parametrize("scope", [None, "pbx"])
async def test_two_webhooks_with_one_id_scope_count_a_shared_id_once(live_server,
                                                                    scope: str | None) -> None:
    sources = {"hook": {"type": "webhook", "token": TOKEN},
               "hook2": {"type": "webhook", "token": OTHER}}
    if scope is not None:
        for source in sources.values():
            source["id_scope"] = scope
    live = await live_server(base_config(sources=sources))
    event = {"type": "contact.queued", "id": "call-1", "ts": time.time(), "queue": "sales",
             "contact_id": "c1"}
    first = await live.post([event])
    second = await live.post([event], token=OTHER)
    assert first == (202, {**first[1], "accepted": 1, "duplicates": 0})
    shared = scope is not None
    assert second[0] == 202
    assert (second[1]["accepted"], second[1]["duplicates"]) == ((0, 1) if shared else (1, 0))
    api = await live.get_json("/api/snapshot")
    assert api["queues"]["sales"]["today"]["offered"] == (1 if shared else 2)
    assert api["queues"]["sales"]["sources"] == (scope if shared else "hook,hook2")
