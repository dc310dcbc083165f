"""The device lifecycle: draft, submitted, approved, active, suspended, decommissioned."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from assets import errors, locks
from assets.models import (
    Device,
)
from assets.services.common import (
    _require_issuing_body,
    _require_operator,
)
from assets.services.owners import _owner_shares
from ledger.services import ledger_append
from registry.errors import InvalidInput


@dataclass(frozen=True)
class Transition:
    """One row of the device lifecycle: from which states, to which, by whom."""

    sources: frozenset[str]
    target: str
    kind: str
    by: str  # "operator", "issuing_body" or "either"
    reason_required: bool


S = Device.Status
# The device lifecycle. Each row: action, the states it leaves, the state it enters, the
# ledger event, who may do it, and whether a reason is required.
DEVICE_TRANSITIONS: dict[str, Transition] = {
    action: Transition(frozenset(sources), target, kind, by, reason_required)
    for action, sources, target, kind, by, reason_required in [
        ("submit",       {S.DRAFT, S.REJECTED},             S.SUBMITTED,      "device.submitted",      "operator",     False),  # noqa: E501
        ("approve",      {S.SUBMITTED},                     S.APPROVED,       "device.approved",       "issuing_body", False),  # noqa: E501
        ("reject",       {S.SUBMITTED},                     S.REJECTED,       "device.rejected",       "issuing_body", True),   # noqa: E501
        ("activate",     {S.APPROVED},                      S.ACTIVE,         "device.activated",      "either",       False),  # noqa: E501
        ("suspend",      {S.APPROVED, S.ACTIVE},            S.SUSPENDED,      "device.suspended",      "issuing_body", True),   # noqa: E501
        ("reinstate",    {S.SUSPENDED},                     S.ACTIVE,         "device.reinstated",     "issuing_body", True),   # noqa: E501
        ("decommission", {S.APPROVED, S.ACTIVE, S.SUSPENDED}, S.DECOMMISSIONED, "device.decommissioned", "either",     True),   # noqa: E501
    ]
}  # fmt: skip
del S


@transaction.atomic
def device_transition(*, actor: User, device_id: int, action: str, reason: str = "") -> Device:
    """Move a device along DEVICE_TRANSITIONS, recording who, why and from which state."""
    transition = DEVICE_TRANSITIONS.get(action)
    if transition is None:
        raise InvalidInput(f"Unknown device action {action!r}.", fields={"action": [action]})
    device = locks.device_lock(device_id)
    if transition.by == "issuing_body":
        _require_issuing_body(actor)
    elif transition.by == "operator":
        _require_operator(actor, device)
    else:
        _require_operator(actor, device, or_issuing_body=True)
    reason = (reason or "").strip()
    if transition.reason_required and not reason:
        raise InvalidInput("A reason is required.", fields={"reason": ["required"]})
    if device.status not in transition.sources:
        raise errors.DeviceStatusConflict(
            f"Cannot {action} a device that is {device.status}.",
            status=device.status,
            allowed_from=sorted(transition.sources),
        )
    if action == "submit":
        # Owners' accounts may have closed since registration.
        _owner_shares(
            [
                {
                    "organisation_id": owner.organisation_id,
                    "account_id": owner.account_id,
                    "share": f"{owner.share_numerator}/{owner.share_denominator}",
                }
                for owner in device.owners.all()
            ]
        )
    previous = device.status
    now = timezone.now()
    device.status = transition.target
    device.status_reason = reason
    device.status_changed_at = now
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    if transition.target == Device.Status.APPROVED and device.approved_at is None:
        device.approved_at = now
        fields.append("approved_at")
    device.save(update_fields=fields)
    ledger_append(
        kind=transition.kind,
        actor=actor,
        subject=device,
        data={"device_id": device.pk, "from": previous, "to": device.status, "reason": reason},
    )
    return device


def device_submit(*, actor: User, device_id: int, reason: str = "") -> Device:
    """The producer submits a draft (or rejected) device for approval."""
    return device_transition(actor=actor, device_id=device_id, action="submit", reason=reason)


def device_approve(*, actor: User, device_id: int, reason: str = "") -> Device:
    """The issuing body approves a submitted device."""
    return device_transition(actor=actor, device_id=device_id, action="approve", reason=reason)


def device_reject(*, actor: User, device_id: int, reason: str) -> Device:
    """The issuing body rejects a submitted device (the producer may fix and resubmit)."""
    return device_transition(actor=actor, device_id=device_id, action="reject", reason=reason)


def device_activate(*, actor: User, device_id: int, reason: str = "") -> Device:
    """The producer (or issuing body) puts an approved device into operation."""
    return device_transition(actor=actor, device_id=device_id, action="activate", reason=reason)


def device_suspend(*, actor: User, device_id: int, reason: str) -> Device:
    """The issuing body suspends a device: no readings, no issuance."""
    return device_transition(actor=actor, device_id=device_id, action="suspend", reason=reason)


def device_reinstate(*, actor: User, device_id: int, reason: str) -> Device:
    """The issuing body lifts a suspension."""
    return device_transition(actor=actor, device_id=device_id, action="reinstate", reason=reason)


def device_decommission(*, actor: User, device_id: int, reason: str) -> Device:
    """The device leaves service for good."""
    return device_transition(actor=actor, device_id=device_id, action="decommission", reason=reason)
