"""Uniform-price clearing (market/clearing.py) against a Wh-by-Wh reference and its rules,
with self-trade prevention (an owner's crossing bid and offer volume is netted first)."""

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from market.clearing import BUY, SELL, SlotOrder, clear


def bid(
    id_: int, price: int, quantity: int, seq: int | None = None, owner: int | None = None
) -> SlotOrder:
    """A bid of its own owner unless `owner` is given."""
    return SlotOrder(
        id_, BUY, price, quantity, id_ if seq is None else seq, id_ if owner is None else owner
    )


def offer(
    id_: int, price: int, quantity: int, seq: int | None = None, owner: int | None = None
) -> SlotOrder:
    return SlotOrder(
        id_, SELL, price, quantity, id_ if seq is None else seq, id_ if owner is None else owner
    )


def reference_netting(orders: list[SlotOrder]) -> dict[int, int]:
    """Wh by Wh per owner: its k-th best bid Wh against its k-th best offer Wh, while the
    bid's price is at least the offer's; each such Wh is taken out of both orders."""
    netted: dict[int, int] = {}
    for owner in {o.owner for o in orders}:
        mine = [o for o in orders if o.owner == owner]
        bids = sorted((o for o in mine if o.side == BUY), key=lambda o: (-o.price, o.seq, o.id))
        offers = sorted((o for o in mine if o.side == SELL), key=lambda o: (o.price, o.seq, o.id))
        bid_wh = [o for o in bids for _ in range(o.quantity)]
        offer_wh = [o for o in offers for _ in range(o.quantity)]
        for b, a in zip(bid_wh, offer_wh, strict=False):
            if b.price < a.price:
                break
            netted[b.id] = netted.get(b.id, 0) + 1
            netted[a.id] = netted.get(a.id, 0) + 1
    return netted


def remaining(orders: list[SlotOrder], netted: dict[int, int]) -> list[SlotOrder]:
    """The orders after netting (orders netted in full are gone)."""
    return [
        dataclasses.replace(o, quantity=o.quantity - netted.get(o.id, 0))
        for o in orders
        if o.quantity > netted.get(o.id, 0)
    ]


def reference_volume(orders: list[SlotOrder]) -> int:
    """Wh by Wh: the k-th Wh of the ranked bids against the k-th of the ranked offers."""
    bids = sorted((o for o in orders if o.side == BUY), key=lambda o: (-o.price, o.seq, o.id))
    offers = sorted((o for o in orders if o.side == SELL), key=lambda o: (o.price, o.seq, o.id))
    bid_wh = [o.price for o in bids for _ in range(o.quantity)]
    offer_wh = [o.price for o in offers for _ in range(o.quantity)]
    volume = 0
    for b, a in zip(bid_wh, offer_wh, strict=False):
        if b < a:
            break
        volume += 1
    return volume


def test_the_textbook_case():
    # given: demand 10@50, 10@40, 10@30; supply 10@20, 10@35, 10@45
    orders = [
        bid(1, 50, 10),
        bid(2, 40, 10),
        bid(3, 30, 10),
        offer(4, 20, 10),
        offer(5, 35, 10),
        offer(6, 45, 10),
    ]
    # when
    result = clear(orders)
    # then: 20 Wh clear; marginal bid 40, marginal offer 35, best left out: bid 30, offer 45
    assert result.volume == 20
    assert result.price == (35 + 40) // 2
    assert result.allocations == {1: 10, 2: 10, 4: 10, 5: 10}


def test_the_marginal_order_clears_in_part_and_sets_the_bounds():
    orders = [bid(1, 60, 15), offer(2, 10, 10), offer(3, 50, 10)]
    result = clear(orders)
    assert result.volume == 15
    assert result.allocations == {1: 15, 2: 10, 3: 5}
    # the rest of offer 3 (at 50) is left out: the price is in [50, min(60, 50)] = 50
    assert result.price == 50


def test_equal_prices_clear_by_arrival():
    orders = [bid(1, 40, 10, seq=2), bid(2, 40, 10, seq=1), offer(3, 10, 15)]
    result = clear(orders)
    assert result.allocations == {2: 10, 1: 5, 3: 15}


def test_nothing_crosses_or_one_side_is_empty():
    assert clear([bid(1, 10, 5), offer(2, 11, 5)]).price is None
    assert clear([bid(1, 10, 5)]).allocations == {}
    assert clear([]).volume == 0


orders_strategy = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.integers(min_value=0, max_value=20),
        st.integers(min_value=1, max_value=12),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=0, max_value=4),
    ),
    max_size=24,
).map(
    lambda rows: [
        SlotOrder(i + 1, s, p, q, seq, owner) for i, (s, p, q, seq, owner) in enumerate(rows)
    ]
)


@settings(max_examples=400, deadline=None)
@given(orders_strategy)
def test_self_trade_prevention_properties(orders):
    result = clear(orders)
    by_id = {o.id: o for o in orders}
    # netting is the reference's, Wh by Wh per owner
    assert result.netted == reference_netting(orders)
    for owner in {o.owner for o in orders}:
        mine = [o for o in orders if o.owner == owner]
        # the same volume leaves the owner's bids and its offers
        assert sum(result.netted_of(o.id) for o in mine if o.side == BUY) == sum(
            result.netted_of(o.id) for o in mine if o.side == SELL
        )
        # no owner ever ends up both buyer and seller
        sides = {o.side for o in mine if result.cleared(o.id)}
        assert len(sides) <= 1, (owner, sides)
        # what an owner has left does not cross itself
        left = remaining(mine, result.netted)
        bids = [o.price for o in left if o.side == BUY]
        offers = [o.price for o in left if o.side == SELL]
        if bids and offers:
            assert max(bids) < min(offers)
    # nothing is netted and cleared beyond the order's quantity
    for o in orders:
        assert result.netted_of(o.id) + result.cleared(o.id) <= by_id[o.id].quantity
    # owners that never cross themselves are not touched: distinct owners change nothing
    alone = [dataclasses.replace(o, owner=o.id) for o in orders]
    assert clear(alone).netted == {}


@settings(max_examples=400, deadline=None)
@given(orders_strategy)
def test_clearing_properties(orders):
    result = clear(orders)
    # the auction's properties hold among the orders left after self-trade prevention
    orders = remaining(orders, reference_netting(orders))
    by_id = {o.id: o for o in orders}
    # the volume is the most that can trade with every order within its limit
    assert result.volume == reference_volume(orders)
    # conservation: each side clears exactly the volume, no order beyond its quantity
    for side in (BUY, SELL):
        cleared = [q for i, q in result.allocations.items() if by_id[i].side == side]
        assert sum(cleared) == result.volume
    assert all(0 < q <= by_id[i].quantity for i, q in result.allocations.items())
    if result.volume == 0:
        assert result.price is None and result.allocations == {}
        return
    price = result.price
    for o in orders:
        got = result.cleared(o.id)
        if got:  # every cleared order accepts the price
            assert o.price >= price if o.side == BUY else o.price <= price
        # nobody left out who strictly beats the price
        if (o.side == BUY and o.price > price) or (o.side == SELL and o.price < price):
            assert got == o.quantity, (o, price)
    # priority: a side's cleared orders form a prefix of its ranking
    for side, key in (
        (BUY, lambda o: (-o.price, o.seq, o.id)),
        (SELL, lambda o: (o.price, o.seq, o.id)),
    ):
        ranked = sorted((o for o in orders if o.side == side), key=key)
        fills = [result.cleared(o.id) for o in ranked]
        partial = [i for i, (o, q) in enumerate(zip(ranked, fills, strict=True)) if q < o.quantity]
        if partial:
            first = partial[0]
            assert all(q == 0 for q in fills[first + 1 :]), (side, fills)


def test_clearing_is_independent_of_input_order():
    orders = [bid(1, 50, 7), offer(2, 20, 3), bid(3, 45, 4), offer(4, 44, 9), offer(5, 30, 2)]
    assert clear(orders) == clear(list(reversed(orders)))


def test_an_owners_crossing_bid_and_offer_are_netted_by_the_smaller_side():
    # given owner 7 bids 10 Wh at 50 and offers 6 Wh at 30; another bids 6 Wh at 40
    orders = [bid(1, 50, 10, owner=7), offer(2, 30, 6, owner=7), bid(3, 40, 6)]
    # when
    result = clear(orders)
    # then 6 Wh leave both of owner 7's orders; its bid's 4 Wh rest, with no offer to meet
    assert result.netted == {1: 6, 2: 6}
    assert (result.volume, result.price, result.allocations) == (0, None, {})


def test_owners_that_do_not_cross_themselves_clear_as_before():
    # given owner 7's bid (20) is below its own offer (30): no self-trade is possible
    orders = [bid(1, 20, 5, owner=7), offer(2, 30, 5, owner=7), bid(3, 40, 5), offer(4, 10, 5)]
    # when
    result = clear(orders)
    # then nothing is netted, 3 buys from 4 (at 25), and owner 7 trades nothing
    assert result.netted == {}
    assert (result.allocations, result.price) == ({3: 5, 4: 5}, 25)
