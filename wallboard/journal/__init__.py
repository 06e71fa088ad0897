"""The journal: every accepted event stored before it is acknowledged, read back at start.

Owns the `Journal` protocol and its status (`interface`), the SQLite backend and its writer
thread, the Redis stream backend (append scripts, reading back), quarantine marks and the
`wallboard journal` command. May import `wallboard.fold` (only its error reasons),
`wallboard.config`, `wallboard.model` and `wallboard.base`; it never folds.
"""
