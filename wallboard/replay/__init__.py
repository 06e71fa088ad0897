"""Replay: a recorded day of events through the real server at any speed.

Owns `wallboard replay` (`player`) and the readers of its input files (`input`). Sits on top
of the server it starts; only the command line imports it.
"""
