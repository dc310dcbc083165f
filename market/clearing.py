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

The work is two sorts and a few linear numpy passes, plus, for self-trade prevention, one
`np.unique` of the owners and two sorts of the orders of owners that cross themselves (all
owners at once, no loop per owner), so clearing 100,000 orders costs a small multiple of
sorting them (benchmarks/clearing_bench.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
class _Book:
    """A slot's orders as arrays, in input order (one pass over the objects)."""

    ids: np.ndarray
    buys: np.ndarray
    prices: np.ndarray
    quantities: np.ndarray
    seqs: np.ndarray
    owners: np.ndarray

    @classmethod
    def of(cls, orders: Sequence[SlotOrder]) -> _Book:
        def column(name: str) -> np.ndarray:
            values = (getattr(o, name) for o in orders)
            return np.fromiter(values, dtype=np.int64, count=len(orders))

        buys = np.fromiter((o.side == BUY for o in orders), dtype=bool, count=len(orders))
        return cls(
            column("id"), buys, column("price"), column("quantity"), column("seq"), column("owner")
        )


@dataclass(frozen=True, slots=True)
class _Side:
    """One side ranked best first: ids, prices, quantities and cumulative quantities."""

    ids: np.ndarray
    prices: np.ndarray
    quantities: np.ndarray
    cumulative: np.ndarray

    @classmethod
    def ranked(cls, book: _Book, quantities: np.ndarray, *, buys: bool) -> _Side:
        """The orders of one side that have Wh left in `quantities`, best first."""
        mine = (book.buys if buys else ~book.buys) & (quantities > 0)
        ids, prices, seqs = book.ids[mine], book.prices[mine], book.seqs[mine]
        rank = np.lexsort((ids, seqs, -prices if buys else prices))
        quantities = quantities[mine][rank]
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
    """The Wh self-trade prevention takes out of each order, by id (only orders it touches)."""
    book = _Book.of(orders)
    netted = _netted(book)
    some = netted > 0
    return dict(zip(book.ids[some].tolist(), netted[some].tolist(), strict=True))


def _netted(book: _Book) -> np.ndarray:
    """Each order's netted Wh (input order), for every owner at once.

    The same Wh-by-Wh walk as the clearing, per owner, on one line: owner g's orders of
    both sides are laid out from `base[g]`, with room for its larger side, so every
    owner's Wh positions are disjoint and one searchsorted finds the order holding any
    owner's k-th Wh. Only owners whose dearest bid reaches their cheapest offer take part.
    """
    netted = np.zeros(len(book.ids), dtype=np.int64)
    if not len(book.ids):
        return netted
    unique, group = np.unique(book.owners, return_inverse=True)
    dearest = np.full(len(unique), np.iinfo(np.int64).min, dtype=np.int64)
    cheapest = np.full(len(unique), np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(dearest, group[book.buys], book.prices[book.buys])
    np.minimum.at(cheapest, group[~book.buys], book.prices[~book.buys])
    crossing_owner = dearest >= cheapest
    if not crossing_owner.any():
        return netted
    involved = crossing_owner[group]
    prices, seqs, ids = book.prices, book.seqs, book.ids
    bids = np.flatnonzero(involved & book.buys)
    bids = bids[np.lexsort((ids[bids], seqs[bids], -prices[bids], group[bids]))]
    offers = np.flatnonzero(involved & ~book.buys)
    offers = offers[np.lexsort((ids[offers], seqs[offers], prices[offers], group[offers]))]
    totals = []
    for side in (bids, offers):
        total = np.zeros(len(unique), dtype=np.int64)
        np.add.at(total, group[side], book.quantities[side])
        totals.append(total)
    most = np.minimum(*totals)
    base = np.concatenate(([0], np.cumsum(np.maximum(*totals))[:-1]))

    def positions(side: np.ndarray) -> np.ndarray:
        """Where each order's last Wh lies on the line (cumulative within its owner)."""
        cumulative = np.cumsum(book.quantities[side])
        first = np.concatenate(([True], group[side][1:] != group[side][:-1]))
        before = (cumulative - book.quantities[side])[first][np.cumsum(first) - 1]
        return base[group[side]] + cumulative - before

    bid_ends, offer_ends = positions(bids), positions(offers)
    ends = np.concatenate((bid_ends, offer_ends))
    owner_of = np.concatenate((group[bids], group[offers]))
    within = ends <= base[owner_of] + most[owner_of]
    boundaries, index = np.unique(ends[within], return_index=True)
    owners = owner_of[within][index]
    same = np.concatenate(([False], owners[1:] == owners[:-1]))
    starts = np.where(same, np.concatenate(([0], boundaries[:-1])), base[owners])
    # As in the clearing: the test holds for a prefix of each owner's boundaries.
    cross = (
        prices[bids][np.searchsorted(bid_ends, starts + 1)]
        >= prices[offers][np.searchsorted(offer_ends, starts + 1)]
    )
    volume = np.zeros(len(unique), dtype=np.int64)
    np.maximum.at(volume, owners[cross], boundaries[cross] - base[owners[cross]])
    for side, side_ends in ((bids, bid_ends), (offers, offer_ends)):
        local = side_ends - base[group[side]]
        reach = np.minimum(local, volume[group[side]])
        netted[side] = np.maximum(reach - (local - book.quantities[side]), 0)
    return netted


def clear(orders: Sequence[SlotOrder]) -> Clearing:
    """Clear one slot's orders at one price after self-trade prevention (module docstring)."""
    book = _Book.of(orders)
    taken = _netted(book)
    some = taken > 0
    netted = dict(zip(book.ids[some].tolist(), taken[some].tolist(), strict=True))
    quantities = book.quantities - taken
    bids = _Side.ranked(book, quantities, buys=True)
    offers = _Side.ranked(book, quantities, buys=False)
    most = min(bids.total, offers.total)
    if most == 0:
        return Clearing(None, 0, {}, netted)
    # Between two consecutive order boundaries (of either side) both prices are constant,
    # so it is enough to test the first Wh after each boundary; the test passes for a
    # prefix of the boundaries, because bid prices fall and offer prices rise.
    boundaries = np.unique(np.concatenate((bids.cumulative, offers.cumulative)))
    boundaries = boundaries[boundaries <= most]
    starts = np.concatenate(([0], boundaries[:-1]))
    crossing = bids.price_of_wh(starts + 1) >= offers.price_of_wh(starts + 1)
    passing = int(np.argmin(crossing)) if not crossing.all() else len(crossing)
    if passing == 0:
        return Clearing(None, 0, {}, netted)
    volume = int(boundaries[passing - 1])
    lo = int(offers.price_of_wh(volume))
    hi = int(bids.price_of_wh(volume))
    if volume < bids.total:
        lo = max(lo, int(bids.price_of_wh(volume + 1)))
    if volume < offers.total:
        hi = min(hi, int(offers.price_of_wh(volume + 1)))
    price = (lo + hi) // 2
    allocations = {**bids.allocations(volume), **offers.allocations(volume)}
    return Clearing(price, volume, allocations, netted)
