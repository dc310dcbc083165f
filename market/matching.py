"""Continuous matching, pure: an order and the resting book in, fills out.

No Django and no database here, so the rules can be read in one place and checked with
property tests (tests/market/test_matching_properties.py). The service that calls it
holds the book's row lock and settles each fill in the same transaction.

Rules:
- price-time priority: offers cheapest first, bids dearest first; equal prices by `seq`
  (the order of arrival; an amend of price or an increase in quantity takes a new one);
- an incoming order trades while it crosses (bid price >= offer price) against resting
  orders it is compatible with (the bid's criteria accept the offer's certificates), at
  the resting order's price, partial fills allowed;
- self-trade prevention, cancel newest: when the next order it would trade with belongs
  to its own organisation, the rest of the incoming order is cancelled (so two crossing
  orders of one organisation never rest together);
- time in force: GTC rests what is left, IOC cancels it, FOK trades all or nothing;
- minimum fill: an incoming order that cannot trade at least `min_fill` at once does not
  trade at all and is cancelled (whatever its time in force); once resting it accepts
  fills of any size. So no order rests while it could trade, and the book is never left
  crossed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

BUY, SELL = "buy", "sell"
GTC, IOC, FOK = "gtc", "ioc", "fok"
TIME_IN_FORCE = (GTC, IOC, FOK)

# Why the part of an incoming order that did not trade or rest was cancelled.
FOK_UNFILLED = "fok_unfilled"
MIN_FILL_UNMET = "min_fill_unmet"
SELF_TRADE = "self_trade"
IOC_REMAINDER = "ioc_remainder"

WH_PER_MWH = 1_000_000


def amount_for(price_per_mwh: int, volume_wh: int) -> int:
    """What `volume_wh` costs at `price_per_mwh` (minor units), rounded down to the minor unit."""
    return price_per_mwh * volume_wh // WH_PER_MWH


def escrow_for(price_per_mwh: int, volume_wh: int) -> int:
    """Funds a bid holds for `volume_wh` at its limit: rounded up, so that any fills at or
    below the limit, each rounded down, never cost more (see docs/market.md, "Money")."""
    return -(-price_per_mwh * volume_wh // WH_PER_MWH)


@dataclass(frozen=True, slots=True)
class Attributes:
    """What an offer's certificates are: the fields a bid may ask for."""

    technology_code: str
    energy_source_code: str
    country: str
    grid_area_code: str
    device_id: int
    period_start: dt.datetime
    period_end: dt.datetime


@dataclass(frozen=True, slots=True)
class Criteria:
    """What a bid accepts; None means any. The production period must lie inside
    [period_from, period_to) (one hour for "same hour as my consumption"), and end no
    more than `max_age_days` before now."""

    technology_code: str | None = None
    energy_source_code: str | None = None
    country: str | None = None
    grid_area_code: str | None = None
    device_id: int | None = None
    period_from: dt.datetime | None = None
    period_to: dt.datetime | None = None
    max_age_days: int | None = None

    def accepts(self, offer: Attributes, now: dt.datetime) -> bool:
        for name in (
            "technology_code",
            "energy_source_code",
            "country",
            "grid_area_code",
            "device_id",
        ):
            wanted = getattr(self, name)
            if wanted is not None and wanted != getattr(offer, name):
                return False
        if self.period_from is not None and offer.period_start < self.period_from:
            return False
        if self.period_to is not None and offer.period_end > self.period_to:
            return False
        too_old = self.max_age_days is not None and offer.period_end < now - dt.timedelta(
            days=self.max_age_days
        )
        return not too_old


ANY = Criteria()


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the engine sees it; `quantity` is what is still open (Wh)."""

    id: int
    side: str
    price: int
    quantity: int
    seq: int
    owner: int
    tif: str = GTC
    min_fill: int = 0
    attributes: Attributes | None = None  # offers
    criteria: Criteria = ANY  # bids


@dataclass(frozen=True, slots=True)
class Fill:
    """`quantity` Wh traded between a resting (maker) and the incoming (taker) order."""

    maker_id: int
    taker_id: int
    price: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to an incoming order: its fills in order, what rests, what was cancelled."""

    fills: tuple[Fill, ...]
    resting: int
    cancelled: int
    reason: str | None = None

    @property
    def filled(self) -> int:
        return sum(f.quantity for f in self.fills)


def priority_key(order: Order) -> tuple[int, int, int]:
    """Sort key of one side of the book, best first."""
    return (order.price if order.side == SELL else -order.price, order.seq, order.id)


def crosses(incoming: Order, resting: Order) -> bool:
    if incoming.side == BUY:
        return incoming.price >= resting.price
    return resting.price >= incoming.price


def compatible(buy: Order, sell: Order, now: dt.datetime) -> bool:
    """The bid accepts the offer's certificates (an offer without attributes: anything)."""
    return sell.attributes is None or buy.criteria.accepts(sell.attributes, now)


def _pair(incoming: Order, resting: Order) -> tuple[Order, Order]:
    return (incoming, resting) if incoming.side == BUY else (resting, incoming)


def match(incoming: Order, resting: Iterable[Order], *, now: dt.datetime) -> Outcome:
    """Match `incoming` against resting orders (any order, either side; the engine sorts).

    `resting` may be a prefix of the opposite side in priority order (the service loads
    it in chunks): the outcome is the same as against the whole side as long as the
    prefix holds every order the incoming one would reach.
    """
    book = sorted((o for o in resting if o.side != incoming.side), key=priority_key)
    fills: list[Fill] = []
    left = incoming.quantity
    self_trade = False
    for maker in book:
        if left == 0 or not crosses(incoming, maker):
            break
        if maker.quantity <= 0 or not compatible(*_pair(incoming, maker), now):
            continue
        if maker.owner == incoming.owner:
            self_trade = True
            break
        quantity = min(left, maker.quantity)
        fills.append(Fill(maker.id, incoming.id, maker.price, quantity))
        left -= quantity
    if incoming.tif == FOK and left > 0:
        return Outcome((), 0, incoming.quantity, FOK_UNFILLED)
    if incoming.min_fill and incoming.quantity - left < incoming.min_fill:
        return Outcome((), 0, incoming.quantity, MIN_FILL_UNMET)
    if left == 0:
        return Outcome(tuple(fills), 0, 0)
    if self_trade:
        return Outcome(tuple(fills), 0, left, SELF_TRADE)
    if incoming.tif == IOC:
        return Outcome(tuple(fills), 0, left, IOC_REMAINDER)
    return Outcome(tuple(fills), left, 0)


def enough_loaded(incoming: Order, resting: Iterable[Order], *, now: dt.datetime) -> bool:
    """Whether `resting` (a prefix of the opposite side in priority order) already holds
    everything `incoming` can reach: enough compatible quantity, the end of the crossing
    part, or an order of its own organisation (self-trade prevention stops there)."""
    total = 0
    for maker in resting:
        if not crosses(incoming, maker):
            return True
        if not compatible(*_pair(incoming, maker), now):
            continue
        if maker.owner == incoming.owner:
            return True
        total += maker.quantity
        if total >= incoming.quantity:
            return True
    return False


class Book:
    """An in-memory book: the engine's own model of a market (property tests, simulations)."""

    def __init__(self) -> None:
        self.orders: dict[int, Order] = {}

    def submit(self, order: Order, *, now: dt.datetime) -> Outcome:
        outcome = match(order, self.orders.values(), now=now)
        for fill in outcome.fills:
            maker = self.orders[fill.maker_id]
            left = maker.quantity - fill.quantity
            if left:
                self.orders[maker.id] = replace(maker, quantity=left)
            else:
                del self.orders[maker.id]
        if outcome.resting:
            self.orders[order.id] = replace(order, quantity=outcome.resting, min_fill=0)
        return outcome

    def cancel(self, order_id: int) -> Order | None:
        return self.orders.pop(order_id, None)

    def side(self, side: str) -> list[Order]:
        return sorted((o for o in self.orders.values() if o.side == side), key=priority_key)

    def crossed_pairs(self, *, now: dt.datetime) -> list[tuple[Order, Order]]:
        """Resting bid/offer pairs that could trade (of any owners): always empty."""
        return [
            (buy, sell)
            for buy in self.side(BUY)
            for sell in self.side(SELL)
            if buy.price >= sell.price and compatible(buy, sell, now)
        ]
