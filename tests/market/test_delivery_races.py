"""Real threads against PostgreSQL: concurrent settlements of one slot settle it once, and
settlements of two slots of the same parties do not deadlock or lose a cent."""

import pytest

from ledger.models import LedgerEntry, PendingEvent
from market import services
from market.models import JournalEntry, SettlementAccount, SlotSettlement, SlotSettlementLine
from market.replay import replay_market
from tests.certificates.conftest import run_together
from tests.conftest import requires_postgres
from tests.market.delivery_support import (
    SLOT,
    cleared_slot,
    consumed,
    fund,
    meter_for,
    produced,
    read,
)

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def _total():
    return sum(a + r for a, r in SettlementAccount.objects.values_list("available", "reserved"))


def _events(kind):
    return (
        PendingEvent.objects.filter(kind=kind).count()
        + LedgerEntry.objects.filter(kind=kind).count()
    )


def test_concurrent_settlements_of_one_slot_settle_it_once():
    # given a short seller (two offers) and two buyers, with a grid fee and fallback prices
    slot = cleared_slot(
        [(0, 30_000, 4_000), (0, 20_000, 5_000)],
        [(0, 25_000, 9_000), (1, 25_000, 8_000)],
        grid_fee_per_mwh=300,
        fallback_buy_price=12_000,
        fallback_sell_price=2_000,
    )
    fund(slot.sellers[0], 10_000)
    fund(slot.market.operator_id, 10_000)
    produced(slot.sellers[0], slot.start, 40_000)
    consumed(slot.buyers[0], slot.start, 25_000)
    consumed(slot.buyers[1], slot.start, 5_000)
    total = _total()

    # when four settlements of the slot run at the same moment
    results = run_together(
        lambda i: services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after), 4
    )

    # then all four return the one settlement, written once, and no cent was made or lost
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.pk for r in results}) == 1
    settlement = SlotSettlement.objects.get()
    assert (settlement.status, settlement.delivered_wh) == ("settled", 30_000)
    assert SlotSettlementLine.objects.count() == 4
    assert JournalEntry.objects.filter(kind="delivery").count() == 1
    assert _events("market.slot_settled") == 1
    assert _total() == total
    report = replay_market()
    assert report.ok, report.problems


def test_settlements_of_two_slots_with_the_same_parties_run_side_by_side():
    # given two cleared slots whose parties are the same organisations
    first = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 6_000)], fallback_buy_price=8_000)
    second = cleared_slot(
        [(0, 10_000, 5_000)],
        [(0, 10_000, 6_000)],
        sellers=first.sellers,
        ahead=SLOT * 100,
    )
    # the second slot's buyer is another organisation; its seller is the first's
    fund(first.sellers[0], 1_000)
    # one generation meter for the seller (a second meter would need readings of its own)
    meter = meter_for(first.sellers[0])
    for slot in (first, second):
        read(meter, slot.start, 6_000)
        consumed(slot.buyers[0], slot.start, 10_000)
    total = _total()

    # when both are settled at once, several times
    results = run_together(
        lambda i: services.slot_settle(
            clearing_id=(first, second)[i % 2].clearing.pk, now=second.after
        ),
        4,
    )

    # then each slot is settled once and the money adds up
    assert [r for r in results if isinstance(r, Exception)] == []
    assert SlotSettlement.objects.filter(status="settled").count() == 2
    assert _events("market.slot_settled") == 2
    assert _total() == total
    report = replay_market()
    assert report.ok, report.problems
