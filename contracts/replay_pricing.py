"""Replay of a PPA's price: re-derive each execution's obligation from its event alone.

A fixed price: the execution's volume at the terms' price, half up. An indexed price
(`contracts.kinds.pricing`): each period's index is re-computed from the clearings the
execution recorded, its price from the index (or the fallback), the spread, the floor
and the cap of the terms in force, and the amount from the periods' Wh at those prices;
every recorded clearing must be one the market's `market.slot_cleared` events logged
for the contract's market, at the same price and cleared Wh (checked once the whole log
is read, `settle`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from contracts.kinds import pricing
from contracts.kinds.shape import wanted_wh

# The market's clearing event (`market.events.SLOT_CLEARED`): contracts may not import it.
SLOT_CLEARED = "market.slot_cleared"


class PricingReplay:
    def __init__(self, problem: Callable[[str], None]) -> None:
        self.problem = problem
        self.cleared: dict[int, tuple[int, int | None, int]] = {}
        # (where, clearing id, market id, price, volume) to find among the clearings
        self.used: list[tuple[str, int, int, int, int]] = []

    def slot_cleared(self, d: dict[str, Any]) -> None:
        c = d["clearing"]
        self.cleared[c["clearing_id"]] = (c["market_id"], c["price"], c["volume_wh"])

    def expected(self, where: str, terms: dict[str, Any], result: dict[str, Any]) -> tuple:
        """(amount, price per MWh or None) the terms give for the execution's periods."""
        periods = result["periods"]
        if "price_index" not in terms:
            price = terms["price_per_mwh_minor"]
            return pricing.amount_minor([(p[2], price) for p in periods]), price
        index = terms["price_index"]
        rows = result.get("index_prices") or []
        if len(rows) != len(periods):
            self.problem(f"{where}: {len(periods)} periods but {len(rows)} index prices")
            return None, None
        priced = []
        for period, (start, value, source, price, clearings) in zip(periods, rows, strict=True):
            derived = pricing.index_value(clearings)
            expected = pricing.indexed_price(index, derived)
            if start != period[0] or derived != value or expected != price:
                self.problem(
                    f"{where}: period {start}: index {value} at {price} recorded, the clearings"
                    f" and terms give index {derived} at {expected}"
                )
            if source != ("cleared" if derived is not None else "fallback"):
                self.problem(f"{where}: period {start}: source {source!r}")
            for clearing_id, c_price, volume, _overlap in clearings:
                self.used.append((where, clearing_id, result["index_market_id"], c_price, volume))
            priced.append((period[2], price))
        return pricing.amount_minor(priced), None

    def shape(self, where: str, shape_terms: dict[str, Any], result: dict[str, Any]) -> None:
        """A shaped PPA's periods: each wants the shape's Wh, takes at most that, and the
        periods taken are exactly the rows with Wh taken; the shortfall is their sum."""
        rows = result.get("shape") or []
        taken = [[start, end, take] for start, end, _want, take in rows if take]
        if taken != result["periods"]:
            self.problem(f"{where}: the shape's rows are not the periods taken")
        for start, end, want, take in rows:
            expected = wanted_wh(
                shape_terms, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
            )
            if want != expected or not 0 <= take <= want:
                self.problem(f"{where}: period {start} wants {want} takes {take}, shape {expected}")
        if result.get("shortfall_wh") != sum(want - take for _s, _e, want, take in rows):
            self.problem(f"{where}: shortfall_wh {result.get('shortfall_wh')} is not the rows'")

    def settle(self) -> None:
        for where, clearing_id, market_id, price, volume in self.used:
            logged = self.cleared.get(clearing_id)
            if logged != (market_id, price, volume):
                self.problem(
                    f"{where}: clearing {clearing_id} of market {market_id} at {price} for"
                    f" {volume} Wh, the log has {logged}"
                )
