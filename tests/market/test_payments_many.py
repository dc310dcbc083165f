"""Paying many obligations at once (`payments_make_many`, what a group of contract
executions uses) gives each one exactly the outcome of offering them one by one."""

import json
from dataclasses import dataclass

import pytest
from django.db import transaction

from ledger.models import PendingEvent
from market import events
from market.models import JournalEntry, SettlementAccount
from market.services import contract_obligation_pay
from registry.hooks import pay_through
from tests.factories import OrganisationFactory
from tests.market.factories import deposit

pytestmark = pytest.mark.django_db

KIND = JournalEntry.Kind.CONTRACT_PAYMENT


@dataclass
class Owed:
    """What the market reads of a payable (see market/services/payments.py)."""

    pk: int
    payer_id: int
    payee_id: int
    amount_minor: int
    currency: str = "EUR"
    ledger_subject_type: str = "settlement_obligation"


def one_by_one(payables: list[Owed]) -> list[tuple[str, str]]:
    """What the contracts app does for a single execution: each offered in a savepoint."""
    return [pay_through([contract_obligation_pay], payable) for payable in payables]


def together(payables: list[Owed]) -> list[tuple[str, str]]:
    return contract_obligation_pay.pay_many(payables)


def paid_events() -> list[tuple[list[str], dict]]:
    queued = PendingEvent.objects.filter(kind=events.PAID).order_by("pk")
    return [(e.subjects, json.loads(bytes(e.event))["data"]) for e in queued]


def outcome(pay, payables: list[Owed]) -> dict:
    """Run `pay` and read what it did, by names and amounts (not ids); then undo it."""
    with transaction.atomic():
        answers = pay(payables)
        paid_for = dict(JournalEntry.objects.filter(kind=KIND).values_list("pk", "reference"))
        seen = {
            "answers": [
                (paid_for[int(ref.split(":")[1])] if ref.startswith("journal_entry:") else ref, why)
                for ref, why in answers
            ],
            "balances": sorted(
                SettlementAccount.objects.filter(kind="member").values_list(
                    "organisation_id", "currency", "available", "reserved"
                )
            ),
            "entries": sorted(
                (entry.reference, sorted(entry.lines.values_list("bucket", "amount")))
                for entry in JournalEntry.objects.filter(kind=KIND)
            ),
            "events": [
                (
                    data["paid_for"],
                    data["amount_minor"],
                    data["payer_organisation_id"],
                    data["payee_organisation_id"],
                    len(subjects),
                )
                for subjects, data in paid_events()
            ],
        }
        transaction.set_rollback(True)
    return seen


def test_paying_together_gives_each_payable_what_paying_one_by_one_gives():
    # given: A has 100.00, B nothing yet, C and D no settlement account at all
    a, b, c, d = (OrganisationFactory().pk for _ in range(4))
    deposit(a, 10_000)
    deposit(b, 1)
    payables = [
        Owed(1, a, b, 6_000),  # paid
        Owed(2, a, c, 5_000),  # short: 4,000 left
        Owed(3, b, c, 3_000),  # paid from what B just received; C's account created
        Owed(4, c, a, 1_000),  # paid from what C just received
        Owed(5, a, a, 500),  # to itself: nothing to pay
        Owed(6, a, b, 0),  # nothing to pay
        Owed(7, a, b, 10, currency="ZZZ"),  # not a currency
        Owed(8, a, b, -1),  # a negative amount
        Owed(9, d, a, 1),  # no account: short funds
        Owed(1, a, b, 6_000),  # the first one again: paid once
        Owed(10, a, b, 4_000),  # exactly what is left
    ]

    # when they are paid together, and (undone) one by one
    seen_together = outcome(together, payables)
    seen_alone = outcome(one_by_one, payables)

    # then every answer, balance, journal entry and event is the same
    assert seen_together == seen_alone
    assert [why for _ref, why in seen_together["answers"]] == [
        "",
        "insufficient_funds",
        "",
        "",
        "",
        "",
        "invalid_currency",
        "invalid_amount",
        "insufficient_funds",
        "",
        "",
    ]
    assert len(seen_together["events"]) == 4


def test_payables_in_two_currencies_are_paid_as_one_by_one():
    # given payables in euros and in dollars
    a, b = (OrganisationFactory().pk for _ in range(2))
    deposit(a, 1_000)
    deposit(a, 500, currency="USD")
    payables = [Owed(1, a, b, 700), Owed(2, a, b, 600, currency="USD"), Owed(3, a, b, 300)]

    # when paid together and one by one
    seen_together = outcome(together, payables)

    # then the same, and each currency's balance checked on its own
    assert seen_together == outcome(one_by_one, payables)
    assert [why for _ref, why in seen_together["answers"]] == ["", "insufficient_funds", ""]


def test_an_obligation_paid_earlier_is_not_paid_again():
    # given an obligation already paid
    a, b = (OrganisationFactory().pk for _ in range(2))
    deposit(a, 1_000)
    (first,) = one_by_one([Owed(1, a, b, 300)])

    # when it comes again in a group
    (again,) = together([Owed(1, a, b, 300)])

    # then it answers the first payment's reference and moves nothing
    assert again == first
    assert JournalEntry.objects.filter(kind=KIND).count() == 1
    assert SettlementAccount.objects.get(organisation_id=a, kind="member").available == 700
