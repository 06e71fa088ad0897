"""One (queue, channel) leaf of the fold, the events that make an agent known, the limit errors."""

from __future__ import annotations

from wallboard.config.settings import QueueConfig
from wallboard.fold.outcome import expiry_counts
from wallboard.fold.windows import WindowSet
from wallboard.model import events as ev


class QueueLimitError(Exception):
    """More distinct queues than the configured limit (labels must stay bounded)."""


class AgentLimitError(Exception):
    """An agent.state for a new agent past server.max_agents (counted as agent_limit)."""


# The events whose fold keeps per-agent windows: the ones that make an agent known.
AGENT_TYPES = frozenset({ev.AGENT_STATE, ev.CONTACT_ANSWERED, ev.CONTACT_TRANSFERRED,
                         ev.CONTACT_ENDED, ev.SURVEY_RESPONSE})


class Leaf:
    """Windows for one (queue, channel) pair, with the queue's service-level settings."""

    __slots__ = ("channel", "expires", "legal", "queue", "short_s", "sources", "threshold_s",
                 "variant", "windows")

    def __init__(self, queue: str, channel: str, cfg: QueueConfig, windows: WindowSet) -> None:
        self.queue, self.channel, self.windows = queue, channel, windows
        self.threshold_s = cfg.service_level.threshold_s
        self.short_s = cfg.service_level.short_abandon_s
        self.variant = cfg.service_level.variant
        self.legal = [(r.limit_s, r.start == "call") for r in cfg.legal_rules]
        self.expires = expiry_counts(self.variant)
        self.sources: set[str] = set()
