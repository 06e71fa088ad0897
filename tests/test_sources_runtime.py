"""Source runtime: back-off with jitter, status transitions, isolation between sources."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import ClassVar

import pytest

from wallboard.kit.source import (
    DOWN,
    STALE,
    UP,
    Backoff,
    PollConfig,
    PollSource,
    Source,
    SourceConfig,
    SourceError,
    SourceRunner,
)


def test_backoff_grows_exponentially_with_full_jitter_and_resets() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(8.0, 2 ** attempt)
    assert len(set(delays)) == len(delays)  # jitter: no two retries in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 1.0


class Flaky(PollSource):
    """Fails its first two polls, then delivers one event per poll."""

    type: ClassVar[str] = "flaky"
    Config: ClassVar[type[SourceConfig]] = PollConfig

    def __init__(self, name: str, config: SourceConfig) -> None:
        super().__init__(name, config)
        self.calls = 0

    async def poll(self) -> list:
        self.calls += 1
        if self.calls <= 2:
            raise SourceError(f"peer refused (attempt {self.calls})")
        return [{"type": "contact.queued", "ts": 1.0, "queue": "q", "contact_id": f"{self.calls}"}]


class Crashing(Source):
    """A buggy plugin: raises something that is not a SourceError."""

    type: ClassVar[str] = "crashing"

    async def run(self, emit) -> None:  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("plugin bug")


async def test_failing_source_goes_down_with_error_then_recovers_and_others_keep_running(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wallboard.kit.source")
    got: list = []
    flaky = SourceRunner(Flaky("pbx", PollConfig(type="flaky", interval_s=0.01)), got.append,
                         backoff=Backoff(0.01, 0.02))
    crashing = SourceRunner(Crashing("bad", SourceConfig(type="crashing")), got.append,
                            backoff=Backoff(0.01, 0.02))
    seen: list[str] = []
    flaky.on_change = lambda: seen.append(flaky.status.status)
    tasks = [asyncio.create_task(flaky.run()), asyncio.create_task(crashing.run())]
    for _ in range(200):
        if flaky.status.status == UP and len(got) >= 3:
            break
        await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    transitions = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert transitions[:2] == [DOWN, UP]
    assert flaky.status.last_error is None
    assert crashing.status.status == DOWN
    assert crashing.status.last_error == "ZeroDivisionError: plugin bug"
    assert crashing.status.crashes >= 1 and flaky.status.crashes == 0  # SourceError: no bug
    downs = [r for r in caplog.records if "pbx down" in r.getMessage()]
    assert len(downs) == 1 and "attempt 1" in downs[0].getMessage()  # a transition, once
    crashes = [r for r in caplog.records if "bad crashed" in r.getMessage()]
    assert len(crashes) == 1
    assert any("pbx recovered" in r.getMessage() for r in caplog.records)


async def test_silent_source_turns_stale_and_back_up_on_the_next_event() -> None:
    clock = [100.0]
    runner = SourceRunner(Crashing("s", SourceConfig(type="x", stale_after_s=30)), lambda e: None,
                          clock=lambda: clock[0])
    runner._on_connected()
    assert runner.status.status == UP
    clock[0] = 120.0
    runner.check_stale(clock[0])
    assert runner.status.status == UP
    clock[0] = 131.0
    runner.check_stale(clock[0])
    assert runner.status.status == STALE
    runner.emit({"type": "contact.queued"})
    assert runner.status.status == UP and runner.status.last_event_ts == 131.0
