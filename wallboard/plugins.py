"""Plugin manager factory and the source-type registry built from hook results."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field

import pluggy
from pydantic import ValidationError

from wallboard import hookspecs
from wallboard.config import ConfigError, Settings, format_validation_error
from wallboard.sources import Source

ENTRY_POINT_GROUP = "wallboard"


def make_plugin_manager() -> pluggy.PluginManager:
    """Build a plugin manager with every plugin of the `wallboard` entry-point group."""
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None:
            continue  # the same distribution seen twice on sys.path
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError([f"plugin {ep.name} ({ep.value}) failed to load: "
                               f"{type(exc).__name__}: {exc}"]) from exc
        pm.register(plugin, name=ep.name)
    pm.check_pending()
    return pm


@dataclass
class SourceRegistry:
    """Source classes by type name, and which plugin provided each."""

    types: dict[str, type[Source]] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """The name a plugin was registered under."""
    return pm.get_name(plugin) or getattr(plugin, "__name__", repr(plugin))


def build_registry(pm: pluggy.PluginManager) -> SourceRegistry:
    """Collect source types from every plugin; two plugins may not claim one type name."""
    registry = SourceRegistry()
    for impl in pm.hook.register_source_types.get_hookimpls():
        provider = plugin_name(pm, impl.plugin)
        for cls in impl.function() or ():
            if cls.type in registry.types:
                raise ConfigError([f"source type {cls.type!r} is provided by both "
                                   f"{registry.providers[cls.type]} and {provider}"])
            registry.types[cls.type] = cls
            registry.providers[cls.type] = provider
    return registry


def build_sources(settings: Settings, registry: SourceRegistry,
                  where: str = "<config>") -> list[Source]:
    """Instantiate configured sources, validating each against its type's config model."""
    problems: list[str] = []
    sources: list[Source] = []
    for name, raw in settings.sources.items():
        cls = registry.types.get(raw["type"])
        if cls is None:
            known = ", ".join(sorted(registry.types)) or "none"
            problems.append(f"{where}: sources.{name}.type: unknown source type "
                            f"{raw['type']!r}; known: {known}")
            continue
        try:
            config = cls.Config.model_validate(raw)
        except ValidationError as exc:
            problems.extend(format_validation_error(where, exc, f"sources.{name}"))
            continue
        sources.append(cls(name, config))
    if problems:
        raise ConfigError(problems)
    return sources


def plugin_info(pm: pluggy.PluginManager, registry: SourceRegistry) -> list[dict]:
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
