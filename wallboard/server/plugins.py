"""Plugin manager factory and the source-type registry built from hook results."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import ValidationError

from wallboard.config.check import did_you_mean
from wallboard.config.file import ConfigError
from wallboard.config.settings import Settings, SourceCheck, format_validation_error
from wallboard.kit import hookspecs
from wallboard.kit.source import Source

ENTRY_POINT_GROUP = "wallboard"
PLUGINS_ENV = "WALLBOARD_PLUGINS"  # comma-separated allow-list of plugin names
TRACE_ENV = "WALLBOARD_TRACE_HOOKS"  # 1: log every hook call, its plugins and its result
trace_log = logging.getLogger("wallboard.hooks")


def allowed_plugins(environ: Mapping[str, str]) -> set[str] | None:
    """The names in WALLBOARD_PLUGINS, or None (every installed plugin) when unset or empty."""
    names = {n.strip() for n in environ.get(PLUGINS_ENV, "").split(",") if n.strip()}
    return names or None


def make_plugin_manager(environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """Build a plugin manager with the plugins of the `wallboard` entry-point group.

    `environ` (default: the process environment) may narrow them with WALLBOARD_PLUGINS and
    turn on hook-call tracing with WALLBOARD_TRACE_HOOKS=1.
    """
    environ = os.environ if environ is None else environ
    allow = allowed_plugins(environ)
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    if environ.get(TRACE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        trace_hook_calls(pm)
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    if allow is not None and (unknown := allow - set(points.names)):
        raise ConfigError([f"{PLUGINS_ENV}: unknown plugin {name!r}; installed: "
                           f"{', '.join(sorted(points.names)) or 'none'}"
                           for name in sorted(unknown)])
    for ep in points:
        if pm.get_plugin(ep.name) is not None:
            continue  # the same distribution seen twice on sys.path
        if allow is not None and ep.name not in allow:
            continue  # not even imported: an excluded plugin cannot break the start
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError([f"plugin {ep.name} ({ep.value}) failed to load: "
                               f"{type(exc).__name__}: {exc}"]) from exc
        pm.register(plugin, name=ep.name)
    pm.check_pending()
    return pm


def trace_hook_calls(pm: pluggy.PluginManager) -> None:
    """Log each hook call on `wallboard.hooks`: plugins called, results, time taken."""
    started: list[float] = []

    def before(name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        started.append(time.perf_counter())
        plugins = ", ".join(pm.get_name(i.plugin) or repr(i.plugin) for i in impls) or "none"
        trace_log.info("hook %s(%s) calls: %s", name,
                       ", ".join(f"{k}={v!r}" for k, v in kwargs.items()), plugins)

    def after(outcome: pluggy.Result[Any], name: str, impls: Sequence[pluggy.HookImpl],
              kwargs: Mapping[str, Any]) -> None:
        ms = (time.perf_counter() - started.pop()) * 1000
        if outcome.exception is not None:
            trace_log.info("hook %s raised %s: %s (%.1f ms)", name,
                           type(outcome.exception).__name__, outcome.exception, ms)
        else:
            trace_log.info("hook %s returned %r (%.1f ms)", name, outcome.get_result(), ms)

    pm.add_hookcall_monitoring(before, after)


@dataclass
class SourceRegistry:
    """Source classes by type name, and which plugin provided each."""

    types: dict[str, type[Source[Any]]] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """The name a plugin was registered under."""
    return pm.get_name(plugin) or str(getattr(plugin, "__name__", repr(plugin)))


def build_registry(pm: pluggy.PluginManager) -> SourceRegistry:
    """Collect source types from every plugin; two plugins may not claim one type name."""
    registry = SourceRegistry()
    plugins = [impl.plugin for impl in pm.hook.register_source_types.get_hookimpls()]
    for plugin in plugins:
        provider = plugin_name(pm, plugin)
        # One plugin at a time, through pluggy (so hook tracing sees it), to know who said what.
        only = pm.subset_hook_caller("register_source_types",
                                     remove_plugins=[p for p in plugins if p is not plugin])
        for classes in only():  # pluggy drops a None result: zero or one list here
            for cls in classes:
                if not (isinstance(cls, type) and issubclass(cls, Source)
                        and isinstance(getattr(cls, "type", None), str)):
                    raise ConfigError([f"plugin {provider}: register_source_types returned "
                                       f"{cls!r}, not a Source subclass with a `type` name"])
                if cls.type in registry.types:
                    raise ConfigError([f"source type {cls.type!r} is provided by both "
                                       f"{registry.providers[cls.type]} and {provider}"])
                registry.types[cls.type] = cls
                registry.providers[cls.type] = provider
    return registry


def source_problems(sources: dict[str, Any], registry: SourceRegistry,
                    where: str = "<config>") -> list[str]:
    """'file: key.path: message' for each source whose settings its type's model refuses."""
    problems: list[str] = []
    for name, raw in sources.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            continue  # the schema and the cross-references say so (config.py)
        cls = registry.types.get(raw["type"])
        if cls is None:
            known = sorted(registry.types)
            problems.append(f"{where}: sources.{name}.type: unknown source type "
                            f"{raw['type']!r}; known: {', '.join(known) or 'none'}"
                            f"{did_you_mean(raw['type'], known)}")
            continue
        try:
            cls.Config.model_validate(raw)
        except ValidationError as exc:
            problems.extend(format_validation_error(where, exc, f"sources.{name}", cls.Config))
    return problems


def build_sources(settings: Settings, registry: SourceRegistry,
                  where: str = "<config>") -> list[Source[Any]]:
    """Instantiate configured sources, validating each against its type's config model."""
    problems = source_problems(settings.sources, registry, where)
    if problems:
        raise ConfigError(problems)
    sources: list[Source[Any]] = []
    for name, raw in settings.sources.items():
        cls = registry.types[raw["type"]]
        sources.append(cls(name, cls.Config.model_validate(raw)))
    return sources


def source_check(registry: SourceRegistry) -> SourceCheck:
    """The sources' own checks, for parse_settings to report with every other problem."""
    return lambda sources, where: source_problems(sources, registry, where)


def plugin_info(pm: pluggy.PluginManager, registry: SourceRegistry) -> list[dict[str, Any]]:
    """Plugins with their distribution version, hooks and source types."""
    versions = {ep.name: ep.dist.version if ep.dist else None
                for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    out = []
    for plugin in pm.get_plugins():
        name = plugin_name(pm, plugin)
        out.append({
            "name": name,
            "version": versions.get(name),
            "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or ()),
            "source_types": sorted(t for t, p in registry.providers.items() if p == name),
        })
    return sorted(out, key=lambda item: item["name"])
