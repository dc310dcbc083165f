"""Permission checks and settlement hand-off shared by the charging services."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, User
from accounts.permissions import user_can_act_for
from charging import errors, locks, selectors
from charging.models import Bill, ChargingStation
from registry.hooks import Hook, pay_now, pay_through

# Callable[[Bill], str | None]: pays a bill inside the caller's transaction and returns its
# reference (the bill is then settled), None to leave it to the next settler, or raises a
# DomainError (insufficient funds): the bill stays pending with that code as its reason
# and the settler's writes are rolled back. The market registers its settlement accounts
# here from its AppConfig.ready(), by name through registry.hooks.HOOKS (it may not import
# charging).
BILL_SETTLERS = Hook("charging.bill_settlers")


def bill_settle(bill: Bill) -> Bill:
    """Try to pay a pending bill through the settlers; record the outcome on the bill.

    Runs inside the caller's transaction (billing, or `bills_settle_pending`); a settler's
    refusal never undoes the bill itself. The payment's own ledger event names the bill.
    """
    if bill.settlement == Bill.Settlement.SETTLED:
        return bill
    reference, reason = pay_through(BILL_SETTLERS, bill)
    if reference:
        bill.settlement = Bill.Settlement.SETTLED
        bill.settlement_reference = reference[:100]
        bill.settled_at = timezone.now()
    bill.settlement_reason = reason
    if bill.pk is not None:
        bill.save(
            update_fields=["settlement", "settlement_reference", "settlement_reason", "settled_at"]
        )
    return bill


@transaction.atomic
def bill_pay(*, actor: User, bill_id: int) -> Bill:
    """Pay a pending bill now, on the request of an admin or operator of the billed
    organisation, through the same settlers as billing and the periodic retry.

    Nothing is written on refusal: the settler's own error (`insufficient_funds`, 409)
    propagates and rolls the transaction back, so the bill keeps its earlier reason. On
    success the market's `settlement.paid` event names the bill (the one event).
    """
    if not selectors.bill_list(user=actor).filter(pk=bill_id).exists():
        raise errors.BillNotFound(bill_id=bill_id)
    bill = locks.bill_lock(bill_id)
    if not user_can_act_for(actor, bill.billed_organisation, role=Membership.Role.OPERATOR):
        raise errors.NotBillPayer(bill_id=bill.pk)
    if bill.settlement == Bill.Settlement.SETTLED:
        raise errors.BillAlreadySettled(bill_id=bill.pk, reference=bill.settlement_reference)
    reference = pay_now(BILL_SETTLERS, bill)
    if not reference:
        raise errors.SettlementUnavailable(bill_id=bill.pk)
    bill.settlement = Bill.Settlement.SETTLED
    bill.settlement_reference = reference[:100]
    bill.settlement_reason = ""
    bill.settled_at = timezone.now()
    bill.save(
        update_fields=["settlement", "settlement_reference", "settlement_reason", "settled_at"]
    )
    return bill


def bills_settle_pending(*, limit: int = 500) -> int:
    """Periodic retry: try every pending bill again (oldest first), each in its own
    transaction under its row lock; return how many were settled now."""
    settled = 0
    pending = Bill.objects.filter(settlement=Bill.Settlement.PENDING).order_by("pk")
    for bill_id in list(pending.values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            bill = locks.bill_lock(bill_id)
            if bill.settlement != Bill.Settlement.PENDING:
                continue
            if bill_settle(bill).settlement == Bill.Settlement.SETTLED:
                settled += 1
    return settled


def require_operator(actor: User, station: ChargingStation) -> None:
    if not user_can_act_for(actor, station.device.organisation):
        raise errors.NotStationOperator(station_id=station.pk)
