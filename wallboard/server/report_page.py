"""The /report page: a day's intervals per queue as a table and a chart, read from /api/report."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from wallboard.server import keys
from wallboard.server.locales import language, messages, shipped

# Abandon-rate colours of the report's table (no per-queue target exists for it).
ABANDON_WARN = 0.05
ABANDON_CRIT = 0.10
# SL is amber from the queue's target down to this many points below it, red under that.
SL_WARN_BAND = 0.10


def report_locale(request: web.Request) -> str:
    """`?lang=` when it names a shipped catalogue, else the site's locale."""
    wanted = request.query.get("lang", "")
    if wanted and language(wanted) in shipped():
        return language(wanted)
    return request.app[keys.SETTINGS].site.locale


def site_today(timezone: str, now: float) -> str:
    """Today's date (YYYY-MM-DD) in the site's time zone."""
    return datetime.fromtimestamp(now, ZoneInfo(timezone)).date().isoformat()


def report_config(request: web.Request) -> dict[str, Any]:
    """What the page's script needs; no numbers: it fetches them with the admin token."""
    settings = request.app[keys.SETTINGS]
    locale = report_locale(request)
    return {
        "locale": locale,
        "messages": messages(locale),
        "timezone": settings.site.timezone,
        # The server's clock, not the browser's: a kiosk's clock may be off or in another zone.
        "today": site_today(settings.site.timezone, request.app[keys.AGGREGATOR].clock()),
        # Only whether to ask for the admin token: the page itself holds no secret.
        "access": request.app[keys.ACCESS].config.enabled,
        "abandon_warn": ABANDON_WARN,
        "abandon_crit": ABANDON_CRIT,
        "sl_warn_band": SL_WARN_BAND,
    }
