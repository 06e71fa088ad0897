"""The embedded demo configuration, read from the packaged wallboard/demo.yaml."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml


def demo_config() -> dict[str, Any]:
    """The demo's configuration as a mapping, validated later like any file."""
    raw = yaml.safe_load(files("wallboard").joinpath("demo.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict), "wallboard/demo.yaml must be a mapping"
    return raw
