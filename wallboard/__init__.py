"""wallboard: a vendor-neutral real-time contact-center wallboard."""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("wallboard")

__all__ = ["__version__", "hookimpl"]
