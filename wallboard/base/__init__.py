"""Primitives every layer may use: the clock, durations, a bounded recent set, the GC pause.

Owns time as the code reads it (one clock type, real or virtual) and small helpers with no
knowledge of contact centers. Imports nothing from wallboard.
"""
