"""Plugin manager: allow-list, hook tracing, /api/plugins, and checks on what plugins return."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import ClassVar

import aiohttp
import pluggy
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from wallboard_plugins import webhook

from tests.conftest import base_config
from wallboard import hookimpl
from wallboard.config.settings import ConfigError, parse_settings
from wallboard.kit import hookspecs
from wallboard.kit.source import Emit, PushSource
from wallboard.server.app import create_app
from wallboard.server.plugins import build_registry, make_plugin_manager


def test_allow_list_loads_only_the_named_plugins() -> None:
    pm = make_plugin_manager({"WALLBOARD_PLUGINS": " webhook "})
    assert [pm.get_name(p) for p in pm.get_plugins()] == ["webhook"]
    assert sorted(build_registry(pm).types) == ["webhook"]
    everything = make_plugin_manager({"WALLBOARD_PLUGINS": ""})  # empty: no allow-list
    assert {"simulator", "webhook"} <= {everything.get_name(p) for p in everything.get_plugins()}


def test_allow_list_naming_an_unknown_plugin_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        make_plugin_manager({"WALLBOARD_PLUGINS": "webhook,acme_pbx"})
    assert info.value.problems[0].startswith(
        "WALLBOARD_PLUGINS: unknown plugin 'acme_pbx'; installed: ")
    installed = info.value.problems[0].partition("installed: ")[2].split(", ")
    assert installed == sorted(installed) and {"simulator", "webhook"} <= set(installed)


def test_serve_with_an_unknown_allowed_plugin_exits_with_the_error() -> None:
    result = subprocess.run([sys.executable, "-m", "wallboard", "serve", "--port", "0"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "WALLBOARD_PLUGINS": "nope"})
    assert result.returncode == 2
    assert "error: WALLBOARD_PLUGINS: unknown plugin 'nope'" in result.stderr


def test_trace_switch_logs_each_hook_call_with_its_plugins_and_result(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wallboard.hooks")
    pm = make_plugin_manager({"WALLBOARD_PLUGINS": "webhook", "WALLBOARD_TRACE_HOOKS": "1"})
    build_registry(pm)
    pm.hook.register_routes()
    lines = [r.getMessage() for r in caplog.records if r.name == "wallboard.hooks"]
    assert "hook register_source_types() calls: webhook" in lines
    assert any(line.startswith("hook register_source_types returned [[<class "
                               "'wallboard_plugins.webhook.WebhookSource'>]]") for line in lines)
    assert "hook register_routes() calls: webhook" in lines
    quiet = make_plugin_manager({"WALLBOARD_PLUGINS": "webhook"})
    caplog.clear()
    build_registry(quiet)
    assert not [r for r in caplog.records if r.name == "wallboard.hooks"]


class NotASource:
    """Returned by a buggy plugin instead of a Source subclass."""


class BuggyPlugin:
    """Registers something that is not a source type."""

    @hookimpl
    def register_source_types(self) -> list:
        return [NotASource]


def test_a_plugin_returning_a_non_source_is_named_in_the_error() -> None:
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    pm.register(webhook, name="webhook")
    pm.register(BuggyPlugin(), name="buggy")
    with pytest.raises(ConfigError, match=r"plugin buggy: register_source_types returned "
                                          r"<class '.*NotASource'>, not a Source subclass"):
        build_registry(pm)


async def test_api_plugins_lists_plugins_versions_hooks_and_source_types(live_server) -> None:
    live = await live_server(base_config())
    plugins = {p["name"]: p for p in await live.get_json("/api/plugins")}
    assert plugins["webhook"] == {"name": "webhook", "version": "0.1.0",
                                  "hooks": ["register_routes", "register_source_types"],
                                  "source_types": ["webhook"]}
    assert plugins["simulator"]["source_types"] == ["simulator"]
    assert plugins["simulator"]["hooks"] == ["register_source_types"]


async def test_api_plugins_shows_only_the_allowed_plugins(live_server, monkeypatch) -> None:
    monkeypatch.setenv("WALLBOARD_PLUGINS", "webhook")
    live = await live_server(base_config())
    assert [p["name"] for p in await live.get_json("/api/plugins")] == ["webhook"]


class CrashingSource(PushSource):
    """A plugin bug: raises something that is not a SourceError."""

    type: ClassVar[str] = "crashing"

    async def run(self, emit: Emit) -> None:
        raise ZeroDivisionError("plugin bug")


class CrashingPlugin:
    """Provides the crashing source type."""

    @hookimpl
    def register_source_types(self) -> list:
        return [CrashingSource]


async def test_plugin_bugs_are_counted_per_source_in_metrics() -> None:
    pm = pluggy.PluginManager("wallboard")
    pm.add_hookspecs(hookspecs)
    pm.register(CrashingPlugin(), name="crashing")
    settings = parse_settings({"sources": {"bad": {"type": "crashing"}},
                               "journal": {"enabled": False}})
    server = TestServer(create_app(settings, plugin_manager=pm), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
            text = await resp.text()
    finally:
        await server.close()
    crashes = {s.labels["source"]: s.value for f in text_string_to_metric_families(text)
               for s in f.samples if s.name == "wallboard_source_crashes_total"}
    assert crashes["bad"] >= 1
