"""The server: the aiohttp app, its routes, the hub, boards, access and the exporter.

Owns the app factory and its typed keys, the plugin manager, the hub that pushes snapshot
deltas to websocket clients, boards and their access tokens, announcements, the Prometheus
exporter, connection limits and the config watcher. May import every layer below it; the
only layers above are `wallboard.replay` and the command line.
"""
