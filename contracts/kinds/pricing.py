"""A PPA's price: fixed per MWh, or indexed to an energy market's cleared price.

An indexed price is, for each period the buyer takes (an hour of the issuance),

    price = min(cap, max(floor, index + spread))

where `index` is the energy market's cleared price over the period: the mean of the
clearings (slots) that overlap it, weighted by cleared Wh x seconds of overlap, rounded
half up to the minor unit (the weighting the community bills use, docs/consumers.md). A
period no clearing with a price overlaps takes the terms' `fallback_per_mwh_minor` as its
index, or, without one, the execution refuses with `index_price_unavailable` (parked or
retried per the contract; nothing moves).

The contracts app may not import the market, so the market fills the
`contracts.index_prices` hook (market.selectors.energy_index_clearings). The plan records
every clearing it used (id, price, cleared Wh, seconds of overlap) with the index and the
price of each period, so the replay re-derives each price from the execution's event and
checks each clearing against the market's `market.slot_cleared` events.

Money: the obligation is sum(Wh x price) / 1,000,000, half up once per execution, like a
fixed price's (which is the same formula with one price).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from contracts.errors import IndexPriceUnavailable, InvalidTerms, TermsUnmet
from contracts.kinds.base import MAX_PRICE_PER_MWH_MINOR, TermsReader
from registry.hooks import Hook

WH_PER_MWH = 1_000_000
INDEX_FIELDS = {
    "market",
    "spread_per_mwh_minor",
    "floor_per_mwh_minor",
    "cap_per_mwh_minor",
    "fallback_per_mwh_minor",
}

# Called with keywords `market` (an energy market's code) and `periods` (a list of
# (start, end)). Answers None when it knows no energy market of that code, else a dict:
# `market_id`, `currency`, and `clearings`, for each period the list of
# [clearing_id, price, volume_wh, overlap_seconds] of the market's clearings with a price
# that overlap it, in slot order. Must not write. The first registration that answers wins.
INDEX_PRICES = Hook("contracts.index_prices")


def index_lookup(market: str, periods: Sequence[tuple[dt.datetime, dt.datetime]]) -> dict | None:
    for lookup in INDEX_PRICES:
        found = lookup(market=market, periods=list(periods))
        if found is not None:
            return found
    return None


def validate_price(read: TermsReader, currency: str) -> dict[str, Any]:
    """The pricing part of a PPA's terms: `price_per_mwh_minor` or `price_index`."""
    fixed = "price_per_mwh_minor" in read.terms  # present, even as null: given
    index = read.terms.get("price_index")
    if fixed == ("price_index" in read.terms):
        raise InvalidTerms(
            "A PPA has a fixed price or an index, exactly one.",
            fields={"price_per_mwh_minor": ["or price_index, exactly one"]},
        )
    if fixed:
        return {
            "price_per_mwh_minor": read.integer("price_per_mwh_minor", 0, MAX_PRICE_PER_MWH_MINOR)
        }
    if not isinstance(index, dict):
        raise InvalidTerms(fields={"price_index": ["a JSON object"]})
    try:
        return {"price_index": _validate_index(index, currency)}
    except InvalidTerms as exc:  # name the fields inside the index as price_index.<name>
        fields = exc.extra.get("fields") or {}
        raise type(exc)(
            exc.detail, fields={f"price_index.{name}": why for name, why in fields.items()}
        ) from exc


def _validate_index(index: dict[str, Any], currency: str) -> dict[str, Any]:
    read = TermsReader(index, INDEX_FIELDS)
    high = MAX_PRICE_PER_MWH_MINOR
    code = read.text("market")
    clean: dict[str, Any] = {
        "market": code,
        "spread_per_mwh_minor": read.integer("spread_per_mwh_minor", -high, high, required=False)
        or 0,
        "floor_per_mwh_minor": read.integer("floor_per_mwh_minor", 0, high, required=False) or 0,
    }
    cap = read.integer("cap_per_mwh_minor", 0, high, required=False)
    if cap is not None:
        if cap < clean["floor_per_mwh_minor"]:
            raise TermsUnmet(fields={"cap_per_mwh_minor": ["at least the floor"]})
        clean["cap_per_mwh_minor"] = cap
    fallback = read.integer("fallback_per_mwh_minor", 0, high, required=False)
    if fallback is not None:
        clean["fallback_per_mwh_minor"] = fallback
    market = index_lookup(code, [])
    if market is None:
        raise TermsUnmet(fields={"market": ["no energy market of this code"]})
    if market["currency"] != currency:
        raise TermsUnmet(fields={"market": [f"trades in {market['currency']}, not {currency}"]})
    return clean


def index_value(clearings: Sequence[Sequence[int]]) -> int | None:
    """The weighted mean of [id, price, volume_wh, overlap_s] rows, half up; None if none."""
    weight = sum(volume * overlap for _id, _price, volume, overlap in clearings)
    if not weight:
        return None
    total = sum(price * volume * overlap for _id, price, volume, overlap in clearings)
    return (2 * total + weight) // (2 * weight)


def indexed_price(index: dict[str, Any], value: int | None) -> int | None:
    """The period's price from its index value (or the fallback); None if neither."""
    if value is None:
        value = index.get("fallback_per_mwh_minor")
        if value is None:
            return None
    price = max(index["floor_per_mwh_minor"], value + index["spread_per_mwh_minor"])
    cap = index.get("cap_per_mwh_minor")
    return price if cap is None else min(cap, price)


def amount_minor(priced: Sequence[tuple[int, int]]) -> int:
    """sum(Wh x price per MWh) in minor units, half up once."""
    return (sum(wh * price for wh, price in priced) + WH_PER_MWH // 2) // WH_PER_MWH


def price_periods(terms: dict[str, Any], periods: list[list[Any]]) -> dict[str, Any]:
    """For the periods [start, end, wh] a PPA takes: the price of each and what is owed.

    Returns `prices` (one per period), `amount_minor`, and for an index `index_prices`:
    per period [start, index or None, source ("cleared" or "fallback"), price,
    clearings]. Raises IndexPriceUnavailable for a period without a price."""
    if "price_index" not in terms:
        price = terms["price_per_mwh_minor"]
        prices = [price] * len(periods)
        return {"prices": prices, "amount_minor": amount_minor([(p[2], price) for p in periods])}
    index = terms["price_index"]
    found = index_lookup(index["market"], [(p[0], p[1]) for p in periods])
    if found is None:
        raise IndexPriceUnavailable(market=index["market"], reason="no such energy market")
    rows, prices, missing = [], [], []
    for period, clearings in zip(periods, found["clearings"], strict=True):
        value = index_value(clearings)
        price = indexed_price(index, value)
        if price is None:
            missing.append(period[0])
            continue
        source = "cleared" if value is not None else "fallback"
        rows.append([period[0], value, source, price, [list(c) for c in clearings]])
        prices.append(price)
    if missing:
        raise IndexPriceUnavailable(
            market=index["market"], periods=missing[:10], count=len(missing)
        )
    return {
        "prices": prices,
        "amount_minor": amount_minor(
            [(p[2], price) for p, price in zip(periods, prices, strict=True)]
        ),
        "market_id": found["market_id"],
        "index_prices": rows,
    }
