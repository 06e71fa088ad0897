"""`GET /api/report`: the interval report over the history, as JSON or CSV (admin token)."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from wallboard.ingest.historian import report_loaders
from wallboard.kpi.reporting import ReportError, parse_request, report, to_csv, to_table
from wallboard.server import keys
from wallboard.server.access import check_admin

ENDPOINT = "report"


async def api_report(request: web.Request) -> web.Response:
    """The report's rows: closed intervals from the store, open ones from the fold."""
    app = request.app
    if app[keys.ACCESS].config.enabled:
        check_admin(request, ENDPOINT)
    settings, journal, historian = app[keys.SETTINGS], app[keys.JOURNAL], app[keys.HISTORIAN]
    if journal is None or historian is None:
        raise web.HTTPNotFound(text="reports read the history, kept in the journal: "
                                    "journal.enabled is false")
    agg = app[keys.AGGREGATOR]
    params = {name: request.query.getall(name) for name in set(request.query.keys())}
    try:
        wanted, fmt = parse_request(params, settings, agg.clock())
    except ReportError as exc:
        historian.stats.reports["bad_request"] += 1
        raise web.HTTPBadRequest(text=f"GET /api/report: {exc}") from None
    historian.stats.reports["ok"] += 1
    pending = historian.pending()  # on the loop, where the fold is the only writer
    stats, queues = historian.stats, wanted.queues
    load, offered, days = report_loaders(journal, settings.site.timezone, stats, queues)
    doc = await asyncio.to_thread(report, load, wanted, settings, pending, offered, days)
    headers = {"Cache-Control": "no-store"}
    if fmt == "csv":
        name = f"wallboard-report-{wanted.first}-{wanted.last}-{wanted.interval}.csv"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(body=to_csv(doc["rows"]), content_type="text/csv", charset="utf-8",
                            headers=headers)
    if fmt == "table":
        return web.Response(text=to_table(doc["rows"]), headers=headers)
    return web.Response(body=orjson.dumps(doc), content_type="application/json",
                        headers=headers)


def report_routes() -> list[web.AbstractRouteDef]:
    """The report API's routes."""
    return [web.get("/api/report", api_report)]
