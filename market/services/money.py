"""Money: settlement accounts, the double-entry journal, deposits and withdrawals.

`journal_post` is the only writer of balances: it takes accounts the caller has locked
(`market.locks.settlement_accounts_lock`, pk order), checks that the lines sum to zero,
refuses (409 `insufficient_funds`) a line that would take a member's bucket below zero
(the database's CheckConstraint is the backstop), and writes the entry, its lines and the
new balances. Deposits and withdrawals lock the member's and the currency's external
account, in pk order, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.errors import AuditorReadOnly, NotIssuingBody, OrganisationNotFound
from accounts.models import Membership, Organisation, User
from accounts.permissions import user_is_auditor, user_is_issuing_body
from ledger.services import ledger_append
from market import errors, events, storage
from market.locks import settlement_accounts_lock
from market.models import JournalEntry, JournalLine, MarketOperator, SettlementAccount
from registry import model_rows as rows
from registry.countries import currency_code_valid

MAX_AMOUNT = 2**53 - 1
Line = tuple[SettlementAccount, str, int]
AVAILABLE, RESERVED = JournalLine.Bucket.AVAILABLE.value, JournalLine.Bucket.RESERVED.value


class JournalUnbalanced(AssertionError):
    """A bug: a movement whose lines do not sum to zero would create or destroy money."""


def currency_check(currency: Any) -> str:
    """An ISO 4217 alphabetic code, upper case."""
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise errors.InvalidCurrency(currency=str(currency)[:8])
    code = currency.upper()
    if not currency_code_valid(code):
        raise errors.InvalidCurrency(currency=code)
    return code


def amount_check(amount: Any) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise errors.InvalidAmount(amount=str(amount)[:32])
    return amount


def settlement_account_ensure(*, organisation_id: int | None, currency: str) -> int:
    """The id of the organisation's (or, for None, the external) account in `currency`,
    created if missing; two transactions creating it at once both get the one row."""
    kind = SettlementAccount.Kind.MEMBER if organisation_id else SettlementAccount.Kind.EXTERNAL
    rows = SettlementAccount.objects.filter(
        organisation_id=organisation_id, currency=currency, kind=kind
    )
    found = rows.values_list("pk", flat=True).first()
    if found is not None:
        return found
    SettlementAccount.objects.bulk_create(
        [SettlementAccount(organisation_id=organisation_id, currency=currency, kind=kind)],
        ignore_conflicts=True,
    )
    return rows.values_list("pk", flat=True).get()


class Journal:
    """Balanced movements on locked accounts: each checked (and applied to the accounts in
    memory) as it is posted, all written together by `write` (a few statements however
    many entries an order's fills make)."""

    def __init__(self, *, currency: str, actor: User | str | None, now: dt.datetime) -> None:
        self.currency, self.now = currency, now
        self.created_by = actor if isinstance(actor, User) else None
        self.entries: list[JournalEntry] = []
        self._lines: list[tuple[JournalEntry, SettlementAccount, str, int]] = []
        self._written = 0

    def post(
        self,
        kind: str,
        lines: Sequence[Line],
        *,
        order_id: int | None = None,
        trade_id: int | None = None,
        reference: str = "",
        reference_salt: str = "",
    ) -> JournalEntry | None:
        """Check and apply one movement; None when every line is zero."""
        lines = [line for line in lines if line[2] != 0]
        if not lines:
            return None
        if sum(amount for _account, _bucket, amount in lines) != 0:
            raise JournalUnbalanced(f"{kind} lines sum to {sum(a for _, _, a in lines)}")
        for account, bucket, amount in lines:
            if account.currency != self.currency:
                raise JournalUnbalanced(f"account {account.pk} is in {account.currency}")
            balance = getattr(account, bucket) + amount
            if balance < 0 and account.kind == SettlementAccount.Kind.MEMBER:
                raise errors.InsufficientFunds(
                    settlement_account_id=account.pk,
                    currency=self.currency,
                    available=account.available,
                    reserved=account.reserved,
                    needed=-amount,
                    bucket=bucket,
                )
            setattr(account, bucket, balance)
        entry = JournalEntry(
            kind=kind,
            currency=self.currency,
            order_id=order_id,
            trade_id=trade_id,
            reference=reference,
            reference_salt=reference_salt,
            created_by=self.created_by,
            created_at=self.now,
        )
        entry.posted_lines = [(a.pk, b, m) for a, b, m in lines]
        self.entries.append(entry)
        self._lines += [(entry, account, bucket, amount) for account, bucket, amount in lines]
        return entry

    def write(self) -> None:
        """Insert the entries and lines posted since the last write; store the balances."""
        entries = self.entries[self._written :]
        if not entries:
            return
        rows.insert(entries)  # hand-written INSERTs: bulk_create's Python cost more here
        rows.insert(
            [
                JournalLine(entry=entry, account=account, bucket=bucket, amount=amount)
                for entry, account, bucket, amount in self._lines
            ],
            ids=False,  # nothing reads a line's id: it may travel with the next statement
        )
        storage.accounts_set_balances({id(line[1]): line[1] for line in self._lines}.values())
        self._written, self._lines = len(self.entries), []


def journal_post(
    *,
    kind: str,
    currency: str,
    lines: Sequence[Line],
    actor: User | str | None,
    now: dt.datetime,
    reference: str = "",
    reference_salt: str = "",
) -> JournalEntry | None:
    """Write one balanced movement on locked accounts; None when every line is zero."""
    journal = Journal(currency=currency, actor=actor, now=now)
    entry = journal.post(kind, lines, reference=reference, reference_salt=reference_salt)
    journal.write()
    return entry


# ---------------------------------------------------------------- who records money


def user_is_market_operator(user: User) -> bool:
    """An operator or admin of the issuing body or of an approved market operator."""
    if user_is_issuing_body(user):
        return True
    return Membership.objects.filter(
        user=user,
        role__in=[Membership.Role.OPERATOR, Membership.Role.ADMIN],
        organisation__status=Organisation.Status.APPROVED,
        organisation_id__in=MarketOperator.objects.values("organisation_id"),
    ).exists()


def _require_market_operator(actor: User | str) -> None:
    if isinstance(actor, str):
        if not actor.startswith("system"):
            raise errors.NotMarketOperator()
        return
    if user_is_auditor(actor) and not user_is_issuing_body(actor):
        raise AuditorReadOnly()
    if not user_is_market_operator(actor):
        raise errors.NotMarketOperator()


def _member_organisation(organisation_id: Any) -> Organisation:
    organisation = (
        Organisation.objects.filter(pk=organisation_id).first()
        if isinstance(organisation_id, int) and not isinstance(organisation_id, bool)
        else None
    )
    if organisation is None:
        raise OrganisationNotFound(organisation_id=organisation_id)
    if not organisation.is_approved:
        raise errors.OrganisationNotApprovedForMarket(organisation_id=organisation.pk)
    return organisation


def _reference(reference: Any) -> tuple[str, str, str]:
    """(reference, salt, commitment): the ledger carries only the salted hash."""
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 200:
        raise errors.ReferenceRequired()
    reference = reference.strip()
    salt = secrets.token_hex(16)
    return reference, salt, events.reference_commitment(salt, reference)


def _external_movement(
    *,
    kind: str,
    actor: User | str,
    organisation_id: Any,
    currency: Any,
    amount_minor: Any,
    reference: Any,
) -> JournalEntry:
    _require_market_operator(actor)
    currency = currency_check(currency)
    amount = amount_check(amount_minor)
    reference, salt, commitment = _reference(reference)
    organisation = _member_organisation(organisation_id)
    member_id = settlement_account_ensure(organisation_id=organisation.pk, currency=currency)
    external_id = settlement_account_ensure(organisation_id=None, currency=currency)
    locked = settlement_accounts_lock([member_id, external_id])
    member, external = locked[member_id], locked[external_id]
    sign = 1 if kind == JournalEntry.Kind.DEPOSIT else -1
    now = timezone.now()
    entry = journal_post(
        kind=kind,
        currency=currency,
        lines=[(external, AVAILABLE, -sign * amount), (member, AVAILABLE, sign * amount)],
        actor=actor,
        now=now,
        reference=reference,
        reference_salt=salt,
    )
    assert entry is not None
    ledger_append(
        kind=events.DEPOSITED if sign > 0 else events.WITHDRAWN,
        actor=actor,
        subject=[member, entry, organisation, external],
        data=events.external_movement_data(entry, member, amount, commitment, external.pk),
    )
    return entry


@transaction.atomic
def settlement_deposit(
    *,
    actor: User | str,
    organisation_id: int,
    currency: str,
    amount_minor: int,
    reference: str,
) -> JournalEntry:
    """The operator records money received for an organisation (outside the registry)."""
    return _external_movement(
        kind=JournalEntry.Kind.DEPOSIT,
        actor=actor,
        organisation_id=organisation_id,
        currency=currency,
        amount_minor=amount_minor,
        reference=reference,
    )


@transaction.atomic
def settlement_withdraw(
    *,
    actor: User | str,
    organisation_id: int,
    currency: str,
    amount_minor: int,
    reference: str,
) -> JournalEntry:
    """The operator records money paid out to an organisation, from its available funds."""
    return _external_movement(
        kind=JournalEntry.Kind.WITHDRAWAL,
        actor=actor,
        organisation_id=organisation_id,
        currency=currency,
        amount_minor=amount_minor,
        reference=reference,
    )


@transaction.atomic
def market_operator_grant(*, actor: User | str, organisation_id: int) -> MarketOperator:
    """The issuing body names an organisation market operator."""
    if isinstance(actor, str) or not user_is_issuing_body(actor):
        raise NotIssuingBody()
    organisation = _member_organisation(organisation_id)
    operator, created = MarketOperator.objects.get_or_create(
        organisation=organisation,
        defaults={
            "granted_by": actor if isinstance(actor, User) else None,
            "granted_at": timezone.now(),
        },
    )
    if not created:
        raise errors.MarketOperatorExists(organisation_id=organisation.pk)
    ledger_append(
        kind=events.OPERATOR_GRANTED,
        actor=actor,
        subject=organisation,
        data={"organisation_id": organisation.pk},
    )
    return operator
