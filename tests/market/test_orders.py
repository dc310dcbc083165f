"""Placing, matching and settling certificate orders through the service layer."""

import datetime as dt

import pytest

from certificates.models import Bundle
from market import services
from market.models import Order, SettlementAccount, Trade
from tests.factories import OrganisationFactory, issuing_body_user
from tests.market.factories import (
    MarketFactory,
    buyer_with_funds,
    deposit,
    seller_with_bundles,
)
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
EUR_50 = 5_000  # EUR 50.00 per MWh in cents


def offer(market, seller, bundle=None, price=EUR_50, **kw):
    return services.order_place(
        actor=seller.user,
        market_id=market.pk,
        side="sell",
        limit_price=price,
        bundle_id=(bundle or seller.bundles[0]).pk,
        **kw,
    )


def bid(market, buyer, quantity, price=EUR_50, **kw):
    return services.order_place(
        actor=buyer.user,
        market_id=market.pk,
        side="buy",
        limit_price=price,
        quantity_wh=quantity,
        account_id=buyer.account.pk,
        **kw,
    )


def money(organisation_id):
    account = SettlementAccount.objects.get(organisation_id=organisation_id)
    return account.available, account.reserved


def test_an_offer_reserves_its_units_and_rests_in_the_book():
    # given
    market = MarketFactory()
    seller = seller_with_bundles()
    before = last_event_id()

    # when
    placed = offer(market, seller, quantity_wh=600)

    # then
    order = placed.order
    assert (order.status, order.quantity_wh, order.filled_wh) == ("open", 600, 0)
    reserved = Bundle.objects.get(pk=order.bundle_id)
    assert reserved.status == Bundle.Status.RESERVED and reserved.volume_wh == 600
    assert (
        order.technology_code == "T020001" and order.period_start == seller.bundles[0].period_start
    )
    [event] = events_since(before)
    assert event["type"] == "order.placed"
    assert f"order:{order.pk}" in event["subject"]
    assert f"bundle:{reserved.pk}" in event["subject"]
    assert event["data"]["trades"] == [] and event["data"]["units"][0]["volume_wh"] == 600


def test_a_crossing_bid_buys_at_the_offer_price_and_settles_units_money_and_fee_at_once():
    # given an offer of 1,000 Wh at EUR 50/MWh in a market with a 1% fee
    market = MarketFactory(fee_bps=100)
    seller = seller_with_bundles()
    resting = offer(market, seller).order
    buyer = buyer_with_funds(10_000)
    before = last_event_id()

    # when a bid for 400 Wh at EUR 60/MWh arrives
    placed = bid(market, buyer, 400, price=6_000)

    # then it trades 400 Wh at the resting price: 400 Wh x EUR 50/MWh = 2 cents
    [trade] = placed.trades
    assert (trade.price, trade.quantity_wh, trade.amount_minor, trade.fee_minor) == (
        5_000,
        400,
        2,
        0,
    )
    assert placed.order.status == "filled"
    delivered = Bundle.objects.get(pk=trade.bundle_id)
    assert (delivered.account_id, delivered.status, delivered.volume_wh) == (
        buyer.account.pk,
        Bundle.Status.ACTIVE,
        400,
    )
    resting.refresh_from_db()
    assert (resting.status, resting.filled_wh) == ("open", 400)
    rest = Bundle.objects.get(pk=resting.bundle_id)
    assert (rest.status, rest.volume_wh, rest.account_id) == (
        Bundle.Status.RESERVED,
        600,
        seller.account.pk,
    )
    assert money(buyer.account.organisation_id) == (10_000 - 2, 0)
    assert money(seller.account.organisation_id) == (2, 0)
    [event] = events_since(before)
    assert event["type"] == "order.placed"
    for key in (
        f"order:{placed.order.pk}",
        f"order:{resting.pk}",
        f"trade:{trade.pk}",
        f"bundle:{delivered.pk}",
        f"account:{buyer.account.pk}",
    ):
        assert key in event["subject"]
    assert all(sum(line[2] for line in e["lines"]) == 0 for e in event["data"]["journal"])


def test_the_fee_goes_to_the_operator_and_the_seller_gets_the_rest():
    # given EUR 500/MWh, 2% fee
    market = MarketFactory(fee_bps=200)
    seller = seller_with_bundles(wh=10_000)
    offer(market, seller, price=50_000)
    buyer = buyer_with_funds(1_000)

    # when 10,000 Wh = 10 kWh at EUR 500/MWh = EUR 5.00
    placed = bid(market, buyer, 10_000, price=50_000)

    # then
    [trade] = placed.trades
    assert (trade.amount_minor, trade.fee_minor) == (500, 10)
    assert money(buyer.account.organisation_id) == (500, 0)
    assert money(seller.account.organisation_id) == (490, 0)
    assert money(market.operator_id) == (10, 0)
    total = sum(SettlementAccount.objects.values_list("available", flat=True))
    assert total == 0  # the external account holds minus what members hold


def test_price_time_priority_best_price_first_then_arrival():
    # given three offers: 60 (first), 50 (second), 50 (third)
    market = MarketFactory()
    sellers = [seller_with_bundles() for _ in range(3)]
    a = offer(market, sellers[0], price=6_000).order
    b = offer(market, sellers[1], price=5_000).order
    c = offer(market, sellers[2], price=5_000).order
    buyer = buyer_with_funds(100_000)

    # when a bid takes 1,500 Wh at up to 60
    placed = bid(market, buyer, 1_500, price=6_000)

    # then b fills first, then c in part; a is untouched
    assert [(t.sell_order_id, t.quantity_wh, t.price) for t in placed.trades] == [
        (b.pk, 1_000, 5_000),
        (c.pk, 500, 5_000),
    ]
    a.refresh_from_db()
    assert a.filled_wh == 0


def test_a_bid_escrows_funds_at_its_limit_and_keeps_the_rest_resting():
    # given no offers
    market = MarketFactory()
    buyer = buyer_with_funds(10_000)

    # when a bid for 2 MWh at EUR 30/MWh rests
    placed = bid(market, buyer, 2_000_000, price=3_000)

    # then EUR 60 are reserved
    assert placed.order.status == "open" and placed.order.reserved_minor == 6_000
    assert money(buyer.account.organisation_id) == (4_000, 6_000)


def test_an_offer_fills_resting_bids_at_their_price_and_releases_their_escrow():
    # given a resting bid of 2,000 Wh at EUR 600/MWh (escrow 120 cents)
    market = MarketFactory()
    buyer = buyer_with_funds(1_000)
    resting = bid(market, buyer, 2_000, price=60_000).order
    seller = seller_with_bundles()

    # when an offer of 1,000 Wh at EUR 500/MWh arrives
    placed = offer(market, seller, price=50_000)

    # then it trades at the bid's price (60 cents) and the bid keeps 60 cents for 1,000 Wh
    [trade] = placed.trades
    assert (trade.price, trade.amount_minor, trade.aggressor) == (60_000, 60, "sell")
    resting.refresh_from_db()
    assert (resting.filled_wh, resting.reserved_minor) == (1_000, 60)
    assert money(buyer.account.organisation_id) == (1_000 - 120, 60)
    assert money(seller.account.organisation_id) == (60, 0)


def test_criteria_filter_offers_by_technology_and_production_hour():
    # given two offers, hours 0 and 1 of the same plant
    market = MarketFactory()
    seller = seller_with_bundles(hours=2)
    first = offer(market, seller, bundle=seller.bundles[0]).order
    second = offer(market, seller, bundle=seller.bundles[1]).order
    buyer = buyer_with_funds(10_000)

    # when a bid wants hour 1 only, and another wants wind
    hourly = bid(market, buyer, 1_000, criteria={"production_hour": second.period_start})
    wind = bid(market, buyer, 1_000, criteria={"technology_code": "T030001"})

    # then the first takes the hour-1 offer; the wind bid finds nothing and rests
    assert [t.sell_order_id for t in hourly.trades] == [second.pk]
    assert wind.trades == [] and wind.order.status == "open"
    first.refresh_from_db()
    assert first.status == "open"


def test_max_age_leaves_out_old_certificates():
    market = MarketFactory()
    seller = seller_with_bundles()
    offer(market, seller)
    buyer = buyer_with_funds(10_000)

    # when the bid accepts only certificates produced in the last day (ours are a week old)
    placed = bid(market, buyer, 1_000, criteria={"max_age_days": 1}, time_in_force="ioc")

    # then
    assert placed.trades == [] and placed.order.cancel_reason == "ioc_remainder"


def test_ioc_cancels_the_rest_and_releases_its_escrow():
    market = MarketFactory()
    seller = seller_with_bundles()
    offer(market, seller, quantity_wh=300)
    buyer = buyer_with_funds(10_000)

    placed = bid(market, buyer, 1_000_000, price=5_000, time_in_force="ioc")

    assert placed.order.status == "cancelled" and placed.order.filled_wh == 300
    assert placed.order.reserved_minor == 0
    assert money(buyer.account.organisation_id) == (10_000 - 1, 0)  # 300 Wh at 50/MWh = 1.5 -> 1


def test_fok_trades_all_or_nothing():
    market = MarketFactory()
    seller = seller_with_bundles()
    resting = offer(market, seller, quantity_wh=300).order
    buyer = buyer_with_funds(10_000)

    placed = bid(market, buyer, 301, time_in_force="fok")

    assert placed.trades == [] and placed.order.cancel_reason == "fok_unfilled"
    resting.refresh_from_db()
    assert resting.filled_wh == 0
    assert money(buyer.account.organisation_id) == (10_000, 0)


def test_min_fill_not_met_means_no_trade_at_all():
    market = MarketFactory()
    seller = seller_with_bundles()
    offer(market, seller, quantity_wh=300)
    buyer = buyer_with_funds(10_000)

    placed = bid(market, buyer, 1_000, min_fill_wh=500)

    assert placed.trades == [] and placed.order.status == "cancelled"
    assert placed.order.cancel_reason == "min_fill_unmet"


def test_self_trade_prevention_cancels_the_incoming_rest():
    # given an organisation's own offer
    market = MarketFactory()
    seller = seller_with_bundles()
    offer(market, seller)
    deposit(seller.account.organisation_id, 10_000)

    # when the same organisation bids across it
    placed = services.order_place(
        actor=seller.user,
        market_id=market.pk,
        side="buy",
        limit_price=EUR_50,
        quantity_wh=100,
        account_id=seller.account.pk,
    )

    # then nothing trades and the bid does not rest
    assert placed.trades == [] and placed.order.cancel_reason == "self_trade"
    assert Trade.objects.count() == 0


def test_cancel_releases_units_and_funds():
    market = MarketFactory()
    seller = seller_with_bundles()
    placed_offer = offer(market, seller).order
    buyer = buyer_with_funds(10_000)
    placed_bid = bid(market, buyer, 1_000, price=4_000).order
    before = last_event_id()

    services.order_cancel(actor=seller.user, order_id=placed_offer.pk)
    services.order_cancel(actor=buyer.user, order_id=placed_bid.pk)

    assert Bundle.objects.get(pk=placed_offer.bundle_id).status == Bundle.Status.ACTIVE
    assert money(buyer.account.organisation_id) == (10_000, 0)
    assert [e["type"] for e in events_since(before)] == ["order.cancelled"] * 2


def test_amend_price_loses_priority_and_can_trade_at_once():
    # given two bids at 40, then an offer at 45
    market = MarketFactory()
    buyers = [buyer_with_funds(10_000) for _ in range(2)]
    first = bid(market, buyers[0], 500, price=4_000).order
    second = bid(market, buyers[1], 500, price=4_000).order
    seller = seller_with_bundles()
    offer(market, seller, price=4_500)

    # when the second raises to 45, then the first lowers its quantity
    raised = services.order_amend(actor=buyers[1].user, order_id=second.pk, limit_price=4_500)
    services.order_amend(actor=buyers[0].user, order_id=first.pk, quantity_wh=400)

    # then the raise traded against the offer; the first kept its place
    assert [t.quantity_wh for t in raised.trades] == [500]
    assert raised.order.status == "filled"
    first.refresh_from_db()
    assert (first.quantity_wh, first.seq) == (400, 1)
    assert first.reserved_minor == 2  # 400 Wh at EUR 40/MWh = 1.6 cents, rounded up


def test_amend_of_an_offer_to_a_smaller_volume_releases_units():
    market = MarketFactory()
    seller = seller_with_bundles()
    order = offer(market, seller).order

    amended = services.order_amend(actor=seller.user, order_id=order.pk, quantity_wh=250)

    reserved = Bundle.objects.get(pk=amended.order.bundle_id)
    assert reserved.volume_wh == 250 and reserved.status == Bundle.Status.RESERVED
    free = Bundle.objects.filter(account=seller.account, status=Bundle.Status.ACTIVE)
    assert sum(b.volume_wh for b in free) == 750 + 1_000  # the rest and the second hour


# refusals: a code, and nothing changed


def test_bad_orders_are_refused_with_nothing_changed(refused):
    market = MarketFactory(price_min=1_000, price_max=20_000)
    seller = seller_with_bundles()
    buyer = buyer_with_funds(100)
    other = buyer_with_funds(0)

    def place(**kw):
        base = {
            "actor": buyer.user,
            "market_id": market.pk,
            "side": "buy",
            "limit_price": 5_000,
            "quantity_wh": 1_000,
            "account_id": buyer.account.pk,
        }
        return lambda: services.order_place(**(base | kw))

    refused(place(quantity_wh=0), "invalid_quantity", 400)
    refused(place(quantity_wh=-5), "invalid_quantity", 400)
    refused(place(quantity_wh=1.5), "invalid_quantity", 400)
    refused(place(limit_price=999), "price_outside_band", 400)
    refused(place(limit_price=20_001), "price_outside_band", 400)
    refused(place(limit_price=50.5), "invalid_price", 400)
    refused(place(side="hold"), "invalid_order", 400)
    refused(place(time_in_force="day"), "invalid_order", 400)
    refused(place(account_id=other.account.pk), "account_not_found", 404)
    refused(place(quantity_wh=10**7), "insufficient_funds", 409)  # 10 MWh x 50 = 500 EUR
    refused(place(market_id=999_999), "market_not_found", 404)
    refused(place(criteria={"colour": "green"}), "invalid_order", 400)
    refused(
        place(actor=seller.user, side="sell", bundle_id=seller.bundles[0].pk, quantity_wh=5_000),
        "insufficient_volume",
        409,
    )
    refused(
        place(side="sell", bundle_id=seller.bundles[0].pk, account_id=None, quantity_wh=None),
        "not_bundle_holder",
        403,
    )


@pytest.mark.parametrize(
    "criteria",
    [
        # accept_device is a foreign key checked at commit: the request used to end in a 500
        {"device": 999_999},
        {"device": 0},
        # `now - max_age_days` is no date (OverflowError), or the 32-bit column overflows
        {"max_age_days": 1_000_000},
        {"max_age_days": 2**31},
    ],
)
def test_a_bid_for_no_device_or_past_any_date_is_refused(refused, criteria):
    # given
    market = MarketFactory()
    seller_with_bundles()
    buyer = buyer_with_funds(100)
    # when / then: refused by name, with nothing reserved, escrowed or recorded
    refused(
        lambda: services.order_place(
            actor=buyer.user,
            market_id=market.pk,
            side="buy",
            limit_price=EUR_50,
            quantity_wh=1_000,
            account_id=buyer.account.pk,
            criteria=criteria,
        ),
        "invalid_order",
        400,
    )


def test_cancel_of_a_filled_order_and_amend_of_anothers_order_are_refused(refused):
    market = MarketFactory()
    seller = seller_with_bundles()
    sold = offer(market, seller).order
    buyer = buyer_with_funds(10_000)
    bid(market, buyer, 1_000)
    stranger = buyer_with_funds(0)
    resting = bid(market, buyer, 10, price=1_000).order

    refused(
        lambda: services.order_cancel(actor=seller.user, order_id=sold.pk), "order_not_open", 409
    )
    refused(
        lambda: services.order_amend(actor=stranger.user, order_id=resting.pk, limit_price=2_000),
        "order_not_found",
        404,
    )
    refused(
        lambda: services.order_cancel(actor=issuing_body_user(), order_id=resting.pk),
        "not_organisation_member",
        403,
    )


def test_a_halted_market_takes_no_orders(refused):
    market = MarketFactory(status="halted")
    buyer = buyer_with_funds(100)
    refused(
        lambda: bid(market, buyer, 10),
        "market_not_open",
        409,
    )


def test_conservation_over_a_busy_session():
    # given five sellers with two hours each and five funded buyers
    market = MarketFactory(fee_bps=50)
    sellers = [seller_with_bundles() for _ in range(5)]
    buyers = [buyer_with_funds(50_000) for _ in range(5)]
    issued = sum(b.volume_wh for s in sellers for b in s.bundles)
    for i, seller in enumerate(sellers):
        for bundle in seller.bundles:
            offer(market, seller, bundle=bundle, price=40_000 + 1_000 * i)
    # when buyers bid for random-looking volumes at various prices
    for i, buyer in enumerate(buyers):
        bid(market, buyer, 700 + 300 * i, price=41_000 + 1_500 * i)
        bid(market, buyer, 1_100, price=43_000, time_in_force="ioc")

    # then no Wh and no cent was created or lost
    live = Bundle.objects.exclude(status=Bundle.Status.SPLIT)
    assert sum(b.volume_wh for b in live) == issued
    assert (
        sum(SettlementAccount.objects.values_list("available", flat=True))
        + sum(SettlementAccount.objects.values_list("reserved", flat=True))
        == 0
    )
    for order in Order.objects.all():
        assert 0 <= order.filled_wh <= order.quantity_wh
        if order.side == "buy":
            assert order.reserved_minor == (-(-order.limit_price * order.open_wh // 1_000_000))
    bought = sum(t.quantity_wh for t in Trade.objects.all())
    assert bought == sum(
        b.volume_wh for b in live if b.account_id in {x.account.pk for x in buyers}
    )
    _ = (dt, OrganisationFactory)
