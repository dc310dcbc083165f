"""Review flags: rows that are valid but hold their whole batch for the issuing body."""

from __future__ import annotations

import datetime as dt

from assets.ingest.records import DeviceInfo

REVIEW_MESSAGES = {
    "over_capacity": "more energy than capacity x duration x the review margin",
    "backdated": "starts before the backdating limit",
}


def review_flags(
    wh: int, start: dt.datetime, device: DeviceInfo, backdate_before: dt.datetime
) -> tuple[str, ...]:
    """The review codes an interval earns: over capacity (with the margin), backdated."""
    flags = ()
    if wh > device.max_wh:
        flags = ("over_capacity",)
    if start < backdate_before:
        flags = (*flags, "backdated")
    return flags
