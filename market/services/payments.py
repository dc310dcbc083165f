"""Payments: money another app says one organisation owes another, paid between their
settlement accounts.

The contracts app (a PPA's `SettlementObligation`) and the charging app (a `Bill`) call
these through their hooks (`contracts.settlement_handlers`, `charging.bill_settlers`),
which `MarketConfig.ready` fills by name: the market does not import either app. What it
reads of the object it is handed is a small protocol, the same for both:

    pk, ledger_subject_type          what is paid (the journal reference, a ledger subject)
    payer_id, payee_id               organisation ids
    currency, amount_minor           ISO 4217 code, integer minor units (>= 0)

A payment is one journal entry (`contract_payment` or `bill_payment`) moving
`amount_minor` from the payer's available bucket to the payee's, and one
`settlement.paid` event naming the entry, both settlement accounts and what was paid.
The entry's reference is `<ledger_subject_type>:<pk>`, unique per kind in the database,
so an obligation is paid once however often (or however concurrently) it is attempted:
the second attempt finds the first's entry after the account locks and returns it.

Short funds raise `insufficient_funds` (409) before anything is written; the caller keeps
its obligation or bill open with that code and tries again later.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger.services import ledger_append
from market import errors, events
from market.locks import settlement_accounts_lock
from market.models import JournalEntry, SettlementAccount
from market.services.money import AVAILABLE, currency_check, journal_post, settlement_account_ensure

SYSTEM = "system:market"
NOTHING_TO_PAY = "nothing_to_pay"


def payment_reference(entry: JournalEntry) -> str:
    """What the caller stores as its settlement reference: the journal entry."""
    return f"{entry.ledger_subject_type}:{entry.pk}"


def _member_account_id(organisation_id: int, currency: str) -> int | None:
    return (
        SettlementAccount.objects.filter(
            organisation_id=organisation_id, currency=currency, kind=SettlementAccount.Kind.MEMBER
        )
        .values_list("pk", flat=True)
        .first()
    )


@transaction.atomic
def payment_make(*, payable: Any, kind: str, actor: str = SYSTEM) -> str:
    """Pay `payable` (see the module docstring) from its payer's to its payee's settlement
    account; return the reference of the journal entry (an earlier one if it was paid)."""
    if kind not in (JournalEntry.Kind.CONTRACT_PAYMENT, JournalEntry.Kind.BILL_PAYMENT):
        raise ValueError(f"not a payment kind: {kind}")
    currency = currency_check(payable.currency)
    amount = payable.amount_minor
    if amount < 0:
        raise errors.InvalidAmount(amount=str(amount))
    if amount == 0 or payable.payer_id == payable.payee_id:
        return NOTHING_TO_PAY
    paid_for = f"{payable.ledger_subject_type}:{payable.pk}"
    payer_id = _member_account_id(payable.payer_id, currency)
    if payer_id is None:
        raise errors.InsufficientFunds(
            organisation_id=payable.payer_id, currency=currency, available=0, needed=amount
        )
    payee_id = settlement_account_ensure(organisation_id=payable.payee_id, currency=currency)
    locked = settlement_accounts_lock([payer_id, payee_id])
    # After the locks: a concurrent payment of the same obligation has committed by now
    # (it held these rows), so its entry is visible here and we pay nothing.
    earlier = JournalEntry.objects.filter(kind=kind, reference=paid_for).first()
    if earlier is not None:
        return payment_reference(earlier)
    payer, payee = locked[payer_id], locked[payee_id]
    entry = journal_post(
        kind=kind,
        currency=currency,
        lines=[(payer, AVAILABLE, -amount), (payee, AVAILABLE, amount)],
        actor=actor,
        now=timezone.now(),
        reference=paid_for,
    )
    assert entry is not None
    ledger_append(
        kind=events.PAID,
        actor=actor,
        subject=[entry, payer, payee, payable],
        data=events.payment_data(entry, payer, payee, amount, paid_for),
    )
    return payment_reference(entry)


def contract_obligation_pay(obligation: Any) -> str:
    """The `contracts.settlement_handlers` hook: pay a PPA's settlement obligation."""
    return payment_make(payable=obligation, kind=JournalEntry.Kind.CONTRACT_PAYMENT)


def contract_obligations_lock(obligations: list[Any]) -> None:
    """The `contracts.settlement_locks` hook: lock, at once and in pk order, the existing
    settlement accounts the payments of `obligations` will lock (a payee's account that
    does not exist yet is created by its payment, as without this)."""
    wanted = {
        (org, ob.currency)
        for ob in obligations
        if ob.amount_minor > 0 and ob.payer_id != ob.payee_id
        for org in (ob.payer_id, ob.payee_id)
    }
    if not wanted:
        return
    found = SettlementAccount.objects.filter(
        kind=SettlementAccount.Kind.MEMBER,
        organisation_id__in={org for org, _ in wanted},
        currency__in={currency for _, currency in wanted},
    ).values_list("pk", "organisation_id", "currency")
    settlement_accounts_lock([pk for pk, org, cur in found if (org, cur) in wanted])


def charging_bill_pay(bill: Any) -> str:
    """The `charging.bill_settlers` hook: the driver's organisation pays the station's."""
    return payment_make(payable=bill, kind=JournalEntry.Kind.BILL_PAYMENT)
