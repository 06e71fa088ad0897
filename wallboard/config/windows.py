"""Window names: rolling spans (15m, 1h, 90s) and calendar periods (today, yesterday, shift)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_WINDOWS = ("15m", "1h", "today")
BUCKET_WIDTH_S = 10
_ROLLING = re.compile(r"^(\d+)(s|m|h)$")
_UNITS = {"s": 1, "m": 60, "h": 3600}
CALENDAR_KINDS = ("today", "yesterday", "shift")


@dataclass(frozen=True)
class WindowSpec:
    """A window by name: rolling (a span in seconds) or calendar (today, yesterday, shift)."""

    name: str
    kind: str
    span_s: int = 0


def parse_window(name: str) -> WindowSpec:
    """Parse '15m', '1h', '90s', 'today', 'yesterday' or 'shift'; ValueError otherwise."""
    if name in CALENDAR_KINDS:
        return WindowSpec(name, name)
    match = _ROLLING.match(name)
    if not match:
        raise ValueError(f"unknown window {name!r}: use a span like 15m, 1h, 90s, or one of "
                         f"{', '.join(CALENDAR_KINDS)}")
    span = int(match.group(1)) * _UNITS[match.group(2)]
    if not BUCKET_WIDTH_S <= span <= 24 * 3600:
        raise ValueError(f"window {name!r}: a rolling span must lie between 10s and 24h")
    return WindowSpec(name, "rolling", span)
