"""replay_ledger rebuilds the market's balances, escrow, orders and the units it moved."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from certificates.replay import replay_ledger
from market import services
from market.models import Order, SettlementAccount
from market.replay import replay_market
from tests.charging.factories import charging_world
from tests.contracts.conftest import world as world  # the PPA world fixture
from tests.market.factories import MarketFactory, buyer_with_funds, deposit, seller_with_bundles

pytestmark = pytest.mark.django_db


@pytest.fixture
def session():
    """Offers, partial and full fills, an IOC rest, an amend and a cancel, with a fee."""
    market = MarketFactory(fee_bps=150)
    sellers = [seller_with_bundles() for _ in range(2)]
    buyers = [buyer_with_funds(50_000) for _ in range(2)]
    for i, seller in enumerate(sellers):
        for bundle in seller.bundles:
            services.order_place(
                actor=seller.user,
                market_id=market.pk,
                side="sell",
                limit_price=40_000 + 2_000 * i,
                bundle_id=bundle.pk,
                quantity_wh=700,
            )
    placed = [
        services.order_place(
            actor=buyer.user,
            market_id=market.pk,
            side="buy",
            limit_price=price,
            quantity_wh=quantity,
            account_id=buyer.account.pk,
            time_in_force=tif,
        ).order
        for buyer, price, quantity, tif in [
            (buyers[0], 41_000, 1_000, "gtc"),
            (buyers[1], 43_000, 900, "ioc"),
            (buyers[1], 30_000, 5_000, "gtc"),
        ]
    ]
    services.order_amend(actor=buyers[1].user, order_id=placed[2].pk, limit_price=35_000)
    services.order_cancel(actor=buyers[1].user, order_id=placed[2].pk)
    return market


def test_the_market_replays_to_its_tables(session):
    # when
    market_report = replay_market()
    certificate_report = replay_ledger()

    # then
    assert market_report.ok, market_report.problems
    assert market_report.trades > 0 and market_report.open_orders > 0
    assert certificate_report.ok, certificate_report.problems
    call_command("replay_ledger")


def test_a_balance_changed_behind_the_services_back_is_found(session):
    # given a balance edited by hand
    account = SettlementAccount.objects.filter(kind="member", available__gt=0).first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE market_settlementaccount SET available = available + 1 WHERE id = %s",
            [account.pk],
        )

    # when / then
    report = replay_market()
    assert not report.ok
    assert any(f"settlement account {account.pk}" in p for p in report.problems)
    with pytest.raises(CommandError):
        call_command("replay_ledger")


def test_an_order_changed_behind_the_services_back_is_found(session):
    order = Order.objects.filter(status="open").first()
    Order.objects.filter(pk=order.pk).update(filled_wh=order.filled_wh + 1)

    report = replay_market()

    assert not report.ok
    assert any(f"order {order.pk}" in p for p in report.problems)


def test_contract_and_bill_payments_replay_and_a_changed_payee_balance_is_found(world):
    # given a PPA payment and a charging bill payment
    from tests.market.test_payments import billed_session, run_ppa

    deposit(world.buyer_account.organisation_id, 1_000)
    run_ppa(world)
    charging = charging_world()
    deposit(charging.driver.pk, 5_000)
    bill = billed_session(charging)
    assert bill.settlement == "settled"

    # when / then: the ledger alone rebuilds the balances
    report = replay_market()
    assert report.ok, report.problems
    payee = SettlementAccount.objects.get(organisation_id=charging.cpo.pk)
    assert report.balances[payee.pk] == (bill.total_minor, 0)

    # given the payee's balance edited by hand
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE market_settlementaccount SET available = available - 1 WHERE id = %s",
            [payee.pk],
        )

    # when / then
    report = replay_market()
    assert any(f"settlement account {payee.pk}" in p for p in report.problems)
