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

from ledger.services import ledger_append, ledger_append_many
from market import errors, events
from market.locks import member_accounts_lock, settlement_accounts_lock
from market.models import JournalEntry, SettlementAccount
from market.services.money import (
    AVAILABLE,
    Journal,
    currency_check,
    journal_post,
    settlement_account_ensure,
)
from registry.errors import DomainError

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


def _currency_due(payable: Any) -> str | None:
    """The payable's currency when it moves money, None when there is nothing to pay (zero,
    or to itself); a bad currency or a negative amount raises."""
    currency = currency_check(payable.currency)
    if payable.amount_minor < 0:
        raise errors.InvalidAmount(amount=str(payable.amount_minor))
    if payable.amount_minor == 0 or payable.payer_id == payable.payee_id:
        return None
    return currency


def _paid_for(payable: Any) -> str:
    """The journal entry's reference: what it pays (unique per payment kind)."""
    return f"{payable.ledger_subject_type}:{payable.pk}"


@transaction.atomic
def payment_make(*, payable: Any, kind: str, actor: str = SYSTEM) -> str:
    """Pay `payable` (see the module docstring) from its payer's to its payee's settlement
    account; return the reference of the journal entry (an earlier one if it was paid)."""
    if kind not in (JournalEntry.Kind.CONTRACT_PAYMENT, JournalEntry.Kind.BILL_PAYMENT):
        raise ValueError(f"not a payment kind: {kind}")
    currency = _currency_due(payable)
    if currency is None:
        return NOTHING_TO_PAY
    amount = payable.amount_minor
    paid_for = _paid_for(payable)
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


class ContractObligationPayer:
    """The `contracts.settlement_handlers` hook: pay a PPA's settlement obligation.

    Called with one obligation it is `payment_make`. `pay_many` pays a group of executions'
    obligations (`contracts.services.group`) with the same outcome for each, in a few
    statements for the whole group instead of about ten per obligation."""

    def __call__(self, obligation: Any) -> str:
        return payment_make(payable=obligation, kind=JournalEntry.Kind.CONTRACT_PAYMENT)

    def pay_many(self, obligations: list[Any]) -> list[tuple[str, str]]:
        return payments_make_many(obligations, kind=JournalEntry.Kind.CONTRACT_PAYMENT)


contract_obligation_pay = ContractObligationPayer()


def payments_make_many(payables: list[Any], *, kind: str) -> list[tuple[str, str]]:
    """Pay `payables` in order, inside the caller's transaction; for each (reference, "")
    or ("", the refusal's code), exactly what `payment_make` offered one by one in its own
    savepoint would give, each payment seeing the balances the ones before it left.

    Instead of per payment two account lookups, a lock, the earlier-entry check, a
    savepoint, the entry, its lines, the balances and its event: every member account of
    the payers and payees found and locked in one statement (pk order), the earlier
    entries in one, each payment checked in memory (a refusal writes nothing), then the
    entries, lines, balances and `settlement.paid` events in one statement each. Payees
    without an account in the currency get one first (a payment refused for short funds
    may so leave its payee an empty account, which its next payment would create anyway).
    Payables in more than one currency are paid one by one (`payment_make` in a savepoint
    each, their accounts locked first in pk order)."""
    outcomes: list[tuple[str, str] | None] = [None] * len(payables)
    due: list[tuple[int, Any, str]] = []
    for i, payable in enumerate(payables):
        try:
            currency = _currency_due(payable)
        except DomainError as exc:
            outcomes[i] = ("", exc.code)
            continue
        if currency is None:
            outcomes[i] = (NOTHING_TO_PAY, "")
        else:
            due.append((i, payable, currency))
    currencies = {currency for _i, _payable, currency in due}
    if len(currencies) > 1:
        contract_obligations_lock([payable for _i, payable, _currency in due])
        for i, payable, _currency in due:
            outcomes[i] = _pay_alone(payable, kind)
    elif currencies:
        _pay_together(due, kind, currencies.pop(), outcomes)
    return [outcome or ("", "") for outcome in outcomes]


def _pay_alone(payable: Any, kind: str) -> tuple[str, str]:
    try:
        with transaction.atomic():
            return payment_make(payable=payable, kind=kind), ""
    except DomainError as exc:
        return "", exc.code


def _pay_together(
    due: list[tuple[int, Any, str]], kind: str, currency: str, outcomes: list
) -> None:
    """`payments_make_many` for payables of one currency, each payable and unpaid."""
    payers = {payable.payer_id for _i, payable, _c in due}
    payees = {payable.payee_id for _i, payable, _c in due}
    accounts, own = member_accounts_lock((), payers | payees, currency)
    # A payee is paid only from an existing payer account: create only those it needs.
    missing = {p.payee_id for _i, p, _c in due if p.payer_id in own} - set(own)
    if missing:
        for organisation_id in sorted(missing):
            settlement_account_ensure(organisation_id=organisation_id, currency=currency)
        accounts, own = member_accounts_lock((), payers | payees, currency)
    paid_for = {i: _paid_for(payable) for i, payable, _c in due}
    found = JournalEntry.objects.filter(kind=kind, reference__in=paid_for.values())
    earlier = {entry.reference: payment_reference(entry) for entry in found.only("reference")}
    journal = Journal(currency=currency, actor=SYSTEM, now=timezone.now())
    posted: dict[str, JournalEntry] = {}
    paid, again = [], []
    for i, payable, _c in due:
        reference, amount = paid_for[i], payable.amount_minor
        if reference in earlier:
            outcomes[i] = (earlier[reference], "")
        elif reference in posted:  # the same payable twice in one call: paid once
            again.append((i, posted[reference]))
        elif payable.payer_id not in own:
            outcomes[i] = ("", errors.InsufficientFunds.code)
        else:
            payer, payee = accounts[own[payable.payer_id]], accounts[own[payable.payee_id]]
            lines = [(payer, AVAILABLE, -amount), (payee, AVAILABLE, amount)]
            try:  # short funds raise before any balance moves (the payer's line is first)
                entry = journal.post(kind, lines, reference=reference)
            except DomainError as exc:
                outcomes[i] = ("", exc.code)
                continue
            assert entry is not None
            posted[reference] = entry
            paid.append((i, entry, payer, payee, payable))
    journal.write()
    for i, entry, *_rest in paid:
        outcomes[i] = (payment_reference(entry), "")
    for i, entry in again:
        outcomes[i] = (payment_reference(entry), "")
    ledger_append_many(
        kind=events.PAID,
        actor=SYSTEM,
        events=[
            (
                [entry, payer, payee, payable],
                events.payment_data(entry, payer, payee, payable.amount_minor, paid_for[i]),
            )
            for i, entry, payer, payee, payable in paid
        ],
        returning=False,  # inside `deferred_writes()`, it travels with the caller's next
    )


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
