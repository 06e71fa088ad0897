"""freshdesk passes the plugin kit's contract suite against a recorded ticket list."""

from __future__ import annotations

from typing import ClassVar

import orjson
from wallboard_plugins.freshdesk import FreshdeskSource

from tests.freshdesk_peer import API_KEY, recording
from wallboard.kit.testing import HttpReplay, SourceContract


class TestFreshdeskContract(SourceContract):
    """Every check applies: the source polls its peer's ticket list over HTTP."""

    source_class = FreshdeskSource
    config: ClassVar[dict] = {"url": "{peer_url}", "api_key": API_KEY, "interval_s": 30,
                              "groups": {"11": "billing", "12": "support"}}
    bad_configs: ClassVar[list] = [
        ({"url": "acme.freshdesk.com"}, "url: String should match pattern"),
        ({"api_key": "short"}, "api_key: String should have at least 8 characters"),
        ({"per_page": 101}, "per_page: Input should be less than or equal to 100"),
        ({"interval_s": 0}, "interval_s: Input should be greater than 0"),
        ({"api_key": None}, "api_key: Field required"),
        ({"since": "2026-11-01"}, "since: String should match pattern"),
    ]
    peer = HttpReplay(orjson.dumps(recording()["first"]))
