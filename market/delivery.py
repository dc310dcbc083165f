"""Delivery settlement of one cleared energy slot, pure: cleared orders and meters in,
each order's delivered Wh and money out. No Django here (rules: docs/market.md,
"Delivery settlement").

Per party (an organisation on one side of the slot):
- a seller sold S (its cleared offers) and produced P (its meters): it delivered
  d = min(S, P) and is short S - d; a buyer bought B and consumed M: it took t = min(B, M);
- the energy that went through the market is E = min(sum d, sum t): sellers' deliveries
  and buyers' takings are each scaled down pro rata to E when their side has more;
- a party's delivered (or taken) Wh are shared across its orders of the slot pro rata to
  their cleared Wh, and its part of E across them pro rata to those shares.

Each order then splits its cleared Wh into delivered + surplus + shortfall (== cleared):
- seller: delivered (its share of E, paid at the clearing price), surplus (produced but
  not taken by the market's buyers: paid by the operator at the fallback sell price),
  shortfall (sold but not produced: charged at the fallback buy price);
- buyer: delivered (paid from its escrow at the clearing price), surplus (bought but not
  consumed: released, no charge), shortfall (consumed but the sellers were short: released,
  the supplier bills it outside the registry).

Money: each buyer order pays `amount_for(price, delivered)` (rounded down); the pot is
those payments; the grid fee `amount_for(grid_fee, E)` (at most the pot) goes to the
operator and the rest is shared among the seller orders pro rata to their delivered Wh.

Rounding (`pro_rata`): each share is rounded down, and the units left over go one each to
the largest remainders, ties to the smallest key (order id or organisation id), so shares
always add up to the total exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WH_PER_MWH = 1_000_000
BUY, SELL = "buy", "sell"


def amount_for(price_per_mwh: int, volume_wh: int) -> int:
    """What `volume_wh` costs at `price_per_mwh` (minor units), rounded down."""
    return price_per_mwh * volume_wh // WH_PER_MWH


def pro_rata(total: int, weights: Mapping[int, int]) -> dict[int, int]:
    """`total` shared by `weights` (non-negative, total <= sum of weights unless all are
    zero): floor shares, leftover units one each to the largest remainders, ties to the
    smallest key. Every key is in the result; shares sum to `total` (0 if no weight)."""
    whole = sum(weights.values())
    if whole == 0 or total == 0:
        return {key: 0 for key in weights}
    shares = {key: total * weight // whole for key, weight in weights.items()}
    left = total - sum(shares.values())
    ranked = sorted(weights, key=lambda key: (-(total * weights[key] % whole), key))
    for key in ranked[:left]:
        shares[key] += 1
    return shares


@dataclass(frozen=True, slots=True)
class DeliveryOrder:
    """A cleared order of the slot: `cleared` Wh (> 0) for `owner` on `side`."""

    id: int
    side: str
    owner: int
    cleared: int


@dataclass(frozen=True, slots=True)
class OrderDelivery:
    """One order's settlement (Wh, minor units). `amount` is what a buyer order pays or a
    seller order receives at the clearing price; `charge` what a seller pays for its
    shortfall, `surplus_pay` what it is paid for its surplus (before any cap)."""

    order_id: int
    side: str
    owner: int
    cleared: int
    metered: int
    delivered: int
    surplus: int
    shortfall: int
    amount: int
    charge: int
    surplus_pay: int


@dataclass(frozen=True, slots=True)
class Delivery:
    delivered: int
    pot: int
    grid_fee: int
    orders: list[OrderDelivery]


def settle(
    *,
    price: int,
    orders: Sequence[DeliveryOrder],
    metered: Mapping[tuple[str, int], int],
    fallback_buy_price: int,
    fallback_sell_price: int,
    grid_fee_per_mwh: int,
) -> Delivery:
    """Settle one slot: `metered[(side, owner)]` is the party's production (sell) or
    consumption (buy) in the slot, in Wh (a missing party counts 0)."""
    sold: dict[tuple[str, int], int] = {}
    by_party: dict[tuple[str, int], list[DeliveryOrder]] = {}
    for order in orders:
        key = (order.side, order.owner)
        sold[key] = sold.get(key, 0) + order.cleared
        by_party.setdefault(key, []).append(order)
    done = {key: min(volume, max(metered.get(key, 0), 0)) for key, volume in sold.items()}
    side_total = {
        side: sum(v for (s, _owner), v in done.items() if s == side) for side in (BUY, SELL)
    }
    delivered = min(side_total[BUY], side_total[SELL])
    through: dict[tuple[str, int], int] = {}
    for side in (BUY, SELL):
        parties = {owner: v for (s, owner), v in done.items() if s == side}
        for owner, share in pro_rata(delivered, parties).items():
            through[(side, owner)] = share
    results = []
    for key in sold:
        side, owner = key
        mine = by_party[key]
        weights = {o.id: o.cleared for o in mine}
        took = pro_rata(done[key], weights)
        # Shared by what each order took, so no order gets more through than it took.
        got = pro_rata(through[key], took)
        for order in mine:
            surplus = took[order.id] - got[order.id]
            shortfall = order.cleared - took[order.id]
            if side == BUY:
                # A buyer's surplus is what it bought and did not consume; its shortfall
                # what it consumed but the sellers did not deliver.
                surplus, shortfall = shortfall, surplus
            results.append(
                OrderDelivery(
                    order_id=order.id,
                    side=side,
                    owner=owner,
                    cleared=order.cleared,
                    metered=max(metered.get(key, 0), 0),
                    delivered=got[order.id],
                    surplus=surplus,
                    shortfall=shortfall,
                    amount=amount_for(price, got[order.id]) if side == BUY else 0,
                    charge=amount_for(fallback_buy_price, shortfall) if side == SELL else 0,
                    surplus_pay=amount_for(fallback_sell_price, surplus) if side == SELL else 0,
                )
            )
    pot = sum(r.amount for r in results)
    grid_fee = min(amount_for(grid_fee_per_mwh, delivered), pot)
    sellers = {r.order_id: r.delivered for r in results if r.side == SELL}
    paid = pro_rata(pot - grid_fee, sellers)
    results = [
        _with_amount(r, paid[r.order_id]) if r.side == SELL else r
        for r in sorted(results, key=lambda r: r.order_id)
    ]
    return Delivery(delivered=delivered, pot=pot, grid_fee=grid_fee, orders=results)


def _with_amount(result: OrderDelivery, amount: int) -> OrderDelivery:
    return OrderDelivery(
        result.order_id,
        result.side,
        result.owner,
        result.cleared,
        result.metered,
        result.delivered,
        result.surplus,
        result.shortfall,
        amount,
        result.charge,
        result.surplus_pay,
    )
