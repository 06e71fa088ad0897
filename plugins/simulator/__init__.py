"""Bundled simulator source: a seeded contact-center simulation for demos and tests."""

from __future__ import annotations

from typing import Any

from wallboard.kit import Source, hookimpl

from .model import Simulation
from .source import SimQueueConfig, SimulatorConfig, SimulatorSource

__all__ = ["SimQueueConfig", "Simulation", "SimulatorConfig", "SimulatorSource"]


@hookimpl
def register_source_types() -> list[type[Source[Any]]]:
    """Provide the `simulator` source type."""
    return [SimulatorSource]
