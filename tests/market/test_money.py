"""Deposits, withdrawals and the journal: balanced entries, balances never below zero."""

import pytest
from django.db import IntegrityError, transaction

from market import services
from market.models import JournalEntry, JournalLine, MarketOperator, SettlementAccount
from market.services.money import JournalUnbalanced, journal_post
from tests.factories import OrganisationFactory, auditor_user, issuing_body_user, member_of
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def _deposit(actor, organisation, amount=50_000, **kw):
    return services.settlement_deposit(
        actor=actor,
        organisation_id=organisation.pk,
        currency=kw.pop("currency", "EUR"),
        amount_minor=amount,
        reference=kw.pop("reference", "SEPA-2026-0001"),
    )


def test_the_issuing_body_records_a_deposit_as_a_balanced_entry_with_one_event():
    # given
    ib = issuing_body_user()
    organisation = OrganisationFactory()
    before = last_event_id()

    # when
    entry = _deposit(ib, organisation, 50_000)

    # then
    account = SettlementAccount.objects.get(organisation=organisation, currency="EUR")
    external = SettlementAccount.objects.get(kind="external", currency="EUR")
    assert (account.available, account.reserved) == (50_000, 0)
    assert external.available == -50_000
    lines = JournalLine.objects.filter(entry=entry)
    assert sum(line.amount for line in lines) == 0
    [event] = events_since(before)
    assert event["type"] == "settlement.deposited"
    assert event["actor"] == f"user:{ib.pk}"
    assert f"settlement_account:{account.pk}" in event["subject"]
    assert f"journal_entry:{entry.pk}" in event["subject"]
    assert event["data"]["amount_minor"] == 50_000
    # the bank reference stays out of the ledger; its salted hash goes in
    assert "SEPA" not in str(event)
    assert len(event["data"]["reference_commitment"]) == 64


def test_a_market_operator_records_a_withdrawal_from_available_funds():
    # given an organisation named market operator, and 500.00 deposited
    operator_org = OrganisationFactory()
    services.market_operator_grant(actor=issuing_body_user(), organisation_id=operator_org.pk)
    operator = member_of(operator_org, role="operator")
    organisation = OrganisationFactory()
    _deposit(operator, organisation, 50_000)
    before = last_event_id()

    # when
    services.settlement_withdraw(
        actor=operator,
        organisation_id=organisation.pk,
        currency="EUR",
        amount_minor=20_000,
        reference="payout-7",
    )

    # then
    account = SettlementAccount.objects.get(organisation=organisation)
    assert account.available == 30_000
    assert SettlementAccount.objects.get(kind="external").available == -30_000
    assert [e["type"] for e in events_since(before)] == ["settlement.withdrawn"]


def test_a_withdrawal_beyond_available_funds_is_refused_with_nothing_changed(refused):
    # given
    ib = issuing_body_user()
    organisation = OrganisationFactory()
    _deposit(ib, organisation, 1_000)

    # when / then
    error = refused(
        lambda: services.settlement_withdraw(
            actor=ib,
            organisation_id=organisation.pk,
            currency="EUR",
            amount_minor=1_001,
            reference="too much",
        ),
        "insufficient_funds",
        409,
    )
    assert error.extra["available"] == 1_000


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"amount_minor": 0}, "invalid_amount", 400),
        ({"amount_minor": -5}, "invalid_amount", 400),
        ({"amount_minor": 1.5}, "invalid_amount", 400),
        ({"amount_minor": True}, "invalid_amount", 400),
        ({"currency": "XYZ"}, "invalid_currency", 400),
        ({"currency": "EURO"}, "invalid_currency", 400),
        ({"reference": "  "}, "reference_required", 400),
        ({"organisation_id": 999_999}, "organisation_not_found", 404),
    ],
)
def test_bad_deposits_are_refused_with_a_code(refused, kwargs, code, status):
    # given
    ib = issuing_body_user()
    organisation = OrganisationFactory()
    call = {
        "actor": ib,
        "organisation_id": organisation.pk,
        "currency": "EUR",
        "amount_minor": 100,
        "reference": "r-1",
    } | kwargs

    # when / then
    refused(lambda: services.settlement_deposit(**call), code, status)


def test_only_the_issuing_body_or_a_market_operator_records_money(refused):
    # given a trader's admin, an auditor and a pending organisation
    organisation = OrganisationFactory()
    trader = member_of(organisation)

    # when / then
    refused(lambda: _deposit(trader, organisation), "not_market_operator", 403)
    refused(lambda: _deposit(auditor_user(), organisation), "auditor_read_only", 403)
    pending = OrganisationFactory(status="pending")
    refused(lambda: _deposit(issuing_body_user(), pending), "organisation_not_approved", 409)


def test_granting_the_market_operator_role_twice_is_a_conflict(refused):
    # given
    ib = issuing_body_user()
    organisation = OrganisationFactory()
    services.market_operator_grant(actor=ib, organisation_id=organisation.pk)

    # when / then
    refused(
        lambda: services.market_operator_grant(actor=ib, organisation_id=organisation.pk),
        "market_operator_exists",
        409,
    )
    assert MarketOperator.objects.count() == 1
    refused(
        lambda: services.market_operator_grant(
            actor=member_of(organisation), organisation_id=organisation.pk
        ),
        "not_issuing_body",
        403,
    )


def test_an_unbalanced_movement_is_refused_before_anything_is_written():
    # given
    ib = issuing_body_user()
    organisation = OrganisationFactory()
    _deposit(ib, organisation, 1_000)
    account = SettlementAccount.objects.get(organisation=organisation)
    entries = JournalEntry.objects.count()

    # when / then
    with transaction.atomic(), pytest.raises(JournalUnbalanced):
        journal_post(
            kind="release",
            currency="EUR",
            lines=[(account, "available", 10)],
            actor=ib,
            now=account.created_at,
        )
    assert JournalEntry.objects.count() == entries


def test_the_database_refuses_a_negative_member_balance_whatever_writes_it():
    # given
    organisation = OrganisationFactory()
    account = SettlementAccount.objects.create(organisation=organisation, currency="EUR")

    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        SettlementAccount.objects.filter(pk=account.pk).update(available=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        SettlementAccount.objects.filter(pk=account.pk).update(reserved=-1)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE market_journalline SET amount = amount + 1",
        "DELETE FROM market_journalline",
        "UPDATE market_journalentry SET kind = 'deposit'",
    ],
)
def test_the_journal_is_append_only(sql):
    # given a recorded deposit
    _deposit(issuing_body_user(), OrganisationFactory(), 1_000)

    # when / then
    from django.db import connection

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert sum(JournalLine.objects.values_list("amount", flat=True)) == 0
