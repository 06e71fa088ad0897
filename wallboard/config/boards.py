"""Board, tile, playlist, alert and access settings (validated with key paths by config.py)."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, Secret, field_validator, model_validator

from wallboard.config.agents import AgentNames, StateThresholds, check_columns
from wallboard.config.check import did_you_mean
from wallboard.config.kpis import KPI_FORMATS, LIVE_KPIS, WINDOW_KPIS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


TileType = Literal["number", "ring", "sparkline", "queue_table", "agents", "legal", "staffing",
                   "tickets", "survey", "announcements", "clock", "forecast", "agent_grid",
                   "agent_table", "team_table"]
TILE_TYPES: tuple[str, ...] = get_args(TileType)
# The KPI a tile type reads when the config names none; None: the type reads no single KPI.
TYPE_KPI: dict[str, str | None] = {
    "number": None, "ring": "service_level", "sparkline": None, "queue_table": "waiting",
    "agents": "agents_staffed", "legal": "waiting", "staffing": "agents_needed",
    "tickets": "tickets_overdue", "survey": "csat", "announcements": None, "clock": None,
    "forecast": "offered", "agent_grid": None, "agent_table": None, "team_table": None,
}
AGENT_TILES = ("agent_grid", "agent_table", "team_table")  # they show people, not one KPI
# The KPIs each tile type can show (docs/boards.md lists them; None: any KPI). A ring is a
# fraction of a circle: only a 0-1 ratio fits it. The other types draw fixed values of the
# snapshot whatever `kpi` says, so only their own KPI fits; announcements and clocks take none.
TILE_KPIS: dict[str, tuple[str, ...] | None] = {
    "number": None, "sparkline": None,
    "ring": tuple(sorted(k for k, f in KPI_FORMATS.items() if f == "ratio")),
    "queue_table": ("waiting",), "agents": ("agents_staffed",), "legal": ("waiting",),
    "staffing": ("agents_needed",), "tickets": ("tickets_overdue",),
    "survey": ("csat", "nps", "ces"), "announcements": (), "clock": (),
    "forecast": ("offered",), "agent_grid": (), "agent_table": (), "team_table": (),
}
_CLOCK_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class ThresholdConfig(_Model):
    """Amber and red levels; `direction` says whether high or low values are bad."""

    direction: Literal["high_bad", "low_bad"] = "high_bad"
    warn: float | None = None
    crit: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdConfig:
        if self.warn is not None and self.crit is not None:
            if self.direction == "high_bad" and self.crit < self.warn:
                raise ValueError("high_bad: crit must be at least warn")
            if self.direction == "low_bad" and self.crit > self.warn:
                raise ValueError("low_bad: crit must be at most warn")
        return self


class TileConfig(_Model):
    """One tile: a type, its KPI, for a queue (or a channel, or the site), over a window."""

    type: TileType = "number"
    kpi: str | None = None
    queue: str | None = None
    queues: list[str] | None = None  # queue_table rows (default: every queue)
    channel: str | None = None
    window: str | None = None
    rule: str | None = None  # legal: the rule's name (default: the queue's first)
    label: str | None = Field(None, max_length=200)
    cols: int = Field(1, ge=1, le=12)  # column span
    rows: int = Field(1, ge=1, le=6)  # row span
    trend: bool = True  # number tiles: arrow against the previous window
    thresholds: ThresholdConfig | None = None
    # Agent tiles (config/agents.py): whose agents, per-state levels (grid), columns (tables).
    team: str | None = Field(None, min_length=1, max_length=128)
    states: StateThresholds | None = None
    columns: list[str] | None = Field(None, min_length=1, max_length=16)
    sort: str | None = None
    column_thresholds: dict[str, ThresholdConfig] | None = Field(None, max_length=16)

    @model_validator(mode="after")
    def _agent_tile(self) -> TileConfig:
        tables = ("agent_table", "team_table")
        if self.type not in AGENT_TILES and self.team is not None:
            raise ValueError(f"team is for agent tiles ({', '.join(AGENT_TILES)})")
        if self.type != "agent_grid" and self.states is not None:
            raise ValueError("states (thresholds per agent state) is for agent_grid tiles")
        if self.type not in tables and (self.columns or self.sort or self.column_thresholds):
            raise ValueError("columns, sort and column_thresholds are for agent_table and "
                             "team_table tiles")
        if self.type in tables:
            check_columns(self.type, [*(self.columns or ()), *(self.column_thresholds or ())],
                          self.sort)
        if self.type == "team_table" and (self.team or self.queue or self.queues):
            raise ValueError("a team_table shows every team; remove team, queue and queues")
        return self

    @model_validator(mode="after")
    def _kpi_and_window(self) -> TileConfig:
        if self.kpi is None:
            self.kpi = TYPE_KPI[self.type]
        elif self.kpi not in KPI_FORMATS:
            known = sorted(KPI_FORMATS)
            raise ValueError(f"unknown kpi {self.kpi!r}; known: {', '.join(known)}"
                             f"{did_you_mean(self.kpi, known)}")
        fits = TILE_KPIS[self.type]
        if self.kpi is not None and fits is not None and self.kpi not in fits:
            a = "an" if self.type[0] in "aeiou" else "a"
            if not fits:
                raise ValueError(f"{a} {self.type} tile shows no kpi; remove kpi {self.kpi!r}")
            shows = f"{', '.join(fits[:-1])} or {fits[-1]}" if len(fits) > 1 else fits[0]
            raise ValueError(f"{a} {self.type} tile shows {shows}, not kpi {self.kpi!r}")
        if self.kpi is None:
            if self.type in ("number", "sparkline"):
                raise ValueError(f"a {self.type} tile needs a kpi")
            if self.type not in ("agent_table", "team_table"):  # tables: over a window
                self.window = "live"
        elif self.type == "queue_table":
            pass  # columns have their own windows; `window` is the service-level column's
        elif self.kpi in LIVE_KPIS:
            if self.window not in (None, "live"):
                raise ValueError(f"kpi {self.kpi!r} is live; it takes no window")
            self.window = "live"
        elif self.kpi in WINDOW_KPIS and self.window == "live":
            raise ValueError(f"kpi {self.kpi!r} needs a window")
        if self.queue and self.channel:
            raise ValueError("give either queue or channel, not both")
        if self.type in ("legal", "staffing") and not self.queue:
            raise ValueError(f"a {self.type} tile needs a queue")
        if self.type == "forecast":
            if self.channel:
                raise ValueError("a forecast tile shows a queue or the site, not a channel")
            if self.window not in (None, "today"):
                raise ValueError("a forecast tile compares with the today window; "
                                 f"remove window {self.window!r}")
            self.window = "today"
        return self


class AlertConfig(_Model):
    """What a board does when a tile turns red."""

    sound: Literal["chime", "speech", "none"] = "chime"
    quiet_hours: str | None = None  # "22:00-07:00" in the site's time zone: no sound
    mute: bool = False

    @field_validator("quiet_hours")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None and not _CLOCK_RANGE.match(value):
            raise ValueError(f"{value!r} is not a HH:MM-HH:MM range")
        return value


class BoardConfig(_Model):
    """A board: a titled grid of tiles, in a language, with its alert settings."""

    title: str | None = Field(None, max_length=200)
    columns: int = Field(4, ge=1, le=12)
    rows: int | None = Field(None, ge=1, le=12)  # default: as many as the tiles need
    locale: str | None = None  # default: site.locale
    stale_after_s: float | None = Field(None, gt=0)  # badge a tile whose source is silent longer
    pixel_shift_px: int = Field(3, ge=0, le=20)  # slow drift against burn-in; 0 turns it off
    alert: AlertConfig = AlertConfig()
    # Agent names on this board's agent tiles: names, initials, or hidden (docs/boards.md).
    agents: AgentNames = "hidden"
    tiles: list[TileConfig] = Field(min_length=1)


class AnnouncementConfig(_Model):
    """An announcement the boards show from the start (as if posted then), e.g. the demo's."""

    text: str = Field(min_length=1, max_length=280)
    ttl_s: float = Field(gt=0, le=7 * 86400)
    boards: list[str] = []  # empty: every board


class PlaylistConfig(_Model):
    """Boards shown in turn on one TV at /play/NAME."""

    boards: list[str] = Field(min_length=1)
    interval_s: float = Field(30.0, ge=1, le=3600)


class AccessConfig(_Model):
    """Tokens: per board (and playlist) for TVs, one for the admin API. Re-read without restart."""

    # Tokens are Secret: masked in reprs, logs and dumps. Checked as text first (the inner
    # Annotated), so a refused one is reported as for any text field.
    enabled: bool = False
    admin_token: Secret[Annotated[str, Field(min_length=16)]] | None = None
    boards: dict[str, list[Secret[str]]] = {}
    playlists: dict[str, list[Secret[str]]] = {}
    # Board editors by name (who is logged with each edit): their tokens open /edit only.
    editors: dict[str, list[Secret[str]]] = Field(default_factory=dict, max_length=100)
    # TV tokens that open every board of the boards store (boards made in the editor).
    edited_boards: list[Secret[str]] = Field(default_factory=list, max_length=100)

    @field_validator("editors")
    @classmethod
    def _editor_names(cls, value: dict[str, list[Secret[str]]]) -> dict[str, list[Secret[str]]]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
                raise ValueError(f"{name[:80]!r}: an editor's name is 1-64 letters, digits, "
                                 "'_', '.', '@' or '-'")
        return value

    @field_validator("edited_boards")
    @classmethod
    def _long_tv_tokens(cls, value: list[Secret[str]]) -> list[Secret[str]]:
        if any(len(token.get_secret_value()) < 16 for token in value):
            raise ValueError("tokens must be at least 16 characters")
        return value

    @field_validator("boards", "playlists", "editors")
    @classmethod
    def _long_tokens(cls, value: dict[str, list[Secret[str]]]) -> dict[str, list[Secret[str]]]:
        for name, tokens in value.items():
            for token in tokens:
                if len(token.get_secret_value()) < 16:
                    raise ValueError(f"{name}: tokens must be at least 16 characters")
        return value
