"""Waits judged per queue: the worst ratio of a wait to its queue's service-level threshold.

Downstream of the KPIs, like History: it reads each built snapshot and adds
`<scope>.<window>.threshold_ratio.<kpi>` beside the waits. A site-wide "longest wait" then
turns red for a call waiting 45 s against 20 s, not for an e-mail waiting 10 minutes against
an hour, whatever the mix of channels behind the one number shown.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

# Waits a contact's queue promises to keep under its service-level threshold.
WAIT_KPIS = ("oldest_wait_s", "asa_s", "wait_p50_s", "wait_p90_s")
# Tile levels on that ratio when a tile sets no thresholds of its own: amber once the wait
# passes the queue's threshold (that contact already misses the service level), red at twice.
RATIO_WARN, RATIO_CRIT = 1.0, 2.0
# A ratio some board reads: (scope path, window, kpi), e.g. (("channels", "email"), "1h", "asa_s").
RatioNeed = tuple[tuple[str, ...], str, str]


def _worst(into: dict[str, Any] | None, window: str, kpi: str, ratio: float) -> None:
    block = into.get(window) if isinstance(into, dict) else None
    if not isinstance(block, dict):
        return  # a scope without this window (a channel with no queue of its own yet)
    ratios = block.setdefault("threshold_ratio", {})
    old = ratios.get(kpi)
    if old is None or ratio > old:
        ratios[kpi] = ratio


def add_threshold_ratios(tree: dict[str, Any], needs: Collection[RatioNeed]) -> None:
    """Add the ratios some board reads: a queue's own, or the worst of a channel's or the site's.

    Only `needs` are computed: every wait x window x scope would be about a tenth more
    snapshot keys flattened, diffed and sent on every flush, for no reader.
    """
    wanted: dict[tuple[str, ...], set[tuple[str, str]]] = {}
    for path, window, kpi in needs:
        wanted.setdefault(path, set()).add((window, kpi))
    if not wanted:
        return
    channels = tree.get("channels") or {}
    total = tree.get("total")
    for name, block in (tree.get("queues") or {}).items():
        threshold = block.get("sl_threshold_s")
        if not isinstance(threshold, int | float) or threshold <= 0:
            continue
        channel = str(block.get("channel"))
        for path, target in ((("queues", name), block), (("channels", channel),
                                                         channels.get(channel)),
                             (("total",), total)):
            for window, kpi in wanted.get(path, ()):
                values = block.get(window)
                value = values.get(kpi) if isinstance(values, dict) else None
                if isinstance(value, bool) or not isinstance(value, int | float) \
                        or not math.isfinite(value):
                    continue
                _worst(target, window, kpi, round(value / threshold, 4))
