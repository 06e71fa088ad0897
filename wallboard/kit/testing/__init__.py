"""Testing kit for source plugins: the contract suite, a virtual clock, replaying peers.

Fixtures (`virtual_clock`, `replay_peer`, `source_harness`) come from the pytest plugin
registered as the `pytest11` entry point `wallboard`; the rest is imported from here.
"""

from __future__ import annotations

from wallboard.base.clock import VirtualClock

from .contract import EVENTS, MALFORMED, PEER_DROP, SourceContract, default_malformed
from .harness import ContractViolation, LoopWatch, SlowCallback, SourceHarness, run_isolated
from .peer import HttpReplay, LoopbackServer, ReplayPeer, TcpReplay

__all__ = [
    "EVENTS",
    "MALFORMED",
    "PEER_DROP",
    "ContractViolation",
    "HttpReplay",
    "LoopWatch",
    "LoopbackServer",
    "ReplayPeer",
    "SlowCallback",
    "SourceContract",
    "SourceHarness",
    "TcpReplay",
    "VirtualClock",
    "default_malformed",
    "run_isolated",
]
