"""The simulator source: its configuration and the task that feeds simulated events live."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import math
import random
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wallboard.kit import (
    Emit,
    Source,
    SourceConfig,
    SourceError,
    load_state_file,
    save_state_file,
)
from wallboard.model import check_channel

from .model import Simulation

log = logging.getLogger(__name__)

# Arrival multipliers per UTC hour: quiet nights (never below 0.35 so a demo stays alive),
# a late-morning peak, a lunch dip and a second mid-afternoon peak.
DEFAULT_PROFILE: tuple[float, ...] = (
    0.40, 0.37, 0.35, 0.35, 0.36, 0.40, 0.50, 0.65,  # 00-07
    0.82, 0.95, 1.00, 0.97, 0.84, 0.86, 0.95, 0.93,  # 08-15
    0.84, 0.72, 0.60, 0.52, 0.47, 0.44, 0.42, 0.40,  # 16-23
)
# Emit at most this many events before letting the event loop run (a long warm-up is big).
EMIT_BATCH = 500
# Simulated seconds per step of a warm-up (a week of warm-up is ~2k steps).
WARMUP_SLICE_S = 300.0
# A saved simulation older than this starts afresh: re-simulating it silently up to the warm-up
# would take longer than a start should (the default queues: about 2 s per simulated day).
RESUME_LIMIT_S = 2 * 86_400.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BreakConfig(_Model):
    """How often an agent takes a break and for how long, as means in seconds."""

    every_s: float = Field(5400.0, gt=0)
    mean_s: float = Field(600.0, gt=0)


class SimQueueConfig(_Model):
    """One simulated queue: its traffic at the peak hour, staffing and customer behaviour."""

    channel: str = "voice"
    arrivals_per_hour: float = Field(gt=0, le=100_000)
    agents: int = Field(ge=0, le=999)  # headcount at the peak hour; fewer are on at night
    aht_s: float = Field(gt=0)  # mean handle time: conversation (talk + hold) plus wrap-up
    wrap_s: float = Field(30.0, ge=0)  # mean wrap-up (after-contact work), part of aht_s
    patience_s: float | None = Field(120.0, gt=0)  # mean time before abandoning; None: never
    csat_response_rate: float = Field(0.2, ge=0, le=1)
    breaks: BreakConfig | None = BreakConfig()
    team: str | None = Field(None, min_length=1)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        return check_channel(value)

    @model_validator(mode="after")
    def _wrap_within_aht(self) -> SimQueueConfig:
        if self.wrap_s >= self.aht_s:
            raise ValueError("wrap_s must be less than aht_s (which includes wrap-up)")
        return self


def default_queues() -> dict[str, SimQueueConfig]:
    """The demo's four queues (the embedded demo config names the same ones)."""
    return {
        "sales": SimQueueConfig(channel="voice", arrivals_per_hour=240, agents=21, aht_s=240,
                                wrap_s=30, patience_s=90, csat_response_rate=0.15,
                                team="Sales"),
        "support": SimQueueConfig(channel="voice", arrivals_per_hour=360, agents=36, aht_s=300,
                                  wrap_s=45, patience_s=120, csat_response_rate=0.15,
                                  team="Support"),
        "chat": SimQueueConfig(channel="chat", arrivals_per_hour=180, agents=25, aht_s=420,
                               wrap_s=30, patience_s=300, csat_response_rate=0.30,
                               team="Digital"),
        "email": SimQueueConfig(channel="email", arrivals_per_hour=60, agents=12, aht_s=600,
                                wrap_s=60, patience_s=None, csat_response_rate=0.10,
                                team="Digital"),
    }


class SimulatorConfig(SourceConfig):
    """Settings of the simulator source."""

    seed: int | None = None  # None: a new random seed each start
    tick_s: float = Field(0.25, gt=0, le=60)
    # Default: site.lateness_s's default, so that the whole warm-up is counted, none of it late.
    warmup_s: float = Field(600.0, ge=0, le=7 * 86_400)
    profile: list[Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: list(DEFAULT_PROFILE), min_length=24, max_length=24)
    queues: dict[str, SimQueueConfig] = Field(default_factory=default_queues, min_length=1)
    scheduled_staffing: bool = True  # False: every agent is logged in around the clock
    # Where the seed and start are saved, so that a restart re-runs the same simulation and
    # re-sends its warm-up with the same event ids (a journal drops them as duplicates).
    # None: a new simulation, with new ids, at every start.
    state_dir: str | None = Field(None, min_length=1)

    @field_validator("profile")
    @classmethod
    def _some_traffic(cls, value: list[float]) -> list[float]:
        if not all(math.isfinite(v) for v in value) or max(value) <= 0:
            raise ValueError("needs 24 finite multipliers, at least one of them above 0")
        return value

    @field_validator("queues")
    @classmethod
    def _named_queues(cls, value: dict[str, SimQueueConfig]) -> dict[str, SimQueueConfig]:
        if any(not name.strip() for name in value):
            raise ValueError("queue names must not be empty")
        return value


class SimulatorSource(Source[SimulatorConfig]):
    """A realistic, seeded contact-center simulation; the embedded demo's default source."""

    type: ClassVar[str] = "simulator"

    def __init__(self, name: str, config: SimulatorConfig) -> None:
        super().__init__(name, config)
        self.simulation: Simulation | None = None
        self._simulated_to = 0.0
        self._pending: collections.deque[dict[str, Any]] = collections.deque()

    async def run(self, emit: Emit) -> None:
        """Replay the warm-up with past timestamps, then emit simulated events as they happen."""
        config = self.config
        if self.simulation is None:
            # A restart by the runner resumes this simulation: a second warm-up would count
            # the last minutes twice.
            await self._begin(config)
        assert self.simulation is not None
        self.connected()
        while True:
            now = self.clock.time()
            # A long warm-up is simulated in slices so the event loop keeps serving meanwhile
            # (slicing does not change the events).
            while self._simulated_to + WARMUP_SLICE_S < now:
                self._simulated_to += WARMUP_SLICE_S
                self._pending.extend(self.simulation.advance(self._simulated_to))
                await self._drain(emit)
                await asyncio.sleep(0)
            self._simulated_to = now
            self._pending.extend(self.simulation.advance(now))
            await self._drain(emit)
            await self.clock.sleep(config.tick_s)

    @property
    def state_path(self) -> Path | None:
        """The file holding the seed and start of this source's simulation, if any."""
        config = self.config
        if config.state_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)
        return Path(config.state_dir) / f"simulator-{safe}.json"

    async def _begin(self, config: SimulatorConfig) -> None:
        """Start the simulation: the saved one if it still fits the config, else a new one.

        A saved simulation is re-run from its own start with its own seed, silently up to the
        warm-up, so the warm-up it sends again carries the ids it carried before.
        """
        now = self.clock.time()
        warm_from = now - config.warmup_s
        fingerprint = simulation_fingerprint(config)
        path = self.state_path
        try:
            saved = load_state_file(path) if path is not None else {}
        except SourceError as exc:
            # Invented data: a new simulation (its file rewritten) beats a source that stays down.
            log.warning("simulator %s: %s; starting a new simulation", self.name, exc)
            saved = {}
        seed, start = saved.get("seed"), saved.get("start")
        if (saved.get("fingerprint") == fingerprint and isinstance(seed, int)
                and isinstance(start, int | float) and config.seed in (None, seed)
                and warm_from - RESUME_LIMIT_S <= start <= now):
            log.info("simulator %s: resuming seed %d started at %.3f", self.name, seed, start)
        else:
            seed = config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
            start = warm_from
            log.info("simulator %s: seed %d, warm-up from %.3f", self.name, seed, start)
            if path is not None:
                await save_state_file(path, json.dumps(
                    {"seed": seed, "start": start, "fingerprint": fingerprint}))
        simulation = Simulation(config, seed, start, self.name)
        skip_to = start
        while skip_to < warm_from:  # the part before the warm-up: simulated, not sent
            skip_to = min(warm_from, skip_to + WARMUP_SLICE_S * 12)
            simulation.advance(skip_to)
            await asyncio.sleep(0)
        self.simulation, self._simulated_to = simulation, max(start, warm_from)

    async def _drain(self, emit: Emit) -> None:
        # An event leaves the deque only once emitted, so an emit failure loses nothing.
        sent = 0
        while self._pending:
            emit(self._pending[0])
            self._pending.popleft()
            sent += 1
            if sent % EMIT_BATCH == 0:
                await asyncio.sleep(0)


def simulation_fingerprint(config: SimulatorConfig) -> str:
    """A digest of what shapes the simulated events: a saved run resumes only if it matches."""
    shape = {"profile": config.profile, "scheduled_staffing": config.scheduled_staffing,
             "queues": {n: q.model_dump() for n, q in config.queues.items()}}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
