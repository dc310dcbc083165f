"""Energy markets: orders for delivery slots until gate closure, cleared at one price."""

import datetime as dt

import pytest
from django.core.management import call_command

from market import clearing, matching, services
from market.models import Market, Order, SettlementAccount, SlotClearing
from market.replay import replay_market
from tests.market.factories import EnergyMarketFactory, MarketFactory, next_slot, trader
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)


def place(market, who, side, quantity, price, slot, **kw):
    return services.order_place(
        actor=who.user,
        market_id=market.pk,
        side=side,
        limit_price=price,
        quantity_wh=quantity,
        account_id=who.account.pk,
        slot_start=slot,
        **kw,
    ).order


def money(who):
    account = SettlementAccount.objects.get(organisation_id=who.account.organisation_id)
    return account.available, account.reserved


def all_balances():
    rows = SettlementAccount.objects.values_list("kind", "available", "reserved")
    return (
        sum(a + r for _kind, a, r in rows),
        sum(a + r for kind, a, r in rows if kind == "member"),
    )


# ---------------------------------------------------------------- placing


def test_an_energy_bid_escrows_at_its_limit_and_rests_until_clearing():
    # given
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer = trader(10_000)
    before = last_event_id()

    # when 2,500 Wh at EUR 123.45/MWh
    order = place(market, buyer, "buy", 2_500, 12_345, slot)

    # then 2,500 x 12,345 / 10^6 = 30.86 cents, rounded up
    assert (order.status, order.product, order.slot_start, order.reserved_minor) == (
        "open",
        "energy",
        slot,
        31,
    )
    assert money(buyer) == (10_000 - 31, 31)
    [event] = events_since(before)
    assert event["type"] == "order.placed"
    assert event["data"]["order"]["slot_start"].startswith(slot.strftime("%Y-%m-%dT%H:%M:%S"))
    assert f"order:{order.pk}" in event["subject"] and event["data"]["trades"] == []


def test_an_energy_offer_reserves_nothing_and_crossing_orders_do_not_trade_on_entry():
    # given a resting bid
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer, seller = trader(10_000), trader()
    bid = place(market, buyer, "buy", 1_000, 9_000, slot)

    # when a crossing offer arrives
    offer = place(market, seller, "sell", 1_000, 5_000, slot)

    # then both rest: a uniform market trades only at clearing
    assert (offer.status, offer.bundle_id, offer.reserved_minor) == ("open", None, 0)
    bid.refresh_from_db()
    assert bid.status == "open" and bid.filled_wh == 0
    assert money(seller) == (0, 0)


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"slot": lambda s: s + 7 * MINUTE}, "slot_misaligned", 400),
        ({"slot": lambda s: s + dt.timedelta(seconds=1)}, "slot_misaligned", 400),
        ({"now": lambda s: s - 5 * MINUTE}, "gate_closed", 409),
        ({"now": lambda s: s + 20 * MINUTE}, "gate_closed", 409),
        ({"slot": lambda s: None}, "invalid_order", 400),
        ({"slot": lambda s: s.replace(tzinfo=None)}, "invalid_order", 400),
        ({"kw": {"time_in_force": "ioc"}}, "invalid_order", 400),
        ({"kw": {"min_fill_wh": 10}}, "invalid_order", 400),
        ({"kw": {"criteria": {"country": "DE"}}}, "invalid_order", 400),
        ({"kw": {"bundle_id": 1}}, "invalid_order", 400),
        ({"kw": {"limit_price": 10**6}}, "price_outside_band", 400),
        ({"kw": {"quantity_wh": 0}}, "invalid_quantity", 400),
    ],
)
def test_bad_energy_orders_are_refused_and_change_nothing(refused, change, code, status):
    # given
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer = trader(10_000)
    args = {
        "actor": buyer.user,
        "market_id": market.pk,
        "side": "buy",
        "limit_price": 5_000,
        "quantity_wh": 1_000,
        "account_id": buyer.account.pk,
        "slot_start": change.get("slot", lambda s: s)(slot),
        **change.get("kw", {}),
    }
    if "now" in change:
        args["now"] = change["now"](slot)

    # when / then
    refused(lambda: services.order_place(**args), code, status)


def test_gate_closure_is_gate_closure_minutes_before_the_slot(refused):
    # given a market whose gate closes 30 minutes before each 60-minute slot
    market = EnergyMarketFactory(slot_minutes=60, gate_closure_minutes=30)
    slot = next_slot(market)
    buyer = trader(10_000)

    # when / then: one minute before gate closure is in, gate closure itself is out
    place(market, buyer, "buy", 100, 5_000, slot, now=slot - 31 * MINUTE)
    refused(
        lambda: place(market, buyer, "buy", 100, 5_000, slot, now=slot - 30 * MINUTE),
        "gate_closed",
        409,
    )


def test_a_slot_on_a_certificate_market_is_refused(refused):
    market = MarketFactory()
    buyer = trader(10_000)
    refused(
        lambda: place(market, buyer, "buy", 100, 5_000, next_slot(EnergyMarketFactory())),
        "invalid_order",
        400,
    )


def test_cancel_before_gate_closure_releases_the_escrow_and_after_it_is_refused(refused):
    # given two resting bids
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer = trader(10_000)
    first = place(market, buyer, "buy", 10_000, 5_000, slot)
    second = place(market, buyer, "buy", 10_000, 5_000, slot)
    assert money(buyer) == (9_900, 100)

    # when one is cancelled before gate closure
    services.order_cancel(actor=buyer.user, order_id=first.pk)

    # then its escrow is back; the other cannot be cancelled or amended after gate closure
    assert money(buyer) == (9_950, 50)
    closed = slot - 5 * MINUTE
    refused(
        lambda: services.order_cancel(actor=buyer.user, order_id=second.pk, now=closed),
        "gate_closed",
        409,
    )
    refused(
        lambda: services.order_amend(
            actor=buyer.user, order_id=second.pk, limit_price=6_000, now=closed
        ),
        "gate_closed",
        409,
    )


def test_amend_before_gate_closure_re_escrows_and_an_offer_may_grow():
    # given
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer, seller = trader(10_000), trader()
    bid = place(market, buyer, "buy", 10_000, 5_000, slot)
    offer = place(market, seller, "sell", 1_000, 4_000, slot)

    # when
    services.order_amend(actor=buyer.user, order_id=bid.pk, limit_price=8_000)
    services.order_amend(actor=seller.user, order_id=offer.pk, quantity_wh=3_000)

    # then
    bid.refresh_from_db()
    offer.refresh_from_db()
    assert (bid.reserved_minor, money(buyer)) == (80, (9_920, 80))
    assert (offer.quantity_wh, offer.status) == (3_000, "open")


# ---------------------------------------------------------------- clearing


def _book(market, slot):
    """Three bids and three offers that cross in part."""
    buyers = [trader(100_000) for _ in range(3)]
    sellers = [trader() for _ in range(3)]
    orders = [
        place(market, buyers[0], "buy", 4_000, 9_000, slot),
        place(market, buyers[1], "buy", 3_000, 7_000, slot),
        place(market, buyers[2], "buy", 5_000, 3_000, slot),
        place(market, sellers[0], "sell", 2_000, 2_000, slot),
        place(market, sellers[1], "sell", 3_000, 6_000, slot),
        place(market, sellers[2], "sell", 4_000, 8_000, slot),
    ]
    return buyers, sellers, orders


def test_clearing_a_slot_records_what_clear_computes_and_releases_escrow_exactly():
    # given a slot with crossing orders, and the clearing computed on the same orders
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyers, sellers, orders = _book(market, slot)
    expected = clearing.clear(
        [
            clearing.SlotOrder(o.pk, o.side, o.limit_price, o.quantity_wh, o.seq, o.organisation_id)
            for o in orders
        ]
    )
    totals = all_balances()
    before = last_event_id()

    # when the slot clears at gate closure
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot - 5 * MINUTE)

    # then the recorded result is clear()'s
    assert (record.price, record.volume_wh, record.orders_count) == (
        expected.price,
        expected.volume,
        6,
    )
    assert expected.volume == 5_000 and expected.price is not None
    for order in orders:
        order.refresh_from_db()
        cleared = expected.cleared(order.pk)
        assert (order.filled_wh, order.clearing_id) == (cleared, record.pk)
        assert order.status == (
            "cleared"
            if cleared == order.quantity_wh
            else "partially_cleared"
            if cleared
            else "unfilled"
        )
        if order.side == "buy":
            # the cleared Wh stay escrowed at the clearing price, the rest is released
            keep = matching.escrow_for(expected.price, cleared) if cleared else 0
            assert order.reserved_minor == keep
    for buyer, order in zip(buyers, orders[:3], strict=True):
        assert money(buyer) == (100_000 - order.reserved_minor, order.reserved_minor)
    assert all(money(seller) == (0, 0) for seller in sellers)
    # no cent created or lost
    assert all_balances() == totals
    # one event naming the market, the clearing and every order
    [event] = events_since(before)
    assert event["type"] == "market.slot_cleared"
    for key in (f"market:{market.pk}", f"slot_clearing:{record.pk}"):
        assert key in event["subject"]
    assert {f"order:{o.pk}" for o in orders} <= set(event["subject"])
    assert event["data"]["clearing"]["price"] == expected.price
    assert all(sum(line[2] for line in e["lines"]) == 0 for e in event["data"]["journal"])
    assert replay_market().ok


def test_clearing_twice_clears_once():
    # given a cleared slot
    market = EnergyMarketFactory()
    slot = next_slot(market)
    _book(market, slot)
    first = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)
    before = last_event_id()
    state = list(Order.objects.values_list("pk", "status", "filled_wh", "reserved_minor"))

    # when it is cleared again
    again = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot + MINUTE)

    # then nothing changes
    assert again.pk == first.pk and SlotClearing.objects.count() == 1
    assert events_since(before) == []
    assert list(Order.objects.values_list("pk", "status", "filled_wh", "reserved_minor")) == state


def test_after_clearing_the_slot_takes_no_more_orders(refused):
    # given a slot cleared (early, by its explicit time)
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer = trader(10_000)
    place(market, buyer, "buy", 1_000, 5_000, slot)
    services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # when / then an order whose own clock says the gate is open is still refused
    refused(lambda: place(market, buyer, "buy", 1_000, 5_000, slot), "gate_closed", 409)


def test_a_slot_whose_gate_is_open_cannot_be_cleared(refused):
    market = EnergyMarketFactory()
    slot = next_slot(market)
    place(market, trader(10_000), "buy", 1_000, 5_000, slot)
    refused(
        lambda: services.slot_clear(market_id=market.pk, slot_start=slot, now=slot - 6 * MINUTE),
        "gate_open",
        409,
    )
    refused(
        lambda: services.slot_clear(market_id=market.pk, slot_start=slot + MINUTE, now=slot),
        "slot_misaligned",
        400,
    )


def test_a_slot_where_nothing_crosses_releases_every_bid():
    # given
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyer, seller = trader(10_000), trader()
    bid = place(market, buyer, "buy", 10_000, 3_000, slot)
    offer = place(market, seller, "sell", 10_000, 4_000, slot)

    # when
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # then
    assert (record.price, record.volume_wh) == (None, 0)
    bid.refresh_from_db()
    offer.refresh_from_db()
    assert (bid.status, bid.reserved_minor, offer.status) == ("unfilled", 0, "unfilled")
    assert money(buyer) == (10_000, 0)


def test_clear_due_clears_the_slots_whose_gate_has_closed_and_no_others():
    # given orders in two slots, and a certificate market with a resting bid
    market = EnergyMarketFactory()
    slot = next_slot(market)
    later = slot + 15 * MINUTE
    buyer = trader(10_000)
    place(market, buyer, "buy", 1_000, 5_000, slot)
    waiting = place(market, buyer, "buy", 1_000, 5_000, later)

    # when the periodic clearing runs at the first slot's gate closure
    cleared = services.slot_clear_due(now=slot - 5 * MINUTE)

    # then only the first slot cleared
    assert [(r.market_id, r.slot_start) for r in cleared] == [(market.pk, slot)]
    waiting.refresh_from_db()
    assert waiting.status == "open"


def test_the_management_command_clears_one_slot(capsys):
    market = EnergyMarketFactory(gate_closure_minutes=0)
    slot = next_slot(market, ahead=dt.timedelta(0)) - 15 * MINUTE  # started already
    Market.objects.filter(pk=market.pk).update(gate_closure_minutes=0)

    call_command("clear_slots", market=market.pk, slot=slot.isoformat())

    assert SlotClearing.objects.get(market=market, slot_start=slot).volume_wh == 0
    assert "1 slot(s) cleared." in capsys.readouterr().out


def test_the_periodic_task_is_scheduled_and_clears_slots_whose_gate_closed():
    # given a bid for a slot that started a quarter of an hour ago (placed back then)
    from django.conf import settings

    from registry.celery import app

    market = EnergyMarketFactory()
    slot = next_slot(market, ahead=dt.timedelta(0)) - 30 * MINUTE
    buyer = trader(10_000)
    bid = place(market, buyer, "buy", 1_000, 5_000, slot, now=slot - dt.timedelta(hours=1))

    # when the scheduled task runs
    entry = settings.CELERY_BEAT_SCHEDULE["market-slots-clear"]
    app.loader.import_default_modules()
    assert app.tasks[entry["task"]].apply().get() == 1

    # then the slot is cleared and the bid's escrow is back
    bid.refresh_from_db()
    assert (bid.status, bid.reserved_minor, money(buyer)) == ("unfilled", 0, (10_000, 0))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_slots_clear_as_clear_computes_and_conserve_money(seed):
    # given a slot with a random book of 12 bids and 12 offers from 6 buyers and 6 sellers
    import random

    rng = random.Random(seed)
    market = EnergyMarketFactory()
    slot = next_slot(market)
    buyers, sellers = [trader(1_000_000) for _ in range(6)], [trader() for _ in range(6)]
    orders = [
        place(
            market, rng.choice(buyers), "buy", rng.randint(1, 5_000), rng.randint(0, 99) * 100, slot
        )
        for _ in range(12)
    ] + [
        place(
            market,
            rng.choice(sellers),
            "sell",
            rng.randint(1, 5_000),
            rng.randint(0, 99) * 100,
            slot,
        )
        for _ in range(12)
    ]
    expected = clearing.clear(
        [
            clearing.SlotOrder(o.pk, o.side, o.limit_price, o.quantity_wh, o.seq, o.organisation_id)
            for o in orders
        ]
    )
    totals = all_balances()

    # when
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # then
    assert (record.price, record.volume_wh) == (expected.price, expected.volume)
    reserved = 0
    for order in Order.objects.filter(clearing=record):
        assert order.filled_wh == expected.cleared(order.pk)
        if order.side == "buy":
            cleared = order.filled_wh
            assert order.reserved_minor == (
                matching.escrow_for(record.price, cleared) if cleared else 0
            )
            reserved += order.reserved_minor
    assert sum(SettlementAccount.objects.values_list("reserved", flat=True)) == reserved
    assert all_balances() == totals
    assert replay_market().ok


def test_a_market_with_a_slot_length_that_does_not_divide_a_day_is_refused(refused):
    from tests.factories import issuing_body_user

    issuing_body, operator = issuing_body_user(), trader().account.organisation_id
    refused(
        lambda: services.market_create(
            actor=issuing_body,
            code="energy-7",
            name="Seven",
            currency="EUR",
            operator_id=operator,
            price_min=0,
            price_max=100_000,
            kind="energy",
            matching="uniform",
            slot_minutes=7,
        ),
        "invalid_order",
        400,
    )
