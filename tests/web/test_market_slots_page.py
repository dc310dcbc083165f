"""The market page for an energy market: delivery slots, slot orders through
market.services.order_place, cancel before the gate, clearings and their chart, queries."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from market import services as market_services
from market.models import Order, SettlementAccount
from tests.market.factories import EnergyMarketFactory, deposit, next_slot, trader
from web.views.trading import next_slots

PRICE = 9_000  # minor units per MWh


@pytest.fixture
def market(db):
    return EnergyMarketFactory(code="energy-web")


def _slot_bid(world, market, slot, *, price=PRICE, quantity=2_000, side="buy"):
    return {
        "market": market.pk,
        "slot": slot.isoformat(),
        "side": side,
        "limit_price": price,
        "quantity_wh": quantity,
        "account": world.buyer_account.pk,
    }


def _reserved(organisation_id: int) -> int:
    account = SettlementAccount.objects.filter(organisation_id=organisation_id).first()
    return account.reserved if account else 0


def _place(who, market, side, quantity, price, slot):
    return market_services.order_place(
        actor=who.user,
        market_id=market.pk,
        side=side,
        limit_price=price,
        quantity_wh=quantity,
        account_id=who.account.pk,
        slot_start=slot,
    ).order


def test_the_next_slots_are_those_whose_gate_is_still_open(market):
    # given a 15-minute market whose gate closes 5 minutes before each slot
    now = dt.datetime(2026, 12, 5, 14, 52, tzinfo=dt.UTC)
    # when
    with translation.override("en"):
        slots = next_slots(market, now=now)
    # then 15:00 is the first (its gate closes at 14:55); at 14:55 sharp it is gone
    assert slots[0].start == dt.datetime(2026, 12, 5, 15, 0, tzinfo=dt.UTC)
    assert slots[0].gate_closure == dt.datetime(2026, 12, 5, 14, 55, tzinfo=dt.UTC)
    assert [s.start.minute for s in slots[:3]] == [0, 15, 30]
    later = next_slots(market, now=now.replace(minute=55))
    assert later[0].start == dt.datetime(2026, 12, 5, 15, 15, tzinfo=dt.UTC)
    assert "gate closes" in slots[0].label


@pytest.mark.django_db
def test_an_energy_market_offers_slots_instead_of_the_certificate_form(login, world, market):
    # when
    response = login(world, "buyer").get(reverse("web:market"), {"market": market.pk})
    # then
    assert response.status_code == 200
    assert response.context["slot_market"] is True
    assert "order_form" not in response.context
    form = response.context["slot_form"]
    values = [value for value, _label in form.fields["slot"].widget.choices]
    assert values == [s.value for s in next_slots(market)]
    assert all(dt.datetime.fromisoformat(v) > timezone.now() for v in values)
    body = response.content.decode()
    assert reverse("web:market-slot-order") in body
    assert "No slot of this market has cleared yet." in body


@pytest.mark.django_db
def test_a_slot_bid_is_placed_escrowed_and_listed_with_its_status(login, world, market):
    # given
    deposit(world.buyer_account.organisation_id, 100_000)
    slot = next_slot(market)
    client = login(world, "buyer")
    # when
    response = client.post(
        reverse("web:market-slot-order"), _slot_bid(world, market, slot), follow=True
    )
    # then: the same order the API's service makes, resting with its escrow
    order = Order.objects.get()
    assert (order.product, order.slot_start, order.status) == ("energy", slot, "open")
    assert order.certificate_account_id == world.buyer_account.pk
    assert _reserved(world.buyer_account.organisation_id) == 18  # 9,000 x 2,000 Wh / 10^6
    assert f"Slot order {order.pk} placed" in response.content.decode()
    assert [o.pk for o in response.context["slot_orders"]] == [order.pk]
    assert response.context["slot_orders"][0].cancellable is True
    # slot orders are listed with their market, not among the certificate orders
    assert list(response.context["orders"]) == []


@pytest.mark.django_db
def test_a_slot_order_after_gate_closure_is_refused_with_its_code(login, world, market):
    # given a slot whose gate has closed
    deposit(world.buyer_account.organisation_id, 100_000)
    length = market.slot_minutes * 60
    closed = dt.datetime.fromtimestamp(
        int(timezone.now().timestamp()) // length * length, tz=dt.UTC
    )
    # when
    response = login(world, "buyer").post(
        reverse("web:market-slot-order"), _slot_bid(world, market, closed)
    )
    # then
    assert response.status_code == 200
    assert "(gate_closed)" in response.content.decode()
    assert not Order.objects.exists()
    assert _reserved(world.buyer_account.organisation_id) == 0


@pytest.mark.django_db
def test_a_slot_form_without_a_slot_is_a_form_error(login, world, market):
    response = login(world, "buyer").post(
        reverse("web:market-slot-order"),
        {**_slot_bid(world, market, next_slot(market)), "slot": "soon"},
    )
    assert response.status_code == 200
    assert response.context["slot_form"].errors["slot"]
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_a_slot_order_is_cancelled_before_the_gate_and_its_escrow_returns(login, world, market):
    # given
    deposit(world.buyer_account.organisation_id, 100_000)
    client = login(world, "buyer")
    client.post(reverse("web:market-slot-order"), _slot_bid(world, market, next_slot(market)))
    order = Order.objects.get()
    page = client.get(reverse("web:market"), {"market": market.pk})
    assert reverse("web:market-order-cancel", args=[order.pk]) in page.content.decode()
    # when
    response = client.post(
        reverse("web:market-order-cancel", args=[order.pk]),
        {"market": market.pk},
        follow=True,
        HTTP_HX_REQUEST="true",
    )
    # then
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert _reserved(world.buyer_account.organisation_id) == 0
    assert f"Order {order.pk} cancelled." in response.content.decode()
    assert response.context["slot_orders"][0].cancellable is False


@pytest.mark.django_db
def test_cleared_slots_show_price_volume_my_cleared_wh_and_a_chart(login, world, market):
    # given the buyer's bid and another party's offer in one slot, cleared at gate closure
    deposit(world.buyer_account.organisation_id, 100_000)
    slot = next_slot(market)
    client = login(world, "buyer")
    client.post(reverse("web:market-slot-order"), _slot_bid(world, market, slot))
    seller = trader()
    _place(seller, market, "sell", 1_500, 5_000, slot)
    market_services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)
    # when
    response = client.get(reverse("web:market"), {"market": market.pk})
    # then
    (clearing,) = response.context["clearings"]
    assert (clearing.volume_wh, clearing.orders_count) == (1_500, 2)
    (mine,) = response.context["slot_orders"]
    assert (mine.status, mine.filled_wh, mine.cancellable) == ("partially_cleared", 1_500, False)
    chart = response.context["clearing_chart"]
    assert chart["type"] == "line" and chart["datasets"][0]["data"] == [clearing.price]
    body = response.content.decode()
    assert 'data-chart="clearing-chart"' in body and 'id="clearing-chart"' in body
    assert "chart.umd.min.js" in body
    payload = body.split('id="clearing-chart" type="application/json">')[1].split("</script>")[0]
    assert json.loads(payload)["datasets"][0]["data"] == [clearing.price]


@pytest.mark.django_db
def test_the_energy_market_page_does_a_fixed_number_of_queries(login, world, market):
    # given one slot order and one clearing, measured
    deposit(world.buyer_account.organisation_id, 10_000_000)
    client = login(world, "buyer")
    seller = trader()
    first = next_slot(market)
    client.post(reverse("web:market-slot-order"), _slot_bid(world, market, first))
    _place(seller, market, "sell", 1_000, 5_000, first)
    market_services.slot_clear(market_id=market.pk, slot_start=first, now=first)
    url = reverse("web:market") + f"?market={market.pk}"
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    # when: more slots, orders and clearings
    for i in range(1, 5):
        slot = first + dt.timedelta(minutes=15 * i)
        client.post(reverse("web:market-slot-order"), _slot_bid(world, market, slot))
        client.post(reverse("web:market-slot-order"), _slot_bid(world, market, slot, price=8_000))
        _place(seller, market, "sell", 1_000, 5_000 + i, slot)
        if i < 4:
            market_services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    # then
    assert len(response.context["clearings"]) == 4
    assert len(response.context["slot_orders"]) == 9
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_the_slot_section_reads_in_russian(login, world, market):
    # given an open slot order
    deposit(world.buyer_account.organisation_id, 100_000)
    client = login(world, "buyer")
    client.post(reverse("web:market-slot-order"), _slot_bid(world, market, next_slot(market)))
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    # when
    body = client.get(reverse("web:market"), {"market": market.pk}).content.decode()
    # then
    for english in (
        "Order energy for a delivery slot",
        "Place the slot order",
        "Latest clearings",
        "gate closes",
        "My slot orders in",
        "Buy (bid)",
    ):
        assert english not in body
    assert "открыта" in body
