"""The market's hand-written SQL (registry/model_rows.py, market/storage.py, market/locks.py) reads
and writes the same values as the ORM, on SQLite and on PostgreSQL."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from accounts.permissions import user_role_in
from market import engine_io, locks, matching, storage
from market.models import Order, SettlementAccount
from registry import model_rows as rows
from tests.factories import OrganisationFactory
from tests.market.factories import MarketFactory, buyer_with_funds, deposit

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def _bid(market, buyer, **fields) -> Order:
    order = Order(
        market=market,
        organisation=buyer.account.organisation,
        side="buy",
        status="open",
        time_in_force="gtc",
        limit_price=fields.pop("limit_price", 40_000),
        quantity_wh=1_000,
        seq=fields.pop("seq", 1),
        settlement_account_id=SettlementAccount.objects.get(
            organisation=buyer.account.organisation
        ).pk,
        certificate_account=buyer.account,
        placed_by=buyer.user,
        created_at=AT,
        updated_at=AT,
        **fields,
    )
    rows.insert([order])
    return order


def test_an_inserted_order_reads_back_equal_through_the_orm_and_the_raw_fetch():
    # given
    market, buyer = MarketFactory(), buyer_with_funds()

    # when
    order = _bid(market, buyer, accept_period_from=AT, accept_country="DE")

    # then
    stored = Order.objects.get(pk=order.pk)
    fetched = rows.fetch(
        Order,
        f"SELECT {rows.select_list(Order, 'o')} FROM market_order o WHERE o.id = %s",  # noqa: S608
        [order.pk],
    )[0]
    for name in rows.attnames(Order):
        assert getattr(stored, name) == getattr(fetched, name) == getattr(order, name), name
    assert stored.accept_period_from == AT and stored.retire_beneficiary_name == ""


def test_orders_set_matched_stores_each_orders_own_values():
    # given: two orders, one closed and one not (NULL and a time in the same statement)
    market, buyer = MarketFactory(), buyer_with_funds()
    first, second = _bid(market, buyer, seq=1), _bid(market, buyer, seq=2)
    now = timezone.now()
    first.status, first.filled_wh, first.closed_at, first.updated_at = "filled", 1_000, now, now
    second.limit_price, second.seq, second.cancel_reason, second.updated_at = 41_000, 9, "", now

    # when
    storage.orders_set_matched([first, second])

    # then
    for order in (first, second):
        stored = Order.objects.get(pk=order.pk)
        for name in ("status", "filled_wh", "limit_price", "seq", "closed_at", "updated_at"):
            assert getattr(stored, name) == getattr(order, name), name
    assert Order.objects.get(pk=second.pk).closed_at is None


def test_accounts_set_balances_stores_each_accounts_buckets():
    # given
    a, b = buyer_with_funds(100), buyer_with_funds(200)
    accounts = list(
        SettlementAccount.objects.filter(
            organisation__in=[a.account.organisation, b.account.organisation]
        )
    )
    for i, account in enumerate(accounts):
        account.available, account.reserved = 10 + i, 90 - i

    # when
    storage.accounts_set_balances(accounts)

    # then
    for i, account in enumerate(accounts):
        stored = SettlementAccount.objects.get(pk=account.pk)
        assert (stored.available, stored.reserved) == (10 + i, 90 - i)


def test_member_accounts_lock_finds_the_organisations_accounts_with_the_ids_asked():
    # given
    a, b = buyer_with_funds(100), buyer_with_funds(200)
    other = OrganisationFactory()  # no account in EUR yet
    b_id = SettlementAccount.objects.get(organisation=b.account.organisation).pk

    # when
    with transaction.atomic():
        found, own = locks.member_accounts_lock(
            [b_id], [a.account.organisation_id, other.pk], "EUR"
        )

    # then
    a_id = SettlementAccount.objects.get(organisation=a.account.organisation).pk
    assert sorted(found) == sorted([a_id, b_id])
    assert own == {a.account.organisation_id: a_id}


@pytest.mark.parametrize("role", [None, Membership.Role.VIEWER, Membership.Role.OPERATOR])
def test_account_with_role_reads_the_role_the_permissions_read(role):
    # given
    buyer = buyer_with_funds(0)
    organisation = buyer.account.organisation
    user = buyer_with_funds(0).user
    if role is not None:
        Membership.objects.create(user=user, organisation=organisation, role=role)

    # when
    account, found_role = storage.account_with_role(buyer.account.pk, user.pk)

    # then
    assert found_role == user_role_in(user, organisation)
    assert account.organisation == organisation
    assert account.organisation.status == organisation.status


def test_makers_for_reads_only_the_crossing_compatible_side_in_priority_order():
    # given: bids at several prices and criteria; an offer of DE wind at 40,000
    market, buyer = MarketFactory(), buyer_with_funds()
    deposit(buyer.account.organisation_id, 10)
    wanted = [
        _bid(market, buyer, limit_price=45_000, seq=3),
        _bid(market, buyer, limit_price=45_000, seq=4, accept_country="DE"),
        _bid(market, buyer, limit_price=40_000, seq=2, accept_period_from=AT),
    ]
    _bid(market, buyer, limit_price=39_999, seq=1)  # does not cross
    _bid(market, buyer, limit_price=50_000, seq=5, accept_country="FR")  # not compatible
    _bid(market, buyer, limit_price=50_000, seq=6, accept_period_to=AT)  # ends too early
    offer = matching.Order(
        id=0,
        side="sell",
        price=40_000,
        quantity=10**9,
        seq=99,
        owner=0,
        attributes=matching.Attributes(
            technology_code="T020001",
            energy_source_code="F01050100",
            country="DE",
            grid_area_code="",
            device_id=1,
            period_start=AT,
            period_end=AT + dt.timedelta(hours=1),
        ),
    )

    # when
    with transaction.atomic():
        found = engine_io.makers_for(market, offer, now=timezone.now())

    # then
    assert list(found) == [o.pk for o in wanted]
    assert engine_io.as_order(found[wanted[2].pk]).accept_period_from == AT
