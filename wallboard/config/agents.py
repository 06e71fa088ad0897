"""The `agents:` section (roster, reason map) and the agent tiles' own settings."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wallboard.model.schema import AgentState

MAX_ROSTER = 5000
MAX_REASONS = 200
MAX_REASON_CODES = 32  # distinct codes: each is a Prometheus label value and a window slot
OTHER = "other"  # the code of a reason the map does not know
REASON_CODE = r"^[a-z][a-z0-9_]{0,31}$"
AgentNames = Literal["names", "initials", "hidden"]
# agent_table columns (per agent) and team_table columns (per team): window KPIs, the time in
# each state over the window, and the state now (agents) or agents logged in now (teams).
WINDOW_COLUMNS = ("answered", "handled", "aht_s", "occupancy", "transfers", "csat",
                  "available_s", "busy_s", "wrapup_s", "away_s")
AGENT_COLUMNS = ("name", "team", "state", *WINDOW_COLUMNS)
TEAM_COLUMNS = ("team", "agents_staffed", "agents_available", "agents_away", *WINDOW_COLUMNS)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricsConfig(_Model):
    """What /metrics may label: per-agent series only for the agents named here."""

    # An explicit allow-list keeps the label set bounded (wallboard agents, never contact ids).
    agents: list[str] = Field(default_factory=list, max_length=500)

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("agent names must be unique")
        return values


class RosterEntry(_Model):
    """One agent the site knows before its first event: display name, team, default queues."""

    name: str | None = Field(None, min_length=1, max_length=64)
    team: str | None = Field(None, min_length=1, max_length=128)
    queues: list[str] = Field(default_factory=list, max_length=50)


class AgentsConfig(_Model):
    """Who the agents are (roster) and how sources' reason texts are normalised (reasons)."""

    roster: dict[str, RosterEntry] = Field(default_factory=dict, max_length=MAX_ROSTER)
    # Source text -> code (matched exactly, then case-insensitively); unknown texts are 'other'.
    reasons: dict[str, str] = Field(default_factory=dict, max_length=MAX_REASONS)

    @field_validator("roster")
    @classmethod
    def _agent_ids(cls, value: dict[str, RosterEntry]) -> dict[str, RosterEntry]:
        for agent in value:
            if not 1 <= len(agent) <= 128:
                raise ValueError(f"agent id {agent[:40]!r}… must be 1..128 characters")
        return value

    @field_validator("reasons")
    @classmethod
    def _codes(cls, value: dict[str, str]) -> dict[str, str]:
        for text, code in value.items():
            if not 1 <= len(text) <= 128:
                raise ValueError(f"reason text {text[:40]!r} must be 1..128 characters")
            if not re.match(REASON_CODE, code):
                raise ValueError(f"{text}: code {code!r} must match {REASON_CODE} "
                                 "(lower case letters, digits, _)")
        if len(set(value.values()) | {OTHER}) > MAX_REASON_CODES:
            raise ValueError(f"at most {MAX_REASON_CODES - 1} distinct codes (besides 'other')")
        return value

    def limit_problems(self, max_agents: int, max_teams: int) -> list[str]:
        """The roster against server.max_agents and max_teams (metric labels stay bounded)."""
        problems = []
        if len(self.roster) > max_agents:
            problems.append(f"agents.roster: {len(self.roster)} agents, more than "
                            f"server.max_agents ({max_agents})")
        teams = {entry.team for entry in self.roster.values() if entry.team}
        if len(teams) > max_teams:
            problems.append(f"agents.roster: {len(teams)} teams, more than server.max_teams "
                            f"({max_teams})")
        return problems

    def codes(self) -> tuple[str, ...]:
        """Every code time can be counted under, 'other' last: a bounded, fixed list."""
        return (*sorted(set(self.reasons.values()) - {OTHER}), OTHER)


class ReasonMap:
    """Source reason text -> normalised code, built once from `agents.reasons`."""

    def __init__(self, config: AgentsConfig) -> None:
        self.exact = dict(config.reasons)
        self.folded = {text.casefold(): code for text, code in config.reasons.items()}
        self.codes = config.codes()
        self.index = {code: i for i, code in enumerate(self.codes)}

    def code(self, text: str | None) -> str | None:
        """The code of a reason text (None: no reason); a code itself stays itself."""
        if text is None:
            return None
        code = self.exact.get(text)
        if code is None:
            code = self.folded.get(text.casefold())
        if code is None:
            code = text if text in self.index else OTHER
        return code


class StateLevels(_Model):
    """Seconds in a state after which a cell turns amber (warn) and red (crit)."""

    warn: float | None = Field(None, gt=0, le=86400)
    crit: float | None = Field(None, gt=0, le=86400)

    @model_validator(mode="after")
    def _ordered(self) -> StateLevels:
        if self.warn is not None and self.crit is not None and self.crit < self.warn:
            raise ValueError("crit must be at least warn")
        return self


StateThresholds = dict[AgentState, StateLevels]


def check_columns(tile_type: str, columns: list[str] | None, sort: str | None) -> None:
    """An agent_table's or team_table's columns and sort column, or ValueError naming them."""
    known = AGENT_COLUMNS if tile_type == "agent_table" else TEAM_COLUMNS
    for name in [*(columns or ()), *([sort] if sort else [])]:
        if name not in known:
            raise ValueError(f"unknown column {name!r} for {tile_type}; known: "
                             f"{', '.join(known)}")
