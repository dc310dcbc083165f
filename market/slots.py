"""Delivery slots of energy markets: alignment and gate closure (no writes).

A slot starts at UTC midnight plus a whole number of slot lengths (`Market.slot_minutes`
divides a day, so that is also the Unix epoch plus whole slots); orders for it close
`Market.gate_closure_minutes` before it starts, and for good once it is cleared.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from market import errors
from market.models import Market, SlotClearing


def is_slot_market(market: Market) -> bool:
    return market.matching == Market.Matching.UNIFORM


def slot_check_aligned(market: Market, slot_start: Any) -> dt.datetime:
    """A timezone-aware start of a whole slot (UTC midnight plus whole slot lengths)."""
    if not isinstance(slot_start, dt.datetime) or slot_start.utcoffset() is None:
        raise errors.InvalidOrder(fields={"slot_start": ["a date-time with its time zone"]})
    length = market.slot_minutes * 60
    if slot_start.microsecond or int(slot_start.timestamp()) % length:
        raise errors.SlotMisaligned(
            slot_start=slot_start.isoformat(), slot_minutes=market.slot_minutes
        )
    return slot_start


def slot_gate_closure(market: Market, slot_start: dt.datetime) -> dt.datetime:
    """When orders for the slot close."""
    return slot_start - dt.timedelta(minutes=market.gate_closure_minutes)


def check_gate_open(market: Market, slot_start: dt.datetime, now: dt.datetime) -> None:
    """Call under the book lock: the clearing takes it too, so its row is seen here."""
    closes = slot_gate_closure(market, slot_start)
    if now >= closes or SlotClearing.objects.filter(market=market, slot_start=slot_start).exists():
        raise errors.GateClosed(slot_start=slot_start.isoformat(), gate_closure=closes.isoformat())
