"""Every in-memory cache is exported with its bound, and stays within it under traffic."""

from __future__ import annotations

import copy
import time
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_config
from wallboard.server.hub import SCOPE_CACHE_LIMIT, Hub

CACHES = {"recent_event_ids", "departed_contacts", "admission_places", "metric_prefixes",
          "history_samples", "snapshot_bodies", "api_bodies", "scope_paths"}
DEDUPE = 100


def caches(text: str) -> dict[str, dict[str, float]]:
    """{cache: {"entries": n, "limit": m}} from a /metrics text."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("wallboard_cache_entries", "wallboard_cache_limit"):
            for sample in family.samples:
                out.setdefault(sample.labels["cache"], {})[family.name.rsplit("_", 1)[1]] = (
                    sample.value)
    return out


async def test_every_cache_is_exported_with_its_bound_and_stays_within_it(live_server) -> None:
    config = base_config()
    config["server"]["dedupe_cache_ids"] = DEDUPE
    live = await live_server(config)
    now = time.time()
    posted = 0
    for batch in range(5):  # 250 distinct ids through a cache of 100
        events: list[dict[str, Any]] = [
            {"type": "contact.queued", "id": f"e{batch}-{i}", "ts": now, "queue": "sales",
             "contact_id": f"c{batch}-{i}"} for i in range(50)]
        status, body = await live.post(events)
        assert status == 202, body
        posted += len(events)
    _, text = await live.get_text("/metrics")
    found = caches(text)
    assert set(found) == CACHES
    for name, figures in found.items():
        assert 0 <= figures["entries"] <= figures["limit"], (name, figures)
    ids = found["recent_event_ids"]
    assert ids["limit"] == DEDUPE
    # Two generations of DEDUPE/2: the newest half to all of the last DEDUPE ids.
    assert DEDUPE // 2 <= ids["entries"] <= DEDUPE < posted
    assert found["metric_prefixes"]["entries"] > 0  # the scrape before this one wrote some


def test_the_hubs_per_scope_caches_are_bounded_however_many_scopes_ask() -> None:
    tree: dict[str, Any] = {"meta": {"ts": 1}, "queues": {f"q{i}": {"waiting": i}
                                                          for i in range(400)}}
    hub = Hub(lambda: copy.deepcopy(tree))
    hub.flush()
    for i in range(400):  # more distinct scopes than the bound (tokens changed by reloads)
        scope = (("meta",), ("queues", f"q{i}"))
        want = {"meta": {"ts": 1}, "queues": {f"q{i}": {"waiting": i}}}
        assert orjson.loads(hub.api_body(scope)) == want
        hub.snapshot_frame(scope)
        sizes = hub.cache_sizes()
        assert all(entries <= bound for entries, bound in sizes.values()), sizes
    assert sizes["api_bodies"][1] == SCOPE_CACHE_LIMIT
    assert 0 < sizes["api_bodies"][0] <= SCOPE_CACHE_LIMIT
