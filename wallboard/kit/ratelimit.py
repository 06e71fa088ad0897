"""Rate limiting for sources that call vendor APIs: a token bucket and `Retry-After`."""

from __future__ import annotations

import email.utils
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wallboard.base.clock import Clock

# A vendor asking us to wait longer than this is treated as "down for an hour", not obeyed
# blindly: a typo on their side must not park the source for a week.
MAX_RETRY_AFTER_S = 3600.0
_ROUNDING = 1e-9
# A shorter wait is none: at epoch-sized clock readings such a sleep does not move the clock.
_MIN_WAIT_S = 1e-6


class TokenBucket:
    """At most `rate_per_s` requests per second on average, in bursts of up to `burst`."""

    def __init__(self, rate_per_s: float, burst: int, clock: Clock) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.tokens = float(burst)
        self.stamp = clock.monotonic()
        self.not_before = -math.inf  # set by defer(): a Retry-After from the vendor

    def _refill(self) -> float:
        now = self.clock.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return now

    def wait_s(self) -> float:
        """How long acquire() would wait now (0 when a token is free)."""
        now = self._refill()
        # Refills summed over many sleeps fall short of 1.0 by rounding: that is a token.
        missing = max(0.0, 1.0 - self.tokens - _ROUNDING) / self.rate
        if missing < _MIN_WAIT_S:
            missing = 0.0
        return max(missing, self.not_before - now)

    async def acquire(self) -> None:
        """Take one token, sleeping on the source's clock until one is free."""
        while (delay := self.wait_s()) > 0:
            await self.clock.sleep(delay)
        self.tokens = max(0.0, self.tokens - 1.0)

    def defer(self, seconds: float) -> None:
        """Hand out no token for `seconds` (the vendor said Retry-After)."""
        self.not_before = max(self.not_before, self.clock.monotonic() + seconds)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None  # HTTP-dates are always GMT; a date without a zone is not one
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
