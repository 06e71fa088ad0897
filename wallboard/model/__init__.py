"""The canonical event model: the one contract between sources and the core.

Owns the event types and fields (`schema`), their bounds (`limits`), the validation every
event passes whichever way it came (`events`, with the per-shape fast path in `fast`).
May import only `wallboard.base`. Plugins import it directly: see docs/events.md.
"""

from wallboard.model.events import *  # noqa: F403  # the event model's public names, one list
from wallboard.model.events import __all__ as __all__
