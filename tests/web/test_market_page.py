"""The market page: book, order entry through market.services, cancel, refusals, queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from market import services as market_services
from market.models import Order, Trade
from tests.market.factories import MarketFactory, deposit, seller_with_bundles

PRICE = 5_000  # minor units per MWh


@pytest.fixture
def market(db):
    return MarketFactory(code="certs-web")


@pytest.fixture
def offer(market):
    """A seller's resting offer of one 1,000 Wh bundle at PRICE."""
    seller = seller_with_bundles(hours=1, wh=1_000)
    placement = market_services.order_place(
        actor=seller.user,
        market_id=market.pk,
        side="sell",
        limit_price=PRICE,
        bundle_id=seller.bundles[0].pk,
    )
    return placement.order


def _bid(world, market, *, price=PRICE, quantity=1_000, **extra):
    return {
        "market": market.pk,
        "side": "buy",
        "limit_price": price,
        "quantity_wh": quantity,
        "account": world.buyer_account.pk,
        **extra,
    }


@pytest.mark.django_db
def test_a_trader_sees_the_markets_and_the_live_book(login, world, market, offer):
    # when
    response = login(world, "buyer").get(reverse("web:market"), {"market": market.pk})
    # then
    assert response.status_code == 200
    body = response.content.decode()
    assert "certs-web" in body
    offers = response.context["book"].offers
    assert [(lvl.price, lvl.quantity_wh, lvl.orders) for lvl in offers] == [(PRICE, 1_000, 1)]
    assert response.context["book"].bids == []
    assert reverse("web:market") in [item["url"] for item in response.context["nav_items"]]


@pytest.mark.django_db
def test_the_market_page_is_for_producers_and_traders(login, world):
    assert login(world, "auditor").get(reverse("web:market")).status_code == 403


@pytest.mark.django_db
def test_a_bid_fills_against_the_resting_offer_and_shows_the_fill(login, world, market, offer):
    # given
    deposit(world.buyer_account.organisation_id, 100_000)
    client = login(world, "buyer")
    # when
    response = client.post(reverse("web:market-order"), _bid(world, market), follow=True)
    # then
    assert response.status_code == 200
    trade = Trade.objects.get()
    assert (trade.sell_order_id, trade.quantity_wh, trade.price) == (offer.pk, 1_000, PRICE)
    assert trade.buy_order.organisation_id == world.buyer_account.organisation_id
    body = response.content.decode()
    assert "1 trade(s), 1000 Wh filled" in body
    assert [t.pk for t in response.context["trades"]] == [trade.pk]
    assert response.context["book"].offers == []


@pytest.mark.django_db
def test_a_refusal_shows_its_code_and_changes_nothing(login, world, market, offer):
    # given: no funds deposited for the buyer
    client = login(world, "buyer")
    # when
    response = client.post(reverse("web:market-order"), _bid(world, market))
    # then
    assert response.status_code == 200
    assert "(insufficient_funds)" in response.content.decode()
    assert not Trade.objects.exists()
    assert Order.objects.filter(side="buy").count() == 0


@pytest.mark.django_db
def test_a_price_outside_the_band_is_refused_with_its_code(login, world, market):
    deposit(world.buyer_account.organisation_id, 100_000)
    response = login(world, "buyer").post(
        reverse("web:market-order"), _bid(world, market, price=market.price_max + 1)
    )
    assert "(price_outside_band)" in response.content.decode()
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_an_open_order_is_cancelled_with_its_button(login, world, market):
    # given: a bid below every offer rests on the book
    deposit(world.buyer_account.organisation_id, 100_000)
    client = login(world, "buyer")
    client.post(reverse("web:market-order"), _bid(world, market, price=1_000))
    order = Order.objects.get()
    page = client.get(reverse("web:market"))
    assert [o.pk for o in page.context["orders"]] == [order.pk]
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
    assert f"Order {order.pk} cancelled." in response.content.decode()
    assert list(response.context["orders"]) == []


@pytest.mark.django_db
def test_cancelling_someone_elses_order_shows_the_refusal(login, world, market, offer):
    response = login(world, "buyer").post(
        reverse("web:market-order-cancel", args=[offer.pk]), follow=True
    )
    assert "(order_not_found)" in response.content.decode()
    offer.refresh_from_db()
    assert offer.status == Order.Status.OPEN


@pytest.mark.django_db
def test_the_market_page_does_a_fixed_number_of_queries(login, world, market, offer):
    # given: one resting bid and one trade, measured
    deposit(world.buyer_account.organisation_id, 1_000_000)
    client = login(world, "buyer")
    client.post(reverse("web:market-order"), _bid(world, market))
    client.post(reverse("web:market-order"), _bid(world, market, price=1_000))
    url = reverse("web:market") + f"?market={market.pk}"
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    # when: more markets, offers, open orders and trades
    MarketFactory()
    for price in (1_100, 1_200, 1_300):
        client.post(reverse("web:market-order"), _bid(world, market, price=price))
    for _ in range(2):
        seller = seller_with_bundles(hours=1, wh=1_000)
        market_services.order_place(
            actor=seller.user,
            market_id=market.pk,
            side="sell",
            limit_price=900,
            bundle_id=seller.bundles[0].pk,
        )
    assert Trade.objects.count() == 3
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    # then
    # the offers at 900 took the bids at 1,300 and 1,200; 1,100 and 1,000 still rest
    assert [o.limit_price for o in response.context["orders"]] == [1_100, 1_000]
    assert len(response.context["trades"]) == 3
    assert len(response.context["markets"]) == 2
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_a_producer_offers_a_bundle_from_their_holdings(login, world, market):
    # given: the producer's active bundles are the choices of the offer's bundle field
    client = login(world, "producer")
    form = client.get(reverse("web:market")).context["order_form"]
    choices = [pk for pk, _ in form.fields["bundle"].choices if pk]
    assert choices
    # when
    response = client.post(
        reverse("web:market-order"),
        {"market": market.pk, "side": "sell", "limit_price": PRICE, "bundle": choices[0]},
        follow=True,
    )
    # then
    order = Order.objects.get()
    assert (order.side, order.bundle_id, order.status) == ("sell", choices[0], Order.Status.OPEN)
    assert "it rests on the book" in response.content.decode()
    assert [lvl.price for lvl in response.context["book"].offers] == [PRICE]


@pytest.mark.django_db
def test_the_market_page_reads_in_russian(login, world, market, offer):
    # given
    client = login(world, "buyer")
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    # when
    body = client.get(reverse("web:market"), {"market": market.pk}).content.decode()
    # then
    assert '<html lang="ru">' in body
    for russian in ("Книга заявок рынка certs-web", "Подать заявку", "Мои открытые заявки"):
        assert russian in body
    for english in ("Order book of", "Place the order", "My open orders", "My recent trades"):
        assert english not in body
