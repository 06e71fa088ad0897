"""pytest plugin (entry point `pytest11`): fixtures for testing wallboard source plugins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wallboard.base.clock import VirtualClock
from wallboard.kit.source import Source

from .harness import SourceHarness
from .peer import HttpReplay, ReplayPeer, TcpReplay


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A clock that moves only when told; pass it to a SourceHarness or a SourceRunner."""
    return VirtualClock()


@pytest.fixture
def replay_peer() -> Callable[[HttpReplay | TcpReplay], ReplayPeer]:
    """Factory: `async with replay_peer(HttpReplay(path)) as peer:` serves a recording."""
    return ReplayPeer


@pytest.fixture
def source_harness(virtual_clock: VirtualClock) -> Callable[[Source[Any]], SourceHarness]:
    """Factory: `async with source_harness(source) as h:` runs it on the virtual clock."""

    def make(source: Source[Any]) -> SourceHarness:
        return SourceHarness(source, clock=virtual_clock)

    return make
