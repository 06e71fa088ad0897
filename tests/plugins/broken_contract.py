"""The contract suite run against the broken plugins (by tests/test_contract_suite.py only)."""

from __future__ import annotations

from typing import ClassVar

from wallboard.kit.testing import MALFORMED, PEER_DROP, HttpReplay, SourceContract

from .broken_sources import BrokenSource, FragileSource


class TestBrokenSourceContract(SourceContract):
    """Blocks the loop, emits invalid events, ignores cancellation."""

    source_class = BrokenSource
    config: ClassVar[dict] = {"queue": "sales"}
    bad_configs: ClassVar[list] = [({"queue": None}, "queue: Field required")]
    not_applicable: ClassVar[dict] = {PEER_DROP: "no peer", MALFORMED: "no peer"}
    cancel_timeout_s = 0.5  # it never stops; half a second shows that as well as a minute


class TestFragileSourceContract(SourceContract):
    """Never reports its peer gone; crashes on a payload of the wrong shape."""

    source_class = FragileSource
    config: ClassVar[dict] = {"url": "{peer_url}/queues", "interval_s": 10}
    bad_configs: ClassVar[list] = [({"interval_s": 0}, "interval_s")]
    peer = HttpReplay(b'{"queues": [{"name": "sales", "waiting": 2}]}')
    timeout_s = 2.0  # it never goes down; no need to wait the default 5 s to see that
