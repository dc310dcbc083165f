"""Real threads against PostgreSQL: a slot clears once, and an order racing its clearing
either makes it into the slot or is refused `gate_closed`."""

import datetime as dt

import pytest

from ledger.models import LedgerEntry, PendingEvent
from market import clearing, services
from market.models import Order, SettlementAccount, SlotClearing
from market.replay import replay_market
from registry.errors import DomainError
from tests.certificates.conftest import run_together
from tests.conftest import requires_postgres
from tests.market.factories import EnergyMarketFactory, next_slot, trader

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
SLOT = dt.timedelta(minutes=15)


def _totals():
    rows = list(SettlementAccount.objects.values_list("kind", "available", "reserved"))
    return sum(a + r for _, a, r in rows), sum(a + r for k, a, r in rows if k == "member")


def _place(market, who, side, quantity, price, slot):
    return services.order_place(
        actor=who.user,
        market_id=market.pk,
        side=side,
        limit_price=price,
        quantity_wh=quantity,
        account_id=who.account.pk,
        slot_start=slot,
    ).order


def test_concurrent_clearings_of_one_slot_clear_it_once():
    # given a slot with crossing bids and offers
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyers, sellers = [trader(50_000) for _ in range(4)], [trader() for _ in range(4)]
    orders = [
        _place(market, b, "buy", 1_000 + 500 * i, 6_000 + 1_000 * i, slot)
        for i, b in enumerate(buyers)
    ]
    orders += [
        _place(market, s, "sell", 1_500, 4_000 + 1_500 * i, slot) for i, s in enumerate(sellers)
    ]
    expected = clearing.clear(
        [
            clearing.SlotOrder(o.pk, o.side, o.limit_price, o.quantity_wh, o.seq, o.organisation_id)
            for o in orders
        ]
    )
    totals = _totals()

    # when four clearings of the slot run at the same moment
    results = run_together(
        lambda i: services.slot_clear(market_id=market.pk, slot_start=slot, now=slot), 4
    )

    # then all four return the one clearing, recorded once, with clear()'s result
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.pk for r in results}) == 1
    record = SlotClearing.objects.get()
    assert (record.price, record.volume_wh) == (expected.price, expected.volume)
    assert expected.volume > 0
    kind = "market.slot_cleared"
    # queued or already numbered by the integrator
    assert (
        PendingEvent.objects.filter(kind=kind).count()
        + LedgerEntry.objects.filter(kind=kind).count()
    ) == 1
    for order in Order.objects.all():
        assert (order.filled_wh, order.clearing_id) == (expected.cleared(order.pk), record.pk)
    assert _totals() == totals
    assert replay_market().ok


def test_an_order_racing_the_clearing_is_in_the_slot_or_refused_gate_closed():
    # given, five slots over: a resting bid and offer, then the slot's clearing racing
    # five more orders for the slot
    market = EnergyMarketFactory()
    first = next_slot(market)
    buyer, seller = trader(1_000_000), trader()
    racers = [trader(100_000) for _ in range(5)]
    totals = None
    outcomes = {"in": 0, "refused": 0}
    for n in range(5):
        slot = first + n * SLOT
        _place(market, buyer, "buy", 2_000, 8_000, slot)
        _place(market, seller, "sell", 2_000, 5_000, slot)
        totals = _totals()

        def work(i: int, slot=slot):
            if i == 0:
                return services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)
            side = "buy" if i % 2 else "sell"
            return _place(market, racers[i - 1], side, 500, 6_000 + 100 * i, slot)

        # when
        results = run_together(work, 6)

        # then the clearing ran once, and each racing order is in it or refused
        record = results[0]
        assert isinstance(record, SlotClearing), record
        in_slot = set(Order.objects.filter(slot_start=slot).values_list("pk", flat=True))
        for result in results[1:]:
            if isinstance(result, DomainError):
                assert result.code == "gate_closed"
                outcomes["refused"] += 1
            else:
                assert not isinstance(result, Exception), result
                result.refresh_from_db()
                assert result.clearing_id == record.pk and result.status != "open"
                outcomes["in"] += 1
        assert Order.objects.filter(pk__in=in_slot, clearing__isnull=True).count() == 0
        assert record.orders_count == len(in_slot)
        assert _totals() == totals
    assert sum(outcomes.values()) == 25
    assert replay_market().ok
