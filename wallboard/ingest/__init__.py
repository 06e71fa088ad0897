"""Ingest: the path from a validated event to the fold, through the journal.

Owns the pipeline (validate once, de-duplicate, append, fold once durable, count refusals),
the start-up restore that folds the journal back, and checkpoints of the fold's state that let
a start fold only what came after them. May import `wallboard.journal`, `wallboard.kpi`,
`wallboard.fold`, `wallboard.config`, `wallboard.model`, `wallboard.base`.
"""
