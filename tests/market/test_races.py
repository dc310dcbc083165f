"""Real threads against PostgreSQL: the book lock keeps every Wh and every cent single."""

import random
from collections import defaultdict

import pytest
from django.utils import timezone

from certificates.models import Bundle
from certificates.replay import replay_ledger
from market import matching, services
from market.engine_io import engine_order
from market.models import Order, SettlementAccount, Trade
from market.replay import replay_market
from registry.errors import DomainError
from tests.certificates.conftest import run_together
from tests.conftest import requires_postgres
from tests.market.factories import MarketFactory, buyer_with_funds, seller_with_bundles

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
ORDERS = 50


def _assert_book_consistent(market, issued_wh: int, deposits: int) -> None:
    # no Wh created or lost: the live bundles of every device add up to what was issued
    live = Bundle.objects.exclude(status=Bundle.Status.SPLIT)
    assert sum(b.volume_wh for b in live) == issued_wh
    # no cent created or lost: members hold what was deposited; external holds minus that
    accounts = list(SettlementAccount.objects.all())
    assert sum(a.available + a.reserved for a in accounts) == 0
    assert sum(a.available + a.reserved for a in accounts if a.kind == "member") == deposits
    filled = defaultdict(int)
    for trade in Trade.objects.all():
        filled[trade.buy_order_id] += trade.quantity_wh
        filled[trade.sell_order_id] += trade.quantity_wh
    reserved = defaultdict(int)
    for order in Order.objects.all():
        # no order filled beyond its quantity, and its fills are its trades
        assert 0 <= order.filled_wh <= order.quantity_wh
        assert order.filled_wh == filled[order.pk]
        if order.side == "buy":
            assert order.reserved_minor == matching.escrow_for(order.limit_price, order.open_wh)
            reserved[order.settlement_account_id] += order.reserved_minor
        elif order.status == "open":
            bundle = Bundle.objects.get(pk=order.bundle_id)
            assert (bundle.status, bundle.volume_wh) == (Bundle.Status.RESERVED, order.open_wh)
    # escrow on the accounts is exactly what the open bids hold
    for account in accounts:
        assert account.reserved == reserved.get(account.pk, 0)
    # the book is never left crossed
    book = matching.Book()
    for order in Order.objects.filter(market=market, status="open"):
        book.orders[order.pk] = engine_order(order)
    assert book.crossed_pairs(now=timezone.now()) == []
    # and the ledger alone rebuilds the units, the balances and the orders
    assert replay_ledger().ok
    assert replay_market().ok


def test_fifty_concurrent_crossing_orders_create_or_lose_nothing():
    # given 25 sellers with a 1,000 Wh bundle each and 25 buyers with EUR 100 each
    market = MarketFactory(fee_bps=25)
    sellers = [seller_with_bundles(hours=1) for _ in range(ORDERS // 2)]
    buyers = [buyer_with_funds(10_000) for _ in range(ORDERS // 2)]
    issued = sum(b.volume_wh for s in sellers for b in s.bundles)
    rng = random.Random(11)
    plan = []
    for i in range(ORDERS // 2):
        quantity = rng.choice([None, 400])
        plan.append(("sell", sellers[i], rng.randint(30_000, 50_000), quantity, "gtc"))
        tif = rng.choice(["gtc", "ioc"])
        plan.append(("buy", buyers[i], rng.randint(40_000, 60_000), rng.randint(100, 1_500), tif))

    # when all 50 orders are placed at the same moment
    def work(i: int):
        side, who, price, quantity, tif = plan[i]
        if side == "sell":
            return services.order_place(
                actor=who.user,
                market_id=market.pk,
                side="sell",
                limit_price=price,
                bundle_id=who.bundles[0].pk,
                quantity_wh=quantity,
            )
        return services.order_place(
            actor=who.user,
            market_id=market.pk,
            side="buy",
            limit_price=price,
            quantity_wh=quantity,
            account_id=who.account.pk,
            time_in_force=tif,
        )

    results = run_together(work, ORDERS)

    # then every order was taken, trades happened, and nothing was created or lost
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert Trade.objects.count() > 0
    _assert_book_consistent(market, issued, deposits=10_000 * len(buyers))
    seqs = list(Order.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, ORDERS + 1))


def test_cancel_and_fill_of_one_order_exactly_one_wins():
    # given, five times over: a resting offer, its seller cancelling and a bid taking it all
    market = MarketFactory()
    buyer = buyer_with_funds(100_000)
    outcomes = []
    for _ in range(5):
        seller = seller_with_bundles(hours=1)
        offer = services.order_place(
            actor=seller.user,
            market_id=market.pk,
            side="sell",
            limit_price=5_000,
            bundle_id=seller.bundles[0].pk,
        ).order

        def work(i: int, offer=offer, seller=seller):
            if i == 0:
                return services.order_cancel(actor=seller.user, order_id=offer.pk)
            return services.order_place(
                actor=buyer.user,
                market_id=market.pk,
                side="buy",
                limit_price=5_000,
                quantity_wh=1_000,
                account_id=buyer.account.pk,
                time_in_force="fok",
            )

        # when both arrive together
        cancelled, bid = run_together(work, 2)

        # then either the cancel won (the bid found nothing) or the fill did (the cancel
        # was refused as the order was no longer open); never both, never neither
        offer.refresh_from_db()
        if isinstance(cancelled, DomainError):
            assert cancelled.code == "order_not_open"
            assert offer.status == "filled" and len(bid.trades) == 1
            outcomes.append("fill")
        else:
            assert offer.status == "cancelled" and bid.trades == []
            assert bid.order.cancel_reason == "fok_unfilled"
            assert Bundle.objects.get(pk=offer.bundle_id).status == Bundle.Status.ACTIVE
            outcomes.append("cancel")
    issued = 5 * 1_000
    _assert_book_consistent(market, issued, deposits=100_000)
    assert len(outcomes) == 5
