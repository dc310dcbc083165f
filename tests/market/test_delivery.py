"""Delivery settlement of cleared energy slots against the parties' meter readings."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from market import delivery, services
from market.models import JournalEntry, SettlementAccount, SlotSettlement, SlotSettlementLine
from market.replay import replay_market
from tests.market.delivery_support import (
    MINUTE,
    SLOT,
    cleared_slot,
    consumed,
    fund,
    meter_for,
    money,
    operator_money,
    produced,
    read,
)
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def lines_of(settlement):
    return {
        line.order_id: (
            line.delivered_wh,
            line.surplus_wh,
            line.shortfall_wh,
            line.amount_minor,
            line.released_minor,
            line.charge_minor,
            line.surplus_paid_minor,
            line.uncollected_minor,
        )
        for line in SlotSettlementLine.objects.filter(settlement=settlement)
    }


def total_money():
    rows = SettlementAccount.objects.values_list("available", "reserved")
    return sum(a + r for a, r in rows)


# ---------------------------------------------------------------- pure rules


def test_pro_rata_gives_leftover_units_to_the_largest_remainders_then_the_smallest_key():
    assert delivery.pro_rata(10, {3: 1, 1: 1, 2: 1}) == {1: 4, 2: 3, 3: 3}
    assert delivery.pro_rata(5, {7: 2, 9: 3}) == {7: 2, 9: 3}
    # 7 x 1/4 = 1.75 and 7 x 3/4 = 5.25: the one left over goes to the larger remainder
    assert delivery.pro_rata(7, {1: 1, 2: 3}) == {1: 2, 2: 5}
    assert delivery.pro_rata(0, {1: 5}) == {1: 0}
    assert delivery.pro_rata(3, {1: 0, 2: 0}) == {1: 0, 2: 0}


def test_every_order_splits_its_cleared_wh_into_delivered_surplus_and_shortfall():
    orders = [
        delivery.DeliveryOrder(1, "sell", 10, 333),
        delivery.DeliveryOrder(2, "sell", 10, 667),
        delivery.DeliveryOrder(3, "sell", 11, 500),
        delivery.DeliveryOrder(4, "buy", 20, 1_000),
        delivery.DeliveryOrder(5, "buy", 21, 500),
    ]
    result = delivery.settle(
        price=77_777,
        orders=orders,
        metered={("sell", 10): 700, ("sell", 11): 900, ("buy", 20): 1_000, ("buy", 21): 101},
        fallback_buy_price=1,
        fallback_sell_price=1,
        grid_fee_per_mwh=5_000,
    )
    for r in result.orders:
        assert r.delivered + r.surplus + r.shortfall == r.cleared
        assert min(r.delivered, r.surplus, r.shortfall) >= 0
    assert result.delivered == 1_101  # min(700 + 500, 1,000 + 101)
    assert sum(r.delivered for r in result.orders if r.side == "sell") == 1_101
    assert sum(r.delivered for r in result.orders if r.side == "buy") == 1_101
    assert result.pot == sum(r.amount for r in result.orders if r.side == "buy")
    assert result.pot == result.grid_fee + sum(r.amount for r in result.orders if r.side == "sell")


# ---------------------------------------------------------------- settling


def test_full_delivery_pays_the_seller_from_the_buyers_escrow_less_the_grid_fee():
    # given 100,000 Wh cleared at EUR 70/MWh (midpoint of 50 and 90), fee EUR 2/MWh
    slot = cleared_slot([(0, 100_000, 5_000)], [(0, 100_000, 9_000)], grid_fee_per_mwh=200)
    (seller,), (buyer,) = slot.sellers, slot.buyers
    offer, bid = slot.orders
    assert (slot.clearing.price, bid.reserved_minor) == (7_000, 700)
    produced(seller, slot.start, 120_000)
    consumed(buyer, slot.start, 150_000)
    before, money_before = last_event_id(), total_money()

    # when
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then the buyer paid 700, the grid fee is 20, the seller got 680
    assert (settlement.status, settlement.reason, settlement.delivered_wh) == (
        "settled",
        "",
        100_000,
    )
    assert (settlement.buyers_paid_minor, settlement.grid_fee_minor) == (700, 20)
    assert settlement.sellers_received_minor == 680
    assert lines_of(settlement) == {
        offer.pk: (100_000, 0, 0, 680, 0, 0, 0, 0),
        bid.pk: (100_000, 0, 0, 700, 0, 0, 0, 0),
    }
    assert money(buyer) == (100_000 - 700, 0)
    assert money(seller) == (680, 0)
    assert operator_money(slot.market) == (20, 0)
    bid.refresh_from_db()
    assert bid.reserved_minor == 0
    assert total_money() == money_before
    [event] = events_since(before)
    assert event["type"] == "market.slot_settled"
    for subject in (
        f"slot_settlement:{settlement.pk}",
        f"slot_clearing:{slot.clearing.pk}",
        f"market:{slot.market.pk}",
        f"order:{offer.pk}",
        f"order:{bid.pk}",
    ):
        assert subject in event["subject"]
    entries = JournalEntry.objects.filter(kind="delivery")
    assert [f"journal_entry:{e.pk}" in event["subject"] for e in entries] == [True]
    for line in event["data"]["journal"]:
        assert sum(amount for _a, _b, amount in line["lines"]) == 0


def test_a_short_seller_delivers_pro_rata_across_its_orders_and_pays_the_shortfall():
    # given one seller with two offers (60,000 and 40,000 Wh) cleared at EUR 70/MWh
    slot = cleared_slot(
        [(0, 60_000, 4_000), (0, 40_000, 5_000)],
        [(0, 100_000, 9_000)],
        fallback_buy_price=10_000,
    )
    (seller,), (buyer,) = slot.sellers, slot.buyers
    first, second, bid = slot.orders
    assert slot.clearing.price == 7_000
    fund(seller, 1_000)
    produced(seller, slot.start, 50_000)  # half of what it sold
    consumed(buyer, slot.start, 100_000)

    # when
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then 50,000 Wh delivered (30,000 + 20,000); the buyer pays 350 of its 700 escrow;
    # the seller gets 210 + 140 and pays EUR 100/MWh on 30,000 + 20,000 Wh short
    assert settlement.delivered_wh == 50_000
    assert lines_of(settlement) == {
        first.pk: (30_000, 0, 30_000, 210, 0, 300, 0, 0),
        second.pk: (20_000, 0, 20_000, 140, 0, 200, 0, 0),
        bid.pk: (50_000, 0, 50_000, 350, 350, 0, 0, 0),
    }
    assert money(buyer) == (100_000 - 350, 0)
    assert money(seller) == (1_000 + 350 - 500, 0)
    assert operator_money(slot.market) == (500, 0)
    assert settlement.shortfall_charged_minor == 500 and settlement.uncollected_minor == 0


def test_a_shortfall_charge_beyond_the_sellers_funds_is_recorded_uncollected():
    # given a seller without funds that delivers nothing
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)], fallback_buy_price=20_000)
    (seller,), (buyer,) = slot.sellers, slot.buyers
    produced(seller, slot.start, 0)
    consumed(buyer, slot.start, 10_000)

    # when
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then the charge of 200 is not collected; the buyer gets its 50 back
    assert (settlement.delivered_wh, settlement.shortfall_charged_minor) == (0, 0)
    assert settlement.uncollected_minor == 200
    assert money(seller) == (0, 0) and money(buyer) == (100_000, 0)


def test_a_surplus_is_paid_by_the_operator_at_the_fallback_sell_price():
    # given the buyer consumes 40% of what it bought; the operator holds EUR 10
    slot = cleared_slot([(0, 100_000, 5_000)], [(0, 100_000, 9_000)], fallback_sell_price=3_000)
    (seller,), (buyer,) = slot.sellers, slot.buyers
    offer, bid = slot.orders
    fund(slot.market.operator_id, 1_000)
    produced(seller, slot.start, 100_000)
    consumed(buyer, slot.start, 40_000)

    # when
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then 40,000 Wh through the market (280), 60,000 Wh of surplus paid EUR 30/MWh (180)
    assert lines_of(settlement) == {
        offer.pk: (40_000, 60_000, 0, 280, 0, 0, 180, 0),
        bid.pk: (40_000, 60_000, 0, 280, 420, 0, 0, 0),
    }
    assert money(seller) == (280 + 180, 0)
    assert money(buyer) == (100_000 - 280, 0)
    assert operator_money(slot.market) == (1_000 - 180, 0)


def test_pro_rata_between_buyers_and_leftover_cents_go_to_the_largest_remainder():
    # given two sellers, three buyers of 1,000 Wh each at EUR 333.33/MWh
    slot = cleared_slot(
        [(0, 1_500, 33_333), (1, 1_500, 33_333)],
        [(0, 1_000, 33_333), (1, 1_000, 33_333), (2, 1_000, 33_333)],
    )
    for seller in slot.sellers:
        produced(seller, slot.start, 1_000)  # 2,000 of 3,000 Wh
    for buyer in slot.buyers:
        consumed(buyer, slot.start, 1_000)

    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # then 2,000 Wh shared 667 / 667 / 666 among the buyers (ties: smallest id first)
    lines = lines_of(settlement)
    bids = [o.pk for o in slot.orders if o.side == "buy"]
    assert [lines[pk][0] for pk in bids] == [667, 667, 666]
    # each pays 667 x 33,333 / 10^6 = 22.23 -> 22 (666 -> 22); the pot of 66 is split 33 / 33
    assert [lines[pk][3] for pk in bids] == [22, 22, 22]
    offers = [o.pk for o in slot.orders if o.side == "sell"]
    assert [lines[pk][0] for pk in offers] == [1_000, 1_000]
    assert [lines[pk][3] for pk in offers] == [33, 33]


# ---------------------------------------------------------------- waiting, fallback, once


def test_missing_readings_wait_then_settle_at_fallback_after_the_grace_period():
    # given the buyer has no consumption readings; grace 60 minutes
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)], settlement_grace_minutes=60)
    (seller,), (buyer,) = slot.sellers, slot.buyers
    produced(seller, slot.start, 10_000)
    before, balances = last_event_id(), money(buyer)

    # when settled within the grace period, twice
    waiting = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)
    again = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after + MINUTE)

    # then it waits with the reason and the missing organisation, once, and moves nothing
    assert (waiting.status, waiting.reason) == ("waiting", "missing_readings")
    assert waiting.missing_organisations == [buyer.account.organisation_id]
    assert again.pk == waiting.pk
    assert [e["type"] for e in events_since(before)] == ["market.slot_settlement_waiting"]
    assert money(buyer) == balances and not SlotSettlementLine.objects.exists()

    # when the grace period is over
    done = services.slot_settle(
        clearing_id=slot.clearing.pk, now=slot.start + SLOT + dt.timedelta(minutes=60)
    )

    # then it settles with the buyer's consumption counted 0: the escrow goes back
    assert (done.pk, done.status, done.reason) == (
        waiting.pk,
        "settled",
        "fallback_missing_readings",
    )
    assert done.delivered_wh == 0 and done.released_minor == 50
    assert money(buyer) == (100_000, 0)


def test_readings_arriving_within_the_grace_period_settle_normally():
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    (seller,), (buyer,) = slot.sellers, slot.buyers
    produced(seller, slot.start, 10_000)
    meter = meter_for(buyer, "consumption")
    # an hourly-style reading covering only half the slot is not enough
    read(meter, slot.start, 3_000, minutes=7)
    assert services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after).status == "waiting"
    read(meter, slot.start + dt.timedelta(minutes=7), 7_000, minutes=8)

    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    assert (settlement.status, settlement.reason, settlement.delivered_wh) == (
        "settled",
        "",
        10_000,
    )


def test_a_reading_longer_than_the_slot_counts_pro_rata_to_time():
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    (seller,), (buyer,) = slot.sellers, slot.buyers
    read(meter_for(seller), slot.start - dt.timedelta(minutes=15), 20_003, minutes=60)
    consumed(buyer, slot.start, 10_000)

    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)

    # a quarter of 20,003 Wh, rounded down
    assert settlement.delivered_wh == 5_000
    assert SlotSettlementLine.objects.get(side="sell").metered_wh == 5_000


def test_a_second_settlement_returns_the_first_and_changes_nothing():
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    produced(slot.sellers[0], slot.start, 10_000)
    consumed(slot.buyers[0], slot.start, 10_000)
    first = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)
    before, balances = last_event_id(), list(SettlementAccount.objects.values_list("available"))

    second = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after + SLOT)

    assert second.pk == first.pk and second.status == "settled"
    assert events_since(before) == []
    assert list(SettlementAccount.objects.values_list("available")) == balances


def test_refusals_change_nothing(refused):
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    produced(slot.sellers[0], slot.start, 10_000)
    consumed(slot.buyers[0], slot.start, 10_000)

    refused(
        lambda: services.slot_settle(
            clearing_id=slot.clearing.pk, actor=slot.buyers[0].user, now=slot.after
        ),
        "not_market_operator",
        403,
    )
    refused(
        lambda: services.slot_settle(clearing_id=10**9, now=slot.after),
        "slot_clearing_not_found",
        404,
    )
    refused(
        lambda: services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after - 2 * MINUTE),
        "slot_not_delivered",
        409,
    )
    assert not SlotSettlement.objects.exists()


# ---------------------------------------------------------------- due, command, replay


def test_settle_due_and_the_command_settle_every_ended_slot_and_replay_agrees(capsys):
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)], fallback_buy_price=9_000)
    fund(slot.sellers[0], 100)
    produced(slot.sellers[0], slot.start, 4_000)
    consumed(slot.buyers[0], slot.start, 10_000)
    assert services.slot_settle_due(now=slot.start + SLOT - MINUTE) == []

    [settlement] = services.slot_settle_due(now=slot.after)

    assert settlement.delivered_wh == 4_000
    assert services.slot_settle_due(now=slot.after) == []
    call_command("settle_slots")
    assert "0 slot(s) settled." in capsys.readouterr().out
    report = replay_market()
    assert report.ok, report.problems
    call_command("replay_ledger")  # raises CommandError on any difference


def test_replay_sees_a_settlement_changed_behind_the_services():
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)])
    produced(slot.sellers[0], slot.start, 10_000)
    consumed(slot.buyers[0], slot.start, 10_000)
    services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)
    assert replay_market().ok

    SlotSettlement.objects.update(
        status="waiting", reason="missing_readings", delivered_wh=0, certificates_pending_wh=0
    )
    SettlementAccount.objects.filter(
        organisation_id=slot.sellers[0].account.organisation_id
    ).update(available=0)

    problems = replay_market().problems
    assert any("settled slots differ" in p for p in problems)
    assert any("settlement account" in p for p in problems)
    with pytest.raises(CommandError):
        call_command("replay_ledger")
