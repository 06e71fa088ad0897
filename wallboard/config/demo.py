"""The embedded demo configuration, read from the packaged wallboard/config/demo.yaml."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml


def demo_config() -> dict[str, Any]:
    """The demo's configuration as a mapping, validated later like any file."""
    text = files("wallboard.config").joinpath("demo.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    assert isinstance(raw, dict), "wallboard/config/demo.yaml must be a mapping"
    return raw
