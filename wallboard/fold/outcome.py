"""A contact's service-level outcome when it leaves the queue, under each variant (kpis.md §1.2)."""

from __future__ import annotations

MET, MISSED, EXCLUDED = 1, -1, 0


def sl_outcome(variant: str, left_as: str, wait_s: float, threshold_s: float,
               short_s: float) -> int:
    """MET, MISSED or EXCLUDED for a contact leaving the queue, under a variant (kpis.md §1.2)."""
    if left_as == "answered":
        return MET if wait_s <= threshold_s else MISSED
    if variant == "answered_only":
        return EXCLUDED  # abandons and flow-outs never count
    if wait_s > threshold_s:
        return MISSED
    if left_as == "transferred":
        return EXCLUDED  # a flow-out within T is neither met nor missed
    if variant == "removed_within_threshold":
        return MET  # Amazon Connect: any removal within T, short abandons included
    if left_as == "abandoned" and wait_s < short_s:
        return EXCLUDED
    if variant == "abandons_negative" and left_as == "abandoned":
        return MISSED
    if variant == "abandons_positive":
        return MET
    return EXCLUDED  # abandons_ignored, and callbacks within T outside Amazon's variant


def expiry_counts(variant: str) -> bool:
    """Whether a contact still waiting at T is a miss at that moment (all but answered-only)."""
    return variant != "answered_only"
