"""Waits judged per queue: the worst ratio of a wait to its queue's service-level threshold.

Downstream of the KPIs, like History: it reads each built snapshot and adds
`<scope>.<window>.threshold_ratio.<kpi>` beside the waits. A site-wide "longest wait" then
turns red for a call waiting 45 s against 20 s, not for an e-mail waiting 10 minutes against
an hour, whatever the mix of channels behind the one number shown.
"""

from __future__ import annotations

import math
from typing import Any

# Waits a contact's queue promises to keep under its service-level threshold.
WAIT_KPIS = ("oldest_wait_s", "asa_s", "wait_p50_s", "wait_p90_s")
# Tile levels on that ratio when a tile sets no thresholds of its own: amber once the wait
# passes the queue's threshold (that contact already misses the service level), red at twice.
RATIO_WARN, RATIO_CRIT = 1.0, 2.0


def _worst(into: dict[str, Any] | None, window: str, kpi: str, ratio: float) -> None:
    block = into.get(window) if isinstance(into, dict) else None
    if not isinstance(block, dict):
        return  # a scope without this window (a channel with no queue of its own yet)
    ratios = block.setdefault("threshold_ratio", {})
    old = ratios.get(kpi)
    if old is None or ratio > old:
        ratios[kpi] = ratio


def add_threshold_ratios(tree: dict[str, Any]) -> None:
    """Add each queue's wait/threshold ratios, and the worst per channel and for the site."""
    queues = tree.get("queues") or {}
    channels = tree.get("channels") or {}
    total = tree.get("total")
    for block in queues.values():
        threshold = block.get("sl_threshold_s")
        if not isinstance(threshold, int | float) or threshold <= 0:
            continue
        channel = channels.get(str(block.get("channel")))
        for window, values in block.items():
            if not isinstance(values, dict) or window == "legal":
                continue
            for kpi in WAIT_KPIS:
                value = values.get(kpi)
                if isinstance(value, bool) or not isinstance(value, int | float) \
                        or not math.isfinite(value):
                    continue
                ratio = round(value / threshold, 4)
                for target in (block, channel, total):
                    _worst(target, window, kpi, ratio)
