"""KPIs: formulas over the fold's counters, Erlang staffing, the snapshot and its history.

Owns the contact-center maths (`formulas`, `erlang`, `staffing`), the snapshot built from the
aggregator (`snapshot`), the sampled series and trends (`history`) and wait ratios
(`waitratio`). Reads the fold; never changes it. May import `wallboard.fold`,
`wallboard.config`, `wallboard.model` and `wallboard.base`.
"""
