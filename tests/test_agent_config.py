"""The agents section and agent tiles' settings: bounds, and errors that name the key path."""

from __future__ import annotations

from typing import Any

import pytest

from wallboard.config.agents import AgentsConfig, ReasonMap
from wallboard.config.file import ConfigError
from wallboard.config.settings import parse_settings
from wallboard.server.people import initials


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(config, "site.yaml")
    return str(info.value).splitlines()


def test_errors_name_the_key_path() -> None:
    lines = problems({
        "agents": {"reasons": {"Lunch": "Lunch Break"},
                   "roster": {"1001": {"name": "", "queues": "sales"}}},
        "boards": {"floor": {"agents": "everyone", "tiles": [
            {"type": "agent_table", "columns": ["name", "nmae"]},
            {"type": "agent_grid", "states": {"lunch": {"warn": 1}}},
            {"type": "agent_grid", "states": {"away": {"warn": 10, "crit": 5}}},
            {"kpi": "waiting", "states": {"away": {"warn": 1}}},
            {"type": "team_table", "team": "red"},
            {"type": "agent_grid", "kpi": "waiting"},
            {"type": "agent_table", "sort": "csat_n"}]}}})
    text = "\n".join(lines)
    assert "site.yaml: agents.reasons: Lunch: code 'Lunch Break' must match" in text
    assert "site.yaml: agents.roster.1001.name: " in text
    assert "site.yaml: agents.roster.1001.queues: " in text
    assert "site.yaml: boards.floor.agents: Input should be 'names', 'initials' or 'hidden'" \
        in text
    assert "site.yaml: boards.floor.tiles[0]: unknown column 'nmae' for agent_table" in text
    assert "site.yaml: boards.floor.tiles[1].states.lunch" in text
    assert "site.yaml: boards.floor.tiles[2].states.away: crit must be at least warn" in lines
    assert "site.yaml: boards.floor.tiles[3]: states (thresholds per agent state) is for " \
        "agent_grid tiles" in text
    assert "site.yaml: boards.floor.tiles[4]: a team_table shows every team" in text
    assert "site.yaml: boards.floor.tiles[5]: an agent_grid tile shows no kpi" in text
    assert "site.yaml: boards.floor.tiles[6]: unknown column 'csat_n'" in text


def test_the_roster_and_the_reason_map_are_bounded() -> None:
    many = {f"a{i}": {"team": f"t{i}"} for i in range(3)}
    assert problems({"server": {"max_teams": 2}, "agents": {"roster": many}}) == [
        "site.yaml: agents.roster: 3 teams, more than server.max_teams (2)"]
    assert problems({"server": {"max_agents": 2}, "agents": {"roster": many}}) == [
        "site.yaml: agents.roster: 3 agents, more than server.max_agents (2)"]
    codes = {f"text {i}": f"code_{i}" for i in range(32)}
    assert "at most 31 distinct codes" in "\n".join(problems({"agents": {"reasons": codes}}))
    too_many = {f"text {i}": "x" for i in range(201)}
    assert "agents.reasons" in "\n".join(problems({"agents": {"reasons": too_many}}))
    assert "agents.reasons" in "\n".join(problems({"agents": {"reasons": {"y" * 129: "x"}}}))


def test_reason_map_matches_exactly_then_ignoring_case_else_other() -> None:
    reasons = ReasonMap(AgentsConfig(reasons={"Lunch break": "lunch", "lunch BREAK": "meal",
                                              "Coffee": "break"}))
    assert reasons.codes == ("break", "lunch", "meal", "other")
    assert reasons.code("Lunch break") == "lunch"
    assert reasons.code("lunch BREAK") == "meal"  # an exact match first
    assert reasons.code("COFFEE") == "break"
    assert reasons.code("break") == "break"  # a code is itself
    assert reasons.code("Dentist") == "other"
    assert reasons.code(None) is None
    assert ReasonMap(AgentsConfig()).code("anything") == "other"


@pytest.mark.parametrize(("name", "expected"), [
    ("Ada Lovelace", "AL"), ("Ada King-Lovelace", "AKL"), ("ada", "A"), ("1001", "?"),
    ("jean.luc picard", "JLP"), ("Ünal Çelik", "ÜÇ"), ("דנה כהן", "דכ"),
    ("Mary Ann Evans Cross", "MAE"),
])
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected
