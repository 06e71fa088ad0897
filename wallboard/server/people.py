"""Agent tiles' rows, per board: names only as the board allows (names, initials or hidden).

The snapshot's `agents` block is keyed by the sources' agent ids, which are often names; no
board's scope reaches it. A board with an agent tile gets `people.<board>.<tile>` instead: a
list of rows without keys, built here with the board's `agents` setting, so a TV of a board
set to `initials` never receives more than initials, and one without an agent tile nothing.
"""

from __future__ import annotations

import re
from typing import Any

from wallboard.config.agents import AGENT_COLUMNS, OTHER, TEAM_COLUMNS
from wallboard.config.settings import Settings
from wallboard.fold.state import AgentLive

# Attention first: away, then wrap-up, busy, available; logged-out agents last.
STATE_ORDER = {"away": 0, "wrapup": 1, "busy": 2, "available": 3, "offline": 4}
MAX_TILE_AGENTS = 300  # rows per agent tile (the grid is laid out for 8 to 150)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
DEFAULT_COLUMNS = {
    "agent_table": ("name", "state", "answered", "aht_s", "occupancy", "csat", "away_s"),
    "team_table": ("team", "agents_staffed", "agents_available", "agents_away", "answered",
                   "aht_s", "occupancy", "csat"),
}
_STATE_COLUMNS = {"available_s": "available", "busy_s": "busy", "wrapup_s": "wrapup",
                  "away_s": "away"}


def initials(name: str) -> str:
    """Up to three initials of a name's words ("Ada King-Lovelace" -> "AKL"), upper case."""
    letters = [word[0] for word in _WORD.findall(name)][:3]
    return "".join(letters).upper() or "?"


def shown_name(agent: str, settings: Settings, mode: str) -> str:
    """What a board in `mode` may show of an agent: its display name, initials, or nothing."""
    if mode == "hidden":
        return ""
    entry = settings.agents.roster.get(agent)
    name = entry.name if entry is not None and entry.name else agent
    return name if mode == "names" else initials(name)


def _picked(agent: AgentLive, tile: dict[str, Any]) -> bool:
    if tile.get("team") and agent.team != tile["team"]:
        return False
    queues = tile.get("agent_queues")
    return not queues or bool(set(queues).intersection(agent.queues))


def _reason(live: AgentLive) -> str | None:
    """The normalised code when the map knows the text, else the text as the source sent it."""
    if live.code is not None and live.code != OTHER:
        return live.code
    return live.reason


def _column(block: dict[str, Any], column: str) -> Any:
    if column in _STATE_COLUMNS:
        return (block.get("time_in_state") or {}).get(_STATE_COLUMNS[column])
    return block.get(column)


def _sort_key(column: str | None, row: dict[str, Any]) -> tuple[Any, ...]:
    if column is None or column == "state":
        since = row.get("since")
        return (STATE_ORDER.get(row["state"], 9), since if since is not None else float("inf"))
    value = row.get(column)
    if isinstance(value, (int, float)):
        return (0, -value)  # biggest first
    if isinstance(value, str):
        return (1, value.casefold())
    return (2,)  # no value: last


def agent_rows(tile: dict[str, Any], tree: dict[str, Any], agents: dict[str, AgentLive],
               settings: Settings, mode: str) -> list[dict[str, Any]]:
    """One row per agent of the tile (queues or team), sorted, names as `mode` allows."""
    window = tile.get("window") or "live"
    blocks = tree.get("agents", {})
    rows = []
    for agent, live in agents.items():
        if not _picked(live, tile):
            continue
        row: dict[str, Any] = {
            "name": shown_name(agent, settings, mode), "state": live.state,
            "team": live.team or "", "reason": _reason(live),
            "since": live.since if live.since > 0 else None, "channel": live.channel}
        if tile["type"] == "agent_table":
            block = blocks.get(agent, {}).get(window) or {}
            for column in tile["columns"]:
                if column not in ("name", "team", "state"):
                    row[column] = _column(block, column)
            row["csat_n"] = block.get("csat_n")
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(tile.get("sort"), r))
    return rows[:MAX_TILE_AGENTS]


def team_rows(tile: dict[str, Any], tree: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per team: agents now and the window's KPIs, sorted by the tile's column."""
    window = tile.get("window") or "today"
    rows = []
    for team, block in sorted(tree.get("teams", {}).items()):
        live, kpis = block.get("live", {}), block.get(window) or {}
        row: dict[str, Any] = {"team": team, "csat_n": kpis.get("csat_n")}
        for column in tile["columns"]:
            if column.startswith("agents_"):
                row[column] = live.get(column)
            elif column != "team":
                row[column] = _column(kpis, column)
        rows.append(row)
    if tile.get("sort"):
        rows.sort(key=lambda r: _sort_key(tile["sort"], r))
    return rows[:MAX_TILE_AGENTS]


def add_people(tree: dict[str, Any], boards: dict[str, dict[str, Any]],
               agents: dict[str, AgentLive], settings: Settings) -> None:
    """`people.<board>.<tile>` for every agent tile of every board (a read of live state)."""
    people: dict[str, dict[str, Any]] = {}
    for board_id, board in boards.items():
        for tile in board["tiles"]:
            if tile["type"] == "team_table":
                rows = team_rows(tile, tree)
            elif tile["type"] in ("agent_grid", "agent_table"):
                rows = agent_rows(tile, tree, agents, settings, board["agents"])
            else:
                continue
            people.setdefault(board_id, {})[tile["id"]] = rows
    if people:
        tree["people"] = people


def table_columns(tile_type: str, columns: list[str] | None) -> tuple[str, ...]:
    """The columns an agent or team table shows (its own, or the defaults)."""
    known = AGENT_COLUMNS if tile_type == "agent_table" else TEAM_COLUMNS
    return tuple(c for c in (columns or DEFAULT_COLUMNS[tile_type]) if c in known)
