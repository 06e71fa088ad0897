"""Typed keys for everything the app shares: no module-level singletons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy
from aiohttp import web
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from wallboard.cluster.lease import Cluster
    from wallboard.config.boards import PlaylistConfig
    from wallboard.config.settings import Settings
    from wallboard.fold.aggregate import Aggregator
    from wallboard.ingest.checkpointer import Checkpointer
    from wallboard.ingest.historian import Historian
    from wallboard.ingest.pipeline import Pipeline
    from wallboard.ingest.restore import Restored
    from wallboard.journal.interface import Journal
    from wallboard.kit.source import SourceRunner
    from wallboard.kpi.history import History
    from wallboard.server.access import Access
    from wallboard.server.announcements import Announcements
    from wallboard.server.configwatch import ConfigWatcher
    from wallboard.server.connections import ConnectionGuard
    from wallboard.server.editor import Editor
    from wallboard.server.forecasting import TodayForecast
    from wallboard.server.hub import Hub
    from wallboard.server.playlist_editor import PlaylistEditor
    from wallboard.server.plugins import SourceRegistry

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
PLUGIN_MANAGER: web.AppKey[pluggy.PluginManager] = web.AppKey("plugin_manager")
SOURCE_REGISTRY: web.AppKey[SourceRegistry] = web.AppKey("source_registry")
AGGREGATOR: web.AppKey[Aggregator] = web.AppKey("aggregator")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")
JOURNAL: web.AppKey[Journal | None] = web.AppKey("journal")  # None: journal.enabled is false
RESTORED: web.AppKey[Restored] = web.AppKey("restored")
CHECKPOINTS: web.AppKey[Checkpointer | None] = web.AppKey("checkpoints")  # None: no journal
HISTORIAN: web.AppKey[Historian | None] = web.AppKey("historian")  # None: no journal
# None: no journal, or no board shows a forecast tile.
FORECAST: web.AppKey[TodayForecast | None] = web.AppKey("forecast")
HUB: web.AppKey[Hub] = web.AppKey("hub")
RUNNERS: web.AppKey[dict[str, SourceRunner]] = web.AppKey("runners")
METRICS_REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry")
BOARDS: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("boards")
ACCESS: web.AppKey[Access] = web.AppKey("access")
CONFIG: web.AppKey[ConfigWatcher] = web.AppKey("config")  # the config file and its reloads
ANNOUNCEMENTS: web.AppKey[Announcements] = web.AppKey("announcements")
HISTORY: web.AppKey[History] = web.AppKey("history")
BUILD: web.AppKey[str] = web.AppKey("build")  # version + a hash of the page's files
CLUSTER: web.AppKey[Cluster | None] = web.AppKey("cluster")  # None: one node (not redis)
# Open connections, their cap and deadlines; attached to the server by `wallboard serve`.
CONNECTIONS: web.AppKey[ConnectionGuard] = web.AppKey("connections")
EDITOR: web.AppKey[Editor] = web.AppKey("editor")  # the board editor and its store
# The playlists /play shows: the config's, then the editor's (a save replaces one at once).
PLAYLISTS: web.AppKey[dict[str, PlaylistConfig]] = web.AppKey("playlists")
PLAYLIST_EDITOR: web.AppKey[PlaylistEditor] = web.AppKey("playlist_editor")
