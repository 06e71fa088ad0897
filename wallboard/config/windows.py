"""Window names: rolling spans (15m, 1h, 90s) and calendar periods (today, yesterday, shift)."""

from __future__ import annotations

from dataclasses import dataclass

from wallboard.base.durations import format_duration, parse_duration

DEFAULT_WINDOWS = ("15m", "1h", "today")
BUCKET_WIDTH_S = 10
MAX_SPAN_S = 24 * 3600
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
    try:
        span = parse_duration(name)
    except ValueError:
        raise ValueError(f"unknown window {name!r}: use a span like 15m, 1h, 90s, or one of "
                         f"{', '.join(CALENDAR_KINDS)}") from None
    if span != int(span) or not BUCKET_WIDTH_S <= span <= MAX_SPAN_S:
        raise ValueError(f"window {name!r}: a rolling span must be whole seconds between "
                         f"{format_duration(BUCKET_WIDTH_S)} and {format_duration(MAX_SPAN_S)}")
    return WindowSpec(name, "rolling", int(span))
