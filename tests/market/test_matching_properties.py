"""Properties of the pure matching engine (market/matching.py), checked with Hypothesis.

Random sequences of orders from a few owners, with and without criteria, every time in
force and minimum fills, go through an in-memory Book; after each one the rules must hold.
"""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from market import matching
from market.matching import BUY, FOK, GTC, IOC, SELL, Attributes, Book, Criteria, Order

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
HOURS = [NOW - dt.timedelta(hours=h) for h in (1, 2, 30)]
TECHS = ["T020001", "T030001"]

attributes = st.builds(
    lambda tech, hour, device: Attributes(
        technology_code=tech,
        energy_source_code="F01",
        country="DE",
        grid_area_code="A",
        device_id=device,
        period_start=hour,
        period_end=hour + dt.timedelta(hours=1),
    ),
    st.sampled_from(TECHS),
    st.sampled_from(HOURS),
    st.integers(1, 2),
)
criteria = st.one_of(
    st.just(matching.ANY),
    st.builds(Criteria, technology_code=st.sampled_from(TECHS)),
    st.builds(
        lambda h: Criteria(period_from=h, period_to=h + dt.timedelta(hours=1)),
        st.sampled_from(HOURS),
    ),
    st.builds(Criteria, max_age_days=st.just(1)),
    st.builds(Criteria, device_id=st.integers(1, 2)),
)


@st.composite
def orders(draw):
    side = draw(st.sampled_from([BUY, SELL]))
    quantity = draw(st.integers(1, 50))
    return dict(
        side=side,
        price=draw(st.integers(90, 110)),
        quantity=quantity,
        owner=draw(st.integers(1, 4)),
        tif=draw(st.sampled_from([GTC, GTC, GTC, IOC, FOK])),
        min_fill=draw(st.one_of(st.just(0), st.integers(1, quantity))),
        attributes=draw(attributes) if side == SELL else None,
        criteria=draw(criteria) if side == BUY else matching.ANY,
    )


sequences = st.lists(orders(), min_size=1, max_size=40)


def run(specs):
    """Submit every order; yield (order, book before, outcome, book after)."""
    book = Book()
    for seq, spec in enumerate(specs, start=1):
        order = Order(id=seq, seq=seq, **spec)
        before = dict(book.orders)
        outcome = book.submit(order, now=NOW)
        yield order, before, outcome, book


def check_never_crossed(order, before, outcome, book, state) -> None:
    assert book.crossed_pairs(now=NOW) == []


def check_conservation(order, before, outcome, book, state) -> None:
    filled, submitted = state.setdefault("filled", {}), state.setdefault("submitted", {})
    submitted[order.id] = order.quantity
    # every Wh of the incoming order traded, rests or was cancelled, once
    assert outcome.filled + outcome.resting + outcome.cancelled == order.quantity
    for fill in outcome.fills:
        assert 0 < fill.quantity <= before[fill.maker_id].quantity
        filled[fill.maker_id] = filled.get(fill.maker_id, 0) + fill.quantity
    filled[order.id] = filled.get(order.id, 0) + outcome.filled
    for pk, total in filled.items():
        assert total <= submitted[pk]
    for resting in book.orders.values():
        assert resting.quantity == submitted[resting.id] - filled.get(resting.id, 0)


def check_prices(order, before, outcome, book, state) -> None:
    for fill in outcome.fills:
        maker = before[fill.maker_id]
        assert fill.price == maker.price
        buy, sell = (order, maker) if order.side == BUY else (maker, order)
        assert sell.price <= fill.price <= buy.price
        assert buy.owner != sell.owner
        assert matching.compatible(buy, sell, NOW)


def rank(order: Order) -> tuple[int, int]:
    """Price-time priority, written out here rather than taken from the engine."""
    return (order.price, order.seq) if order.side == SELL else (-order.price, order.seq)


def check_priority(order, before, outcome, book, state) -> None:
    if not outcome.fills:
        return
    makers = [before[f.maker_id] for f in outcome.fills]
    # the makers are taken best first
    assert [rank(m) for m in makers] == sorted(rank(m) for m in makers)
    # and no compatible order placed better than the last one taken was passed over (of
    # another owner it should have traded; of the same owner, self-trade prevention
    # should have stopped the order there)
    taken = {m.id for m in makers}
    for other in before.values():
        if other.side == order.side or other.id in taken:
            continue
        buy, sell = (order, other) if order.side == BUY else (other, order)
        if rank(other) < rank(makers[-1]) and matching.compatible(buy, sell, NOW):
            raise AssertionError(f"{other} passed over for {makers}")


def check_time_in_force(order, before, outcome, book, state) -> None:
    if order.tif == FOK:
        assert outcome.filled in (0, order.quantity)
    if order.tif != GTC:
        assert outcome.resting == 0 and order.id not in book.orders
    if order.min_fill:
        assert outcome.filled == 0 or outcome.filled >= order.min_fill
    if outcome.resting:
        assert book.orders[order.id].quantity == outcome.resting


CHECKS = [
    check_never_crossed,
    check_conservation,
    check_prices,
    check_priority,
    check_time_in_force,
]


@settings(max_examples=150, deadline=None)
@given(sequences)
def test_engine_properties_hold_after_every_order(specs):
    """No crossed book; conservation, no overfill; resting price within both limits;
    price-time priority; time in force and minimum fill."""
    state: dict = {}
    for step in run(specs):
        for check in CHECKS:
            check(*step, state)


def test_amounts_round_down_per_trade_and_escrow_covers_any_split():
    # 1 Wh at EUR 0.01/MWh is 0.00001 cents: nothing; escrow for it is a whole cent
    assert matching.amount_for(1, 1) == 0
    assert matching.escrow_for(1, 1) == 1
    for price in (1, 999, 4_000, 123_457):
        for total in (1, 7, 1_000, 999_999, 2_000_001):
            parts = [total // 3, total // 3, total - 2 * (total // 3)]
            paid = sum(matching.amount_for(price, p) for p in parts if p)
            assert paid <= matching.escrow_for(price, total)
