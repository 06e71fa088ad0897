"""The fold: live state and windowed counters, updated by one event at a time.

Owns the counter vector (`counters`), rolling and calendar windows (`windows`, `periods`), the
quantile sketch, live state (`state`), the per-leaf and per-agent windows, ticket and survey
handling, the aggregator that folds an event into all of them (`aggregate`) and the boundary
that counts and isolates a failing fold (`guard`). May import `wallboard.config`,
`wallboard.model` and `wallboard.base`; it knows no KPI formula, journal or server.
"""
