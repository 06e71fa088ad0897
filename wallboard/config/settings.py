"""YAML configuration: loading, ${ENV} substitution and validation with key paths."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wallboard.config.agents import AgentsConfig, MetricsConfig
from wallboard.config.boards import (
    AccessConfig,
    AnnouncementConfig,
    BoardConfig,
    PlaylistConfig,
    TileConfig,
)
from wallboard.config.check import did_you_mean, document_order, reference_problems, suggestion
from wallboard.config.demo import demo_config
from wallboard.config.file import ConfigError, read_config_file
from wallboard.config.history import HistoryConfig
from wallboard.config.windows import DEFAULT_WINDOWS, parse_window
from wallboard.model.events import CHANNELS, check_channel

# (the raw `sources` section, the file) -> 'file: key.path: message' lines for each source's
# own settings; plugins.source_problems, given by the caller (the source types are plugins').
SourceCheck = Callable[[dict[str, Any], str], list[str]]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


SlVariant = Literal["answered_only", "abandons_negative", "abandons_ignored", "abandons_positive",
                    "removed_within_threshold"]
SL_VARIANTS: tuple[str, ...] = get_args(SlVariant)


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
    return value


class ServiceLevelConfig(_Model):
    """Service-level threshold, target and formula variant for one queue."""

    threshold_s: float = Field(20.0, gt=0)
    target: float = Field(0.8, ge=0, le=1)
    short_abandon_s: float = Field(5.0, ge=0)
    variant: SlVariant = "abandons_negative"


class LegalRuleConfig(_Model):
    """A legal wait limit, e.g. Israel's six minutes from call start."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    limit_s: float = Field(gt=0)
    warn_s: float | None = Field(None, gt=0)
    target: float | None = Field(None, ge=0, le=1)
    start: Literal["call", "queue"] = "call"

    @model_validator(mode="after")
    def _warn_before_limit(self) -> LegalRuleConfig:
        if self.warn_s is not None and self.warn_s >= self.limit_s:
            raise ValueError("warn_s must be less than limit_s")
        return self


class StaffingConfig(_Model):
    """How the live staffing forecast is computed for a queue."""

    model: Literal["erlang_a", "erlang_c"] = "erlang_a"
    window: str | None = None  # default: the shortest rolling window configured
    max_occupancy: float = Field(1.0, gt=0, le=1)


class QueueConfig(_Model):
    """A queue as the site names it."""

    label: str | None = None
    channel: str = "voice"
    timezone: str | None = None
    service_level: ServiceLevelConfig = ServiceLevelConfig()
    legal_rules: list[LegalRuleConfig] = Field(default_factory=list, max_length=4)
    callback_promise_s: float = Field(3 * 3600, gt=0)
    staffing: StaffingConfig = StaffingConfig()

    @field_validator("timezone")
    @classmethod
    def _known_queue_zone(cls, value: str | None) -> str | None:
        return _zone(value)

    @field_validator("legal_rules")
    @classmethod
    def _unique_rules(cls, rules: list[LegalRuleConfig]) -> list[LegalRuleConfig]:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError("legal rule names must be unique per queue")
        return rules

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        try:
            return check_channel(value)
        except ValueError as exc:
            raise ValueError(f"{exc}{did_you_mean(value, CHANNELS)}") from None


class SiteConfig(_Model):
    """Site name, time zone (for 'today') and locale."""

    name: str = "Contact center"
    timezone: str = "UTC"
    locale: str = "en"
    lateness_s: float = Field(600.0, ge=0, le=86400)
    shift_resets: list[str] = ["00:00"]
    min_survey_sample: int = Field(30, ge=1)
    ticket_at_risk_s: float = Field(900.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone(value) or "UTC"

    @field_validator("shift_resets")
    @classmethod
    def _clock_times(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
                raise ValueError(f"{value!r} is not a HH:MM time")
        return values


_DEFAULT_PORTS = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}


def safe_url(url: str) -> str:
    """The URL without its password (redis://:pw@host), for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def normal_origin(origin: str) -> str:
    """An origin as browsers send it: lower case, no trailing slash, no default port."""
    origin = origin.strip().lower().rstrip("/")
    scheme = origin.partition("://")[0]
    default = _DEFAULT_PORTS.get(scheme)
    # https://x:443 is the origin https://x, which is all a browser ever sends for it.
    if default and origin.endswith(default):
        return origin[: -len(default)]
    return origin


class ServerConfig(_Model):
    """Listening address and push behaviour."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    push_interval_ms: int = Field(200, ge=10, le=10_000)
    heartbeat_s: float = Field(10.0, gt=0)
    send_timeout_s: float = Field(5.0, gt=0)
    # A webhook request: its body (413 too_large) and its events (413 too_many_events).
    max_body_bytes: int = Field(4 * 1_048_576, ge=1024, le=256 * 1_048_576)
    max_batch_events: int = Field(10_000, ge=1, le=1_000_000)
    # Event ids kept in memory in front of the journal's id table (all of it without one).
    dedupe_cache_ids: int = Field(200_000, ge=2, le=10_000_000)
    max_queues: int = Field(200, ge=1)
    # Teams are a label of /metrics and a block of the snapshot: bounded like queues.
    max_teams: int = Field(200, ge=1)
    # Agents are a block of the snapshot each (and windows in memory): bounded like teams.
    # 2,000 busy agents: ~21 MiB, a 1.4 MB snapshot, ~150 ms to build it (bench/cardinality.py).
    max_agents: int = Field(2000, ge=1, le=1_000_000)
    # Every name in an event (queue, agent, team, ids...): at most this many characters.
    max_name_length: int = Field(128, ge=16, le=4096)
    # How far ahead of this server's clock an event's time may be (a sender's clock drift).
    max_clock_skew_s: float = Field(300.0, ge=0, le=86_400)
    # Sparklines and trend arrows sample tile values once per step (one minute on a TV).
    history_step_s: float = Field(60.0, ge=0.05, le=3600)
    # Connections (docs/operations.md#limits-and-hardening): slow clients hold descriptors.
    header_timeout_s: float = Field(10.0, gt=0, le=300)  # first request's headers, from accept
    body_timeout_s: float = Field(30.0, gt=0, le=3600)  # a request body, from its headers
    keepalive_timeout_s: float = Field(75.0, gt=0, le=3600)  # idle between two requests
    max_connections: int = Field(4096, ge=1, le=1_000_000)  # websockets of boards included
    # One client address may not take every slot; behind a reverse proxy every client has the
    # proxy's address: raise it to max_connections there (docs/operations.md).
    max_connections_per_ip: int = Field(256, ge=1, le=1_000_000)
    # Pages of other origins may not open /ws (no Origin header, or the Host's own: allowed).
    allowed_origins: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            origin = value.strip().lower().rstrip("/")
            if not re.fullmatch(r"https?://[a-z0-9.\-\[\]:]+", origin):
                raise ValueError(f"{value!r} is not an origin like https://host[:port]")
            out.append(normal_origin(origin))
        return out


class JournalConfig(_Model):
    """The durable event journal: where accepted events are stored before they are acknowledged."""

    enabled: bool = True
    backend: Literal["sqlite", "redis"] = "sqlite"
    data_dir: str = Field("./wallboard-data", min_length=1)  # relative to the working directory
    retention_days: int = Field(7, ge=1, le=3650)
    batch_ms: int = Field(10, ge=0, le=100)  # longest wait for more events before a commit
    batch_events: int = Field(1000, ge=1, le=100_000)  # commit at once when a batch holds this
    sync: Literal["full", "normal"] = "full"  # full: fsync each commit (survives power loss)
    retry_s: float = Field(5.0, gt=0, le=300)  # while down: how often a write is tried again
    prune_every_s: float = Field(3600.0, gt=0)
    checkpoint_every_s: float = Field(60.0, ge=1, le=3600)  # the fold's state saved (restart)
    # backend: redis (several nodes, one stream; docs/operations.md#scale-out-on-redis-streams)
    url: str | None = Field(None, validate_default=True)  # redis://host:6379/0, rediss://, unix://
    key: str = Field("wallboard", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")  # prefix of every key
    node: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # default: host-pid
    lease_s: float = Field(10.0, ge=1, le=300)  # a dead node's sources move within this
    # How long an event id is remembered (Redis); default: retention_days, like the events.
    dedupe_ttl_s: float | None = Field(None, ge=60)
    timeout_s: float = Field(2.0, gt=0, le=60)  # a Redis call slower than this: journal down
    wait_replicas: int = Field(0, ge=0, le=16)  # WAIT for this many replicas before the ack
    maxlen: int | None = Field(None, ge=1000)  # also trim the stream to about this many entries

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("backend") != "redis":
            return value
        if not value:
            raise ValueError("required when backend is redis (e.g. redis://127.0.0.1:6379/0)")
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{safe_url(value)!r} is not a redis://, rediss:// or unix:// URL")
        return value


class Settings(_Model):
    """The whole validated configuration (sources are validated by their own models later)."""

    site: SiteConfig = SiteConfig()
    server: ServerConfig = ServerConfig()
    journal: JournalConfig = JournalConfig()
    history: HistoryConfig = HistoryConfig()
    metrics: MetricsConfig = MetricsConfig()
    agents: AgentsConfig = AgentsConfig()  # roster and reason map (config/agents.py)
    windows: list[str] = Field(default_factory=lambda: list(DEFAULT_WINDOWS), min_length=1)
    queues: dict[str, QueueConfig] = {}
    # Raw until the source's own model reads it: out of the repr, so no token is ever logged.
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)
    boards: dict[str, BoardConfig] = {}
    playlists: dict[str, PlaylistConfig] = {}
    access: AccessConfig = AccessConfig()
    announcements: list[AnnouncementConfig] = Field(default_factory=list, max_length=20)

    @field_validator("windows")
    @classmethod
    def _known_windows(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_window(value)
        if len(set(values)) != len(values):
            raise ValueError("window names must be unique")
        return values

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> Settings:
        # parse_settings checks the mapping as read (configcheck.py), with the schema's errors.
        if not (info.context or {}).get("references_checked"):
            problems = reference_problems(self.model_dump())
            if problems:
                raise ValueError("\n".join(problems))
        limits = self.agents.limit_problems(self.server.max_agents, self.server.max_teams)
        if limits:
            raise ValueError("\n".join(limits))
        for tile in (tile for board in self.boards.values() for tile in board.tiles):
            self.tile_defaults(tile)
        return self

    def tile_defaults(self, tile: TileConfig) -> None:
        """A tile's window (and legal rule) when it names none: also for edited boards."""
        if tile.window is None:
            tile.window = "today" if "today" in self.windows else self.windows[0]
        queue = self.queues.get(tile.queue or "")
        if tile.type == "legal" and tile.rule is None and queue and queue.legal_rules:
            tile.rule = queue.legal_rules[0].name


# The embedded demo (wallboard/config/demo.yaml): the board of the README's screenshots.
DEMO_CONFIG: dict[str, Any] = demo_config()


def substitute_env(node: Any, path: str, problems: list[str], where: str) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, collecting unset variables."""
    if isinstance(node, dict):
        return {k: substitute_env(v, f"{path}.{k}" if path else str(k), problems, where)
                for k, v in node.items()}
    if isinstance(node, list):
        return [substitute_env(v, f"{path}[{i}]", problems, where) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def repl(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            if match.group(2) is None:
                problems.append(
                    f"{where}: {path}: environment variable {match.group(1)} is not set")
                return ""
            return match.group(2)
        return value

    return _ENV.sub(repl, node)


def format_validation_error(where: str, error: ValidationError, prefix: str = "",
                            model: type[BaseModel] | None = None) -> list[str]:
    """Pydantic errors as 'file: key.path: message' lines; `model` gives "did you mean"."""
    lines = []
    for item in error.errors():
        parts = [prefix] if prefix else []
        for loc in item["loc"]:
            if isinstance(loc, int):
                parts[-1:] = [f"{parts[-1]}[{loc}]"] if parts else [f"[{loc}]"]
            else:
                parts.append(str(loc))
        message = item["msg"].removeprefix("Value error, ") + suggestion(item, model)
        # Cross-reference checks carry their own key path in the message, one per line.
        for text in message.split("\n"):
            lines.append(f"{where}: {'.'.join(parts)}: {text}" if parts else f"{where}: {text}")
    return lines


def parse_settings(raw: Any, where: str = "<config>",
                   source_check: SourceCheck | None = None) -> Settings:
    """Validate an already-loaded mapping into Settings, raising ConfigError with every problem.

    The stages do not stop at the first that fails: unset variables, the schema, the
    cross-references and (with `source_check`) each source's own settings are all reported.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}: <top>: must be a mapping of sections"])
    unset: list[str] = []
    raw = substitute_env(raw, "", unset, where)
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw, context={"references_checked": True})
    except ValidationError as exc:
        problems += format_validation_error(where, exc, model=Settings)
    problems += [f"{where}: {problem}" for problem in reference_problems(raw)]
    if source_check is not None and isinstance(raw.get("sources"), dict):
        problems += source_check(raw["sources"], where)
    # A variable left unset is the problem at its key, not the empty value put in its place.
    paths = tuple(line.split(": environment variable ")[0] + ":" for line in unset)
    problems = unset + [p for p in problems if not p.startswith(paths)]
    if problems or settings is None:
        # In the file's order, each once (a key path is what follows 'file: ').
        lines = sorted(dict.fromkeys(problems), key=lambda line: document_order(
            raw, line.removeprefix(f"{where}: ").split(": ", 1)[0]))
        raise ConfigError(lines or [f"{where}: invalid"])
    return settings


def load_settings(path: str | Path | None, source_check: SourceCheck | None = None) -> Settings:
    """Load the YAML file at `path`, or the embedded demo configuration when None."""
    if path is None:
        return parse_settings(DEMO_CONFIG, "<demo>", source_check)
    return parse_settings(read_config_file(path), str(path), source_check)
