"""create_app(): builds the pipeline, hub and sources, and stores them under typed AppKeys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import aiohttp
import pluggy
from aiohttp import web
from prometheus_client import CollectorRegistry

from wallboard import __version__
from wallboard.cluster.lease import Cluster, ClusterCollector
from wallboard.config.settings import Settings
from wallboard.config.store_playlists import PlaylistStore
from wallboard.fold.aggregate import Aggregator
from wallboard.ingest.checkpointer import Checkpointer
from wallboard.ingest.historian import Historian
from wallboard.ingest.pipeline import Pipeline
from wallboard.ingest.restore import Restored, prune_forever, restore
from wallboard.journal.interface import Journal, JournalStatus, make_journal
from wallboard.kit.ingest import INGEST, Ingest
from wallboard.kit.source import Emit, SourceRunner
from wallboard.kpi.history import History
from wallboard.kpi.snapshot import SnapshotBuilder
from wallboard.kpi.waitratio import RatioNeed, add_threshold_ratios
from wallboard.model.events import Event, EventError
from wallboard.server import keys
from wallboard.server.access import Access, AccessCollector, client_scope
from wallboard.server.admin import admin_routes, build_id
from wallboard.server.announcements import Announcements
from wallboard.server.boards import history_keys, needs_forecast, ratio_needs, resolve_boards
from wallboard.server.caches import CacheCollector
from wallboard.server.checkpoints import CheckpointCollector
from wallboard.server.configwatch import ConfigCollector, ConfigWatcher
from wallboard.server.connections import ConnectionCollector, ConnectionGuard
from wallboard.server.editor import Editor, EditorCollector, store_for
from wallboard.server.editor_api import REASONS, editor_routes
from wallboard.server.exporter import WallboardCollector
from wallboard.server.forecasting import ForecastCollector, TodayForecast
from wallboard.server.historymetrics import HistoryCollector
from wallboard.server.hub import Hub
from wallboard.server.people import add_people
from wallboard.server.playlist_editor import PlaylistEditor
from wallboard.server.plugins import (
    build_registry,
    build_sources,
    make_plugin_manager,
    source_check,
)
from wallboard.server.reports import report_routes
from wallboard.server.routes import TEMPLATES, close_websockets, core_routes, make_templates

log = logging.getLogger(__name__)
# Per request to a vendor; a source may pass its own `timeout=` to fetch().
SOURCE_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


def _source_emit(pipeline: Pipeline, name: str,
                 fence: Callable[[], tuple[str, str] | None] = lambda: None) -> Emit:
    """The emit function a source's runner forwards to: validate, stamp the source, fold.

    `fence` gives the source's lease (key, holder) on a node among several.
    """

    def emit(item: Event | dict[str, Any]) -> None:
        try:
            # A connector's own Event passes the same checks as a dict (bounds included).
            item = (pipeline.check(item, name) if isinstance(item, Event)
                    else pipeline.parse(item, name))
            pipeline.ingest(item, fence())
        except EventError as exc:
            # Counted by the pipeline; one bad event never stops the source.
            log.debug("source %s: rejected event: %s", name, exc)

    return emit


def _tree(builder: SnapshotBuilder, runners: dict[str, SourceRunner],
          journal: JournalStatus | None, history: History,
          announcements: Announcements, build: str,
          boards: dict[str, dict[str, Any]], ratios: Collection[RatioNeed],
          forecast: TodayForecast | None,
          layouts: Callable[[], dict[str, int]]) -> dict[str, Any]:
    tree = builder.build(builder.agg.advanced_to)  # the time the hub's tick moved to
    add_threshold_ratios(tree, ratios)
    now = tree["meta"]["ts"]
    if forecast is not None:
        try:
            forecast.add_to(tree, now)
        except Exception as exc:  # the forecast tiles show "–"; the rest of the board goes on
            builder.agg.errors.record("snapshot", exc, what="today's forecast")
    tree["meta"]["build"] = build
    history.observe(tree, now)
    tree["announcements"] = announcements.by_board(now, boards)
    tree["layouts"] = layouts()  # each board's revision: a TV redraws when the editor saves
    try:
        add_people(tree, boards, builder.agg.state.agents, builder.agg.settings)
    except Exception as exc:  # the agent tiles show nothing; the rest of the board goes on
        builder.agg.errors.record("snapshot", exc, what="agent tiles")
    tree["meta"]["journal"] = journal.state if journal else "off"
    tree["meta"]["journal_error"] = journal.error if journal else None
    tree["sources"] = {
        name: {"status": r.status.status, "last_error": r.status.last_error,
               "last_event_ts": r.status.last_event_ts, "events": r.status.events,
               "lag_s": r.source.lag_s}
        for name, r in runners.items()
    }
    return tree


async def _run_journal(app: web.Application) -> AsyncIterator[None]:
    """Open the journal, fold it back, then accept appends; raises JournalError on start."""
    journal = app[keys.JOURNAL]
    if journal is None:
        yield
        return
    journal.open()
    try:
        pipeline, checkpointer = app[keys.PIPELINE], app[keys.CHECKPOINTS]
        restore(journal, pipeline, pipeline.aggregator.clock(), app[keys.RESTORED], checkpointer)
        journal.start()
        historian = app[keys.HISTORIAN]
        assert historian is not None  # made with the journal
        await historian.flush(replace=False)  # what the replay closed: only where missing
        tasks = [asyncio.create_task(
            prune_forever(journal, app[keys.SETTINGS], pipeline.aggregator.clock),
            name="journal-prune"),
            asyncio.create_task(historian.run_forever(), name="history"),
            asyncio.create_task(historian.catch_up(), name="history-rollups")]
        if checkpointer is not None:
            tasks.append(asyncio.create_task(checkpointer.run_forever(), name="checkpoint"))
        forecast = app[keys.FORECAST]
        if forecast is not None:  # read at once, off the loop: the boards show it when ready
            tasks.append(asyncio.create_task(forecast.run_forever(), name="forecast"))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await historian.flush()
        if checkpointer is not None:  # sources and requests have stopped: the last state
            await checkpointer.save()
    finally:
        await journal.close()


async def _run_hub(app: web.Application) -> AsyncIterator[None]:
    hub = app[keys.HUB]
    task = asyncio.create_task(hub.run(), name="hub")
    yield
    hub.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _watch_config(app: web.Application) -> AsyncIterator[None]:
    """Re-read the config file when it changes; cut TVs that lost access."""
    access, hub, watcher = app[keys.ACCESS], app[keys.HUB], app[keys.CONFIG]

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            if not await watcher.refresh():
                continue
            # First every TV's new access, without awaiting: a flush in between must send
            # no unscoped delta to a TV now scoped, nor any delta to a revoked one.
            revoked = []
            for client in list(hub.clients):
                if not access.board_ok(client.board, client.token):
                    hub.clients.discard(client)  # its handler's hub.remove ends its sender
                    revoked.append(client)
                    continue
                # Access switched on (or off): a TV that stays gets its board's scope now.
                scope = client_scope(app, client.board)
                if client.scope != scope:
                    client.scope = scope
                    client.resync()
            if revoked:
                log.info("access revoked: closing %d TV(s)", len(revoked))
                # At once: each close waits for its TV's reply (or the close timeout).
                await asyncio.gather(*(c.ws.close(code=4403, message=b"access revoked")
                                       for c in revoked), return_exceptions=True)

    task = asyncio.create_task(watch(), name="config-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _republish(app: web.Application, board: str) -> None:
    """A board saved in the editor: its TVs get its new scope, then the revision's delta."""
    hub = app[keys.HUB]
    gone = []
    for client in list(hub.clients):
        if client.board != board:
            continue
        if board not in app[keys.BOARDS]:  # deleted or renamed: nothing left to show
            hub.clients.discard(client)
            gone.append(client)
            continue
        scope = client_scope(app, board)
        if client.scope != scope:
            client.scope = scope
            client.resync()
    editor = app[keys.EDITOR]
    for client in gone:  # kept until done: a task nobody holds may be collected mid-way
        task = asyncio.ensure_future(client.ws.close(code=4404, message=b"board deleted"))
        editor.closing.add(task)
        task.add_done_callback(editor.closing.discard)
    hub.prune()  # the board's old scope: its cached encodings would stay for good
    hub.mark_dirty()


async def _run_sources(app: web.Application) -> AsyncIterator[None]:
    runners = app[keys.RUNNERS]
    # One HTTP connection pool for every source, injected before they start, closed after.
    http = aiohttp.ClientSession(timeout=SOURCE_HTTP_TIMEOUT,
                                 headers={"User-Agent": f"wallboard/{__version__}"})
    for runner in runners.values():
        runner.source.http = http
    cluster = app[keys.CLUSTER]
    tasks = []
    for name, runner in runners.items():
        if cluster is not None and not runner.source.every_node:
            # One node at a time runs it: the one holding its lease.
            tasks.append(asyncio.create_task(cluster.hold(runner, runner.run),
                                             name=f"lease:{name}"))
        else:
            tasks.append(asyncio.create_task(runner.run(), name=f"source:{name}"))
    if cluster is not None:
        tasks.append(asyncio.create_task(cluster.share(runners), name="source-status"))

    async def watch_staleness() -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            for runner in runners.values():
                runner.check_stale(now)

    tasks.append(asyncio.create_task(watch_staleness(), name="source-staleness"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.close()


def create_app(settings: Settings, *, plugin_manager: pluggy.PluginManager | None = None,
               clock: Callable[[], float] = time.time,
               config_path: str | None = None) -> web.Application:
    """Build the application; raises ConfigError when sources are misconfigured.

    `config_path` is the file the settings came from: it is re-read on change (configwatch.py).
    """
    pm = plugin_manager or make_plugin_manager()
    registry = build_registry(pm)
    sources = build_sources(settings, registry)

    guard = ConnectionGuard(settings.server)
    # handler_args reach aiohttp's RequestHandler: keep-alive idle time between requests.
    app = web.Application(client_max_size=settings.server.max_body_bytes,
                          middlewares=[guard.middleware],
                          handler_args={"keepalive_timeout": settings.server.keepalive_timeout_s})
    aggregator = Aggregator(settings, clock)
    runners: dict[str, SourceRunner] = {}
    builder = SnapshotBuilder(aggregator)
    journal: Journal | None = make_journal(settings.journal) if settings.journal.enabled else None
    status = journal.status if journal else None
    restored = Restored()
    boards = resolve_boards(settings)
    ratios = set(ratio_needs(boards))  # computed on each flush: only those some tile reads
    history = History(history_keys(boards), settings.windows, settings.server.history_step_s)
    build = build_id()
    announcements = Announcements(clock, lambda: hub.mark_dirty())
    hub = Hub(lambda: _tree(builder, runners, status, history, announcements, build,
                                boards, ratios, forecast, lambda: editor.layouts()),
              push_interval_s=settings.server.push_interval_ms / 1000,
              send_timeout_s=settings.server.send_timeout_s, errors=aggregator.errors,
              advance=lambda: aggregator.advance(aggregator.clock()))
    pipeline = Pipeline(aggregator, on_change=hub.mark_dirty, journal=journal,
                        dedupe_size=settings.server.dedupe_cache_ids)
    checkpointer = Checkpointer(journal, pipeline, history) if journal is not None else None
    historian = Historian(journal, aggregator, clock) if journal is not None else None
    # Only when some board shows it, and from the history: none without the journal.
    forecast = (TodayForecast(settings, journal, historian.stats, clock)
                if journal is not None and historian is not None and needs_forecast(boards)
                else None)
    for item in settings.announcements:  # configured ones: shown from the start
        announcements.post(item.model_dump(), set(boards))
    cluster: Cluster | None = None
    if forecast is not None:
        forecast.on_change = hub.mark_dirty
    if journal is not None:
        journal.on_change = hub.mark_dirty  # "journal down" reaches the boards at once
        shared = journal.shared()
        if shared is not None:
            shared.deliver = pipeline.apply  # every node folds the stream, in its order
            cluster = Cluster(shared)
    for source in sources:
        fence = (cluster.fence(source.name) if cluster is not None and not source.every_node
                 else lambda: None)
        # Events are stored under the source's id_scope, if any (kit/ingest.stamp does the
        # same for events that reach a source's routes).
        runner = SourceRunner(source, _source_emit(pipeline, source.config.id_scope
                                                   or source.name, fence), clock=clock)
        runner.on_change = hub.mark_dirty
        runners[source.name] = runner

    metrics_registry = CollectorRegistry()
    exporter = WallboardCollector(
        aggregator, pipeline, runners, hub.current,
        clients=lambda: len(hub.clients), dropped=lambda: hub.dropped,
        journal=status, restored=restored)
    metrics_registry.register(exporter)
    metrics_registry.register(CacheCollector(settings, hub, pipeline, aggregator, history,
                                             lambda: len(exporter.prefixes.known)))
    playlists = dict(settings.playlists)  # and the store's, once loaded
    access = Access(settings.access, config_path, settings.boards, playlists)
    metrics_registry.register(AccessCollector(access))
    editor = Editor(store_for(settings), settings, boards, access, history, ratios,
                    forecast=forecast is not None)
    editor.load()  # the boards store's boards go live with the config's
    editor.on_publish = lambda board: _republish(app, board)
    playlist_editor = PlaylistEditor(PlaylistStore(editor.store.directory / "playlists"),
                                     editor, playlists, access)
    playlist_editor.load()  # after the boards: a playlist names boards of both
    metrics_registry.register(EditorCollector(editor, REASONS))
    metrics_registry.register(ConnectionCollector(guard))
    if checkpointer is not None:
        metrics_registry.register(CheckpointCollector(checkpointer.stats))
    if historian is not None:
        metrics_registry.register(HistoryCollector(historian))
    if forecast is not None:
        metrics_registry.register(ForecastCollector(forecast))
    watcher = ConfigWatcher(config_path, settings, access, clock=clock,
                            source_check=source_check(registry))
    metrics_registry.register(ConfigCollector(watcher))
    if cluster is not None:
        metrics_registry.register(ClusterCollector(cluster))

    app[keys.SETTINGS] = settings
    app[keys.PLUGIN_MANAGER] = pm
    app[keys.SOURCE_REGISTRY] = registry
    app[keys.AGGREGATOR] = aggregator
    app[keys.PIPELINE] = pipeline
    app[keys.JOURNAL] = journal
    app[keys.RESTORED] = restored
    app[keys.CHECKPOINTS] = checkpointer
    app[keys.HISTORIAN] = historian
    app[keys.FORECAST] = forecast
    app[keys.HUB] = hub
    app[keys.RUNNERS] = runners
    app[INGEST] = Ingest(pipeline, runners)  # the kit's API for HTTP-fed plugins
    app[keys.METRICS_REGISTRY] = metrics_registry
    app[keys.CLUSTER] = cluster
    app[keys.CONNECTIONS] = guard
    app[keys.BOARDS] = boards
    app[keys.EDITOR] = editor
    app[keys.PLAYLISTS] = playlists
    app[keys.PLAYLIST_EDITOR] = playlist_editor
    app[keys.ACCESS] = access
    app[keys.CONFIG] = watcher
    app[keys.ANNOUNCEMENTS] = announcements
    app[keys.HISTORY] = history
    app[keys.BUILD] = build
    app[TEMPLATES] = make_templates()

    app.add_routes(core_routes())
    app.add_routes(admin_routes())
    app.add_routes(editor_routes())
    app.add_routes(report_routes())
    for routes in pm.hook.register_routes():
        app.add_routes(routes or [])
    # The journal is folded back before the hub publishes and before sources resume.
    app.cleanup_ctx.append(_run_journal)
    app.cleanup_ctx.append(_run_hub)
    app.cleanup_ctx.append(_run_sources)
    app.cleanup_ctx.append(_watch_config)
    app.on_shutdown.append(close_websockets)
    return app
