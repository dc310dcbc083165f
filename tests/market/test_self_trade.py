"""Self-trade prevention in the uniform-price clearing of energy slots (`slot_clear`).

An organisation's crossing bid and offer volume in one slot is netted before the slot
clears: the netted Wh leave both orders (`cancel_reason: self_trade_netted`), the
`market.slot_cleared` event says how many Wh each order lost, and a netted bid's escrow
for those Wh goes back to available funds.
"""

import pytest

from market import clearing, matching, services
from market.models import Order
from market.replay import replay_market
from tests.market.factories import EnergyMarketFactory, next_slot, trader
from tests.market.test_slots import all_balances, money, place
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def expected_clearing(orders):
    return clearing.clear(
        [
            clearing.SlotOrder(o.pk, o.side, o.limit_price, o.quantity_wh, o.seq, o.organisation_id)
            for o in orders
        ]
    )


def test_an_organisations_crossing_bid_and_offer_are_netted_before_the_slot_clears():
    # given a prosumer bidding 3,000 Wh at 90.00 and offering 2,000 Wh at 40.00 in one
    # slot, another bidder (1,000 Wh at 80.00) and another seller (1,500 Wh at 50.00)
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer, buyer, seller = trader(100_000), trader(100_000), trader()
    own_bid = place(market, prosumer, "buy", 3_000, 9_000, slot)
    own_offer = place(market, prosumer, "sell", 2_000, 4_000, slot)
    other_bid = place(market, buyer, "buy", 1_000, 8_000, slot)
    other_offer = place(market, seller, "sell", 1_500, 5_000, slot)
    orders = [own_bid, own_offer, other_bid, other_offer]
    expected = expected_clearing(orders)
    totals = all_balances()
    before = last_event_id()

    # when the slot clears
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # then 2,000 Wh leave both of the prosumer's orders; the rest clears at 80.00:
    # the prosumer's remaining 1,000 Wh and 500 Wh of the other bid, against the offer
    assert expected.netted == {own_bid.pk: 2_000, own_offer.pk: 2_000}
    assert (record.price, record.volume_wh) == (expected.price, expected.volume) == (8_000, 1_500)
    rows = {o.pk: o for o in Order.objects.filter(clearing=record)}
    assert {pk: (o.status, o.filled_wh, o.cancel_reason) for pk, o in rows.items()} == {
        own_bid.pk: ("partially_cleared", 1_000, "self_trade_netted"),
        own_offer.pk: ("unfilled", 0, "self_trade_netted"),
        other_bid.pk: ("partially_cleared", 500, ""),
        other_offer.pk: ("cleared", 1_500, ""),
    }
    assert all(rows[o.pk].filled_wh == expected.cleared(o.pk) for o in orders)
    # the prosumer buys and does not sell; its escrow keeps only the cleared 1,000 Wh at
    # the clearing price: the netted 2,000 Wh (and the price difference) are released
    keep = matching.escrow_for(8_000, 1_000)
    assert rows[own_bid.pk].reserved_minor == keep == 8
    assert money(prosumer) == (100_000 - keep, keep)
    assert money(buyer) == (100_000 - 4, 4)
    assert all_balances() == totals
    # one event: each order says how many Wh self-trade prevention took out of it
    [event] = events_since(before)
    assert event["type"] == "market.slot_cleared"
    assert {f"order:{o.pk}" for o in orders} <= set(event["subject"])
    by_order = {o["order_id"]: o for o in event["data"]["orders"]}
    assert {pk: o["self_trade_netted_wh"] for pk, o in by_order.items()} == {
        own_bid.pk: 2_000,
        own_offer.pk: 2_000,
        other_bid.pk: 0,
        other_offer.pk: 0,
    }
    assert by_order[own_offer.pk]["cancel_reason"] == "self_trade_netted"
    assert replay_market().ok


def test_a_fully_netted_slot_clears_nothing_and_releases_the_whole_escrow():
    # given only one organisation's bid and offer that cross, of the same volume
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer = trader(10_000)
    own_bid = place(market, prosumer, "buy", 1_000, 6_000, slot)
    own_offer = place(market, prosumer, "sell", 1_000, 5_000, slot)
    assert money(prosumer) == (10_000 - 6, 6)
    totals = all_balances()
    before = last_event_id()

    # when
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # then nothing trades, both orders lose all their Wh, the escrow is back in full
    assert (record.price, record.volume_wh) == (None, 0)
    for order in (own_bid, own_offer):
        order.refresh_from_db()
        assert (order.status, order.filled_wh, order.reserved_minor, order.cancel_reason) == (
            "unfilled",
            0,
            0,
            "self_trade_netted",
        )
    assert money(prosumer) == (10_000, 0)
    assert all_balances() == totals
    [event] = events_since(before)
    assert [o["self_trade_netted_wh"] for o in event["data"]["orders"]] == [1_000, 1_000]
    [release] = event["data"]["journal"]
    assert sum(amount for _account, _bucket, amount in release["lines"]) == 0
    assert replay_market().ok


def test_an_organisation_whose_orders_do_not_cross_still_trades_on_one_side():
    # given a prosumer bidding at 30.00 and offering at 60.00, and a buyer at 70.00
    market = EnergyMarketFactory()
    slot = next_slot(market)
    prosumer, buyer = trader(10_000), trader(10_000)
    own_bid = place(market, prosumer, "buy", 1_000, 3_000, slot)
    own_offer = place(market, prosumer, "sell", 1_000, 6_000, slot)
    place(market, buyer, "buy", 1_000, 7_000, slot)

    # when
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # then nothing is netted: the prosumer sells to the buyer, its bid stays unfilled
    own_bid.refresh_from_db()
    own_offer.refresh_from_db()
    assert (record.volume_wh, own_offer.status, own_offer.cancel_reason) == (1_000, "cleared", "")
    assert (own_bid.status, own_bid.cancel_reason, own_bid.reserved_minor) == ("unfilled", "", 0)
    assert money(prosumer) == (10_000, 0)
