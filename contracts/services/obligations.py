"""Settlement obligations: paid at their execution, on a payer's request, or by the tick.

An obligation's first attempt runs inside its execution's transaction (whose
`contract.executed` event carries the outcome); a payment appends the market's
`settlement.paid`; a later retry that leaves it open for another reason appends
`contract.obligation_retried`.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, User
from accounts.permissions import user_can_act_for
from contracts import errors, events, locks, selectors
from contracts.models import SettlementObligation
from ledger.services import ledger_append
from registry.hooks import Hook, pay_now, pay_through

SYSTEM = "system:contracts"

# Callable[[SettlementObligation], str | None]: pays an obligation inside the caller's
# transaction and returns its reference (then the obligation is settled), None to leave it
# to the next handler, or raises a DomainError (insufficient funds): the obligation stays
# open with that code as its reason, the handler's writes are rolled back, and the
# execution still applies (certificates delivered, the debt recorded);
# `settlement_obligations_settle_open` tries again. The market app registers its
# settlement accounts here, by name through registry.hooks.HOOKS (it may not import
# contracts). A handler may also have `pay_many(obligations) -> [(reference, reason)]`:
# the same outcome for each as offering them to it one by one, in order, in the caller's
# transaction; a group of executions uses it when that handler is the only one.
SETTLEMENT_HANDLERS = Hook("contracts.settlement_handlers")

# Callable[[list[SettlementObligation]], None]: before a group of executions
# (`contracts.services.group`) pays its obligations one by one, lock every settlement
# account those payments will lock, all at once in primary-key order, so that two groups
# paying the same organisations cannot deadlock (each payment then re-locks rows it
# holds). Registered by the market, by name.
SETTLEMENT_LOCKS = Hook("contracts.settlement_locks")


def obligation_settle(obligation: SettlementObligation) -> SettlementObligation:
    """Try to pay a new obligation through the settlement handlers, inside its execution's
    transaction (whose `contract.executed` event carries the status and reason); record
    the reference, or the refusal's code as the reason it stays open. The payment's own
    ledger event (the market's) names the obligation. Later attempts: `obligation_retry`."""
    if obligation.status == SettlementObligation.Status.SETTLED:
        return obligation
    obligation_offer(obligation)
    obligation.save(update_fields=OFFER_FIELDS)
    return obligation


OFFER_FIELDS = ["status", "reference", "reason_code", "settled_at"]


def obligation_offer(obligation: SettlementObligation) -> None:
    """`obligation_settle` without the save: the caller writes `OFFER_FIELDS`."""
    offer_outcome(obligation, *pay_through(SETTLEMENT_HANDLERS, obligation))


def obligations_offer(obligations: list[SettlementObligation]) -> None:
    """`obligation_offer` for a group of executions' new obligations, in order: through
    the only handler's `pay_many` when it has one, else one by one after every settlement
    account they will lock is locked at once (`SETTLEMENT_LOCKS`). The caller writes
    `OFFER_FIELDS` (one statement for all)."""
    only = SETTLEMENT_HANDLERS[0] if len(SETTLEMENT_HANDLERS) == 1 else None
    pay_many = getattr(only, "pay_many", None)
    if pay_many is not None:
        for obligation, outcome in zip(obligations, pay_many(obligations), strict=True):
            offer_outcome(obligation, *outcome)
        return
    for lock in SETTLEMENT_LOCKS:
        lock(obligations)
    for obligation in obligations:
        obligation_offer(obligation)


def offer_outcome(obligation: SettlementObligation, reference: str, reason: str) -> None:
    """What the settlement handlers answered: settled with the reference, or the reason."""
    if reference:
        obligation.status = SettlementObligation.Status.SETTLED
        obligation.reference = reference[:100]
        obligation.settled_at = timezone.now()
    obligation.reason_code = reason


@transaction.atomic
def obligation_pay(*, actor: User, obligation_id: int) -> SettlementObligation:
    """Pay an open obligation now, on the request of an admin or operator of the paying
    organisation, through the same settlement handlers as the execution and the tick.

    Nothing is written on refusal: the handler's own error (`insufficient_funds`, 409)
    propagates and rolls the transaction back, so the obligation keeps its earlier reason.
    On success the market's `settlement.paid` event names the obligation (the one event).
    """
    visible = SettlementObligation.objects.filter(
        pk=obligation_id, contract__in=selectors.contract_list(user=actor)
    )
    if not visible.exists():
        raise errors.ObligationNotFound(obligation_id=obligation_id)
    obligation = locks.obligation_lock(obligation_id)
    if obligation is None:
        raise errors.ObligationNotFound(obligation_id=obligation_id)
    if not user_can_act_for(actor, obligation.payer, role=Membership.Role.OPERATOR):
        raise errors.NotPayer(obligation_id=obligation.pk)
    if obligation.status == SettlementObligation.Status.SETTLED:
        raise errors.AlreadySettled(obligation_id=obligation.pk, reference=obligation.reference)
    reference = pay_now(SETTLEMENT_HANDLERS, obligation)
    if not reference:
        raise errors.SettlementUnavailable(obligation_id=obligation.pk)
    _mark_settled(obligation, reference)
    return obligation


def settlement_obligations_settle_open(*, limit: int = 500) -> int:
    """Periodic retry (the calendar tick): try every open obligation again, oldest first,
    each in its own transaction under its row lock; return how many were settled now."""
    settled = 0
    open_ids = (
        SettlementObligation.objects.filter(status=SettlementObligation.Status.OPEN)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for obligation_id in list(open_ids):
        settled += obligation_retry(obligation_id=obligation_id)
    return settled


@transaction.atomic
def obligation_retry(*, obligation_id: int) -> bool:
    """One settlement retry of an open obligation under its row lock; True when it paid.

    Paid: the market's `settlement.paid` event names the obligation. Still open with
    another reason than before: the new reason is written with one
    `contract.obligation_retried` event. Still open for the same reason, or settled
    meanwhile by another retry: nothing is written (an hourly tick over long-open debts
    must not grow the log)."""
    obligation = locks.obligation_lock(obligation_id)
    if obligation is None or obligation.status != SettlementObligation.Status.OPEN:
        return False
    previous = obligation.reason_code
    reference, reason = pay_through(SETTLEMENT_HANDLERS, obligation)
    if reference:
        _mark_settled(obligation, reference)
        return True
    if reason != previous:
        obligation.reason_code = reason
        obligation.save(update_fields=["reason_code"])
        ledger_append(
            kind=events.OBLIGATION_RETRIED,
            actor=SYSTEM,
            subject=events.subjects(obligation.contract, obligation),
            data=events.obligation_retried_data(obligation, previous),
        )
    return False


def _mark_settled(obligation: SettlementObligation, reference: str) -> None:
    obligation.status = SettlementObligation.Status.SETTLED
    obligation.reference = reference[:100]
    obligation.reason_code = ""
    obligation.settled_at = timezone.now()
    obligation.save(update_fields=["status", "reference", "reason_code", "settled_at"])
