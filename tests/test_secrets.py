"""Config secrets are pydantic Secrets: every secret-named field of the core and the bundled
sources, masked in reprs and dumps, still read from a plain YAML string, and never echoed in
a configuration error."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from tests.conftest import base_config
from wallboard.config.boards import AccessConfig
from wallboard.config.settings import ConfigError, parse_settings
from wallboard.kit.source import SourceConfig
from wallboard.server.plugins import (
    build_registry,
    build_sources,
    make_plugin_manager,
    source_check,
)

# Field names that hold a credential; `token_header` (a header's name) and the like do not.
SECRET_NAME = re.compile(r"(^|_)(token|secret|password|key|keys)$")
ADMIN = "admin-token-0123456789"
TV = "tv-token-0123456789abc"
SIGNING = "signing-secret-0123456789"


def _bundled_configs() -> list[type[BaseModel]]:
    registry = build_registry(make_plugin_manager({"WALLBOARD_PLUGINS": ""}))
    found: list[type[BaseModel]] = []
    for cls in registry.types.values():
        for model in cls.Config.__mro__:
            if (isinstance(model, type) and issubclass(model, SourceConfig)
                    and model not in found):
                found.append(model)
    return found


def test_every_secret_named_field_is_a_secret() -> None:
    models = [AccessConfig, *_bundled_configs()]
    checked, plain = [], []
    for model in models:
        for name, info in model.model_fields.items():
            if SECRET_NAME.search(name):
                checked.append(f"{model.__name__}.{name}")
                if "Secret" not in repr(info.annotation):
                    plain.append(f"{model.__name__}.{name}")
    assert plain == []
    # The bundled sources do have secrets: the check above is not vacuous.
    assert {"AccessConfig.admin_token", "WebhookConfig.token", "WebhookConfig.secret",
            "TwilioTaskRouterConfig.shared_keys", "ZendeskConfig.webhook_secret"} <= set(checked)


def test_secrets_are_read_from_plain_strings_and_never_shown() -> None:
    config = base_config(
        access={"enabled": True, "admin_token": ADMIN, "boards": {"main": [TV]}},
        boards={"main": {"tiles": [{"kpi": "waiting", "queue": "sales"}]}},
        sources={"hook": {"type": "webhook", "token": "hook-token-0123", "secret": SIGNING}})
    registry = build_registry(make_plugin_manager({"WALLBOARD_PLUGINS": "webhook"}))
    settings = parse_settings(config, "<test>", source_check(registry))
    access = settings.access
    assert access.admin_token is not None
    assert access.admin_token.get_secret_value() == ADMIN
    assert [t.get_secret_value() for t in access.boards["main"]] == [TV]
    (source,) = build_sources(settings, registry)
    shown = [repr(access), str(access), access.model_dump_json(),
             repr(source.config), source.config.model_dump_json()]
    for text in shown:
        for secret in (ADMIN, TV, SIGNING, "hook-token-0123"):
            assert secret not in text


@pytest.mark.parametrize("source", [
    {"type": "webhook", "token": "tok-3"},
    {"type": "webhook", "token": "hook-token-0123", "secret": "sig-secret-7"},
])
def test_a_refused_secret_is_not_echoed(source: dict[str, str]) -> None:
    registry = build_registry(make_plugin_manager({"WALLBOARD_PLUGINS": "webhook"}))
    with pytest.raises(ConfigError) as caught:
        parse_settings(base_config(sources={"hook": source}), "<test>", source_check(registry))
    text = str(caught.value)
    assert "should have at least" in text
    for value in source.values():
        if value != "webhook":
            assert value not in text


def test_a_refused_journal_url_does_not_show_its_password() -> None:
    config = base_config(journal={"backend": "redis", "url": "http://:hunter2-pw@redis.example"})
    with pytest.raises(ConfigError) as caught:
        parse_settings(config, "<test>")
    text = str(caught.value)
    assert "'http://***@redis.example' is not a redis://" in text
    assert "hunter2" not in text


def test_the_settings_repr_does_not_show_a_source_secret() -> None:
    settings = parse_settings(base_config(), "<test>")
    token = settings.sources["hook"]["token"]
    assert len(token) >= 8 and token not in repr(settings) and token not in str(settings)
    assert "queues=" in repr(settings)  # the rest is still shown
