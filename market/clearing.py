"""Uniform-price clearing of one delivery slot, pure: bids and offers in, one price out.

At gate closure a slot's orders are cleared together (a call auction, "pay as clear"),
instead of trading one by one as they arrive (market/matching.py). No Django here, so the
rules read in one place and are checked by properties against a unit-by-unit reference
(tests/market/test_clearing.py).

Rules (docs/market.md, "Uniform-price clearing"):
- bids are ranked by price descending, offers by price ascending; equal prices by `seq`
  (arrival), then id. Orders are divisible: any part of an order may clear.
- The cleared volume V is the largest volume at which the marginal bid still pays at least
  the marginal offer: walking both ranked lists Wh by Wh, the k-th Wh trades while the bid
  holding it is priced at or above the offer holding it. V is the most that can trade
  with every order within its limit.
- Volume is allocated in rank order: the best-ranked orders clear in full, the marginal
  order of each side may clear in part, the rest not at all. At equal prices the earlier
  order clears first (time priority, as in continuous matching; no pro rata).
- The clearing price p is one integer (minor units per MWh) that every cleared order
  accepts and no excluded order would have traded at:
      lo = max(marginal offer, best bid left out)   hi = min(marginal bid, best offer left out)
  ("left out" includes the unfilled rest of a marginal order; a side with nothing left
  out gives no bound). lo <= hi always holds when V is maximal, and p = floor((lo+hi)/2),
  the midpoint, so neither side's marginal order sets the price alone.
- V = 0 (nothing crosses, or a side is empty): no price, nothing allocated.

Self-trade prevention (before all of the above): an organisation (`owner`) never trades
with itself. Its own bids and offers are first netted against each other by the same
Wh-by-Wh rule: its best bid (dearest, then earliest) against its best offer (cheapest,
then earliest), Wh by Wh while the bid's price is at least the offer's. The netted Wh
leave both orders ("self_trade_netted", in `Clearing.netted`), and the rules above clear
what is left. After netting, each owner's dearest remaining bid is below its cheapest
remaining offer, and a cleared bid is priced at or above the clearing price while a
cleared offer is at or below it, so no owner clears on both sides. The clearing of the
remaining orders keeps every property above (it is the same clearing, on less volume).

The work is two sorts and a few linear numpy passes, so clearing 100,000 orders costs a
small multiple of sorting them (benchmarks/clearing_bench.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

BUY, SELL = "buy", "sell"
SELF_TRADE_NETTED = "self_trade_netted"


@dataclass(frozen=True, slots=True)
class SlotOrder:
    """One order of a slot: `price` per MWh in minor units, `quantity` in Wh (> 0), and
    `owner`, the organisation it trades for (self-trade prevention)."""

    id: int
    side: str
    price: int
    quantity: int
    seq: int
    owner: int


@dataclass(frozen=True, slots=True)
class Clearing:
    """The result: price (None when nothing clears), volume in Wh, each order's cleared Wh
    by id (orders that clear nothing are absent), and the Wh that self-trade prevention
    took out of each order by id (orders it did not touch are absent)."""

    price: int | None
    volume: int
    allocations: dict[int, int]
    netted: dict[int, int] = field(default_factory=dict)

    def cleared(self, order_id: int) -> int:
        return self.allocations.get(order_id, 0)

    def netted_of(self, order_id: int) -> int:
        return self.netted.get(order_id, 0)


@dataclass(frozen=True, slots=True)
class _Side:
    """One side ranked best first: ids, prices, quantities and cumulative quantities."""

    ids: np.ndarray
    prices: np.ndarray
    quantities: np.ndarray
    cumulative: np.ndarray

    @classmethod
    def ranked(cls, orders: Sequence[SlotOrder], *, descending: bool) -> _Side:
        ids = np.fromiter((o.id for o in orders), dtype=np.int64, count=len(orders))
        prices = np.fromiter((o.price for o in orders), dtype=np.int64, count=len(orders))
        quantities = np.fromiter((o.quantity for o in orders), dtype=np.int64, count=len(orders))
        seqs = np.fromiter((o.seq for o in orders), dtype=np.int64, count=len(orders))
        rank = np.lexsort((ids, seqs, -prices if descending else prices))
        quantities = quantities[rank]
        return cls(ids[rank], prices[rank], quantities, np.cumsum(quantities))

    @property
    def total(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def price_of_wh(self, k: np.ndarray | int) -> np.ndarray:
        """The price of the order holding the k-th Wh of this side (1-based, k <= total)."""
        return self.prices[np.searchsorted(self.cumulative, k, side="left")]

    def allocations(self, volume: int) -> dict[int, int]:
        cleared = np.minimum(self.cumulative, volume) - (self.cumulative - self.quantities)
        some = cleared > 0
        return dict(zip(self.ids[some].tolist(), cleared[some].tolist(), strict=True))


def self_trade_netting(orders: Sequence[SlotOrder]) -> dict[int, int]:
    """The Wh self-trade prevention takes out of each order, by id (only orders it touches).

    Only owners whose dearest bid reaches their cheapest offer are walked (found with numpy
    in one pass), so a slot without self-crossing owners costs one `np.unique` more.
    """
    if not orders:
        return {}
    owners = np.fromiter((o.owner for o in orders), dtype=np.int64, count=len(orders))
    prices = np.fromiter((o.price for o in orders), dtype=np.int64, count=len(orders))
    buys = np.fromiter((o.side == BUY for o in orders), dtype=bool, count=len(orders))
    unique, group = np.unique(owners, return_inverse=True)
    dearest_bid = np.full(len(unique), -1, dtype=np.int64)
    cheapest_offer = np.full(len(unique), np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(dearest_bid, group[buys], prices[buys])
    np.minimum.at(cheapest_offer, group[~buys], prices[~buys])
    crossing = (dearest_bid >= cheapest_offer)[group]
    mine: dict[int, list[SlotOrder]] = {}
    for index in np.flatnonzero(crossing).tolist():
        mine.setdefault(orders[index].owner, []).append(orders[index])
    netted: dict[int, int] = {}
    for own in mine.values():
        bids = sorted((o for o in own if o.side == BUY), key=lambda o: (-o.price, o.seq, o.id))
        offers = sorted((o for o in own if o.side == SELL), key=lambda o: (o.price, o.seq, o.id))
        i = j = 0
        bid_left, offer_left = bids[0].quantity, offers[0].quantity
        while bids[i].price >= offers[j].price:
            take = min(bid_left, offer_left)
            netted[bids[i].id] = netted.get(bids[i].id, 0) + take
            netted[offers[j].id] = netted.get(offers[j].id, 0) + take
            bid_left -= take
            offer_left -= take
            if not bid_left:
                i += 1
                if i == len(bids):
                    break
                bid_left = bids[i].quantity
            if not offer_left:
                j += 1
                if j == len(offers):
                    break
                offer_left = offers[j].quantity
    return netted


def clear(orders: Sequence[SlotOrder]) -> Clearing:
    """Clear one slot's orders at one price after self-trade prevention (module docstring)."""
    netted = self_trade_netting(orders)
    if netted:
        orders = [
            replace(o, quantity=o.quantity - netted[o.id]) if o.id in netted else o
            for o in orders
            if o.quantity > netted.get(o.id, 0)
        ]
    result = _clear_uniform(orders)
    return Clearing(result.price, result.volume, result.allocations, netted)


def _clear_uniform(orders: Sequence[SlotOrder]) -> Clearing:
    """Clear orders at one price without self-trade prevention (module docstring)."""
    bids = _Side.ranked([o for o in orders if o.side == BUY], descending=True)
    offers = _Side.ranked([o for o in orders if o.side == SELL], descending=False)
    most = min(bids.total, offers.total)
    if most == 0:
        return Clearing(None, 0, {})
    # Between two consecutive order boundaries (of either side) both prices are constant,
    # so it is enough to test the first Wh after each boundary; the test passes for a
    # prefix of the boundaries, because bid prices fall and offer prices rise.
    boundaries = np.unique(np.concatenate((bids.cumulative, offers.cumulative)))
    boundaries = boundaries[boundaries <= most]
    starts = np.concatenate(([0], boundaries[:-1]))
    crossing = bids.price_of_wh(starts + 1) >= offers.price_of_wh(starts + 1)
    passing = int(np.argmin(crossing)) if not crossing.all() else len(crossing)
    if passing == 0:
        return Clearing(None, 0, {})
    volume = int(boundaries[passing - 1])
    lo = int(offers.price_of_wh(volume))
    hi = int(bids.price_of_wh(volume))
    if volume < bids.total:
        lo = max(lo, int(bids.price_of_wh(volume + 1)))
    if volume < offers.total:
        hi = min(hi, int(offers.price_of_wh(volume + 1)))
    price = (lo + hi) // 2
    return Clearing(price, volume, {**bids.allocations(volume), **offers.allocations(volume)})
