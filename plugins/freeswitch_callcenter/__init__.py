"""The `freeswitch_callcenter` source: FreeSWITCH mod_callcenter over the event socket."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .source import FreeswitchCallcenterConfig, FreeswitchCallcenterSource

__all__ = ["FreeswitchCallcenterConfig", "FreeswitchCallcenterSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """The freeswitch_callcenter source type."""
    return [FreeswitchCallcenterSource]
