"""The one duration format, parsed and printed: 90s, 15m, 1h, 2d, 1.5h, or bare seconds."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")


def parse_duration(text: str) -> float:
    """Seconds from a number and an optional unit (s, m, h, d); ValueError when unreadable."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h, 2d)")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The shortest spelling `parse_duration` reads back: 900 -> 15m, 5400 -> 90m, 1.5 -> 1.5s."""
    for unit in ("d", "h", "m"):
        count = seconds / UNITS[unit]
        if seconds and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"
