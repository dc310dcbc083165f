"""Issuance requests: a producer asks, the issuing body approves (issuing now) or rejects;
a device that needs no approval is issued at once.

Lock: the request row (`locks.issuance_request_lock`), then the device's unit counter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.permissions import user_can_act_for
from certificates import errors, events, locks
from certificates.models import IssuanceRequest
from certificates.services.common import _issued, _require_issuing_body
from certificates.services.issuance import _check_request_period, _issue
from ledger.services import ledger_append


def _request_data(req: IssuanceRequest) -> dict[str, Any]:
    return {
        "request_id": req.pk,
        "device_id": req.device_id,
        "organisation_id": req.organisation_id,
        "period_start": req.period_start,
        "period_end": req.period_end,
        "granularity": req.granularity,
        "status": req.status,
    }


@transaction.atomic
def issuance_request_create(
    *,
    actor: User,
    device_id: int,
    period_start: dt.datetime,
    period_end: dt.datetime,
    granularity: str = IssuanceRequest.Granularity.HOUR,
) -> IssuanceRequest:
    """A producer asks for certificates; devices that need no approval are issued at once."""
    from assets.models import Device

    device = Device.objects.select_related("organisation").filter(pk=device_id).first()
    if device is None:
        raise errors.DeviceNotFound(device_id=device_id)
    if not user_can_act_for(actor, device.organisation):
        raise errors.NotDeviceProducer(device_id=device_id)
    now = timezone.now()
    _check_request_period(period_start, period_end, granularity, now)
    if not device.can_issue:
        raise errors.DeviceCannotIssue(device_id=device_id, status=str(device.status))
    req = IssuanceRequest.objects.create(
        device=device,
        organisation=device.organisation,
        requested_by=actor,
        period_start=period_start,
        period_end=period_end,
        granularity=granularity,
    )
    data = _request_data(req)
    subjects: list[Any] = [req, ("device", device_id)]
    if not device.issuance_requires_approval:
        _issuance, issued, issued_subjects = _issue(
            actor="system:issuance-policy",
            device_id=device_id,
            start=period_start,
            end=period_end,
            granularity=granularity,
            request=req,
            skip_issued=False,
            now=now,
        )
        req.status = IssuanceRequest.Status.APPROVED
        req.decided_at = now
        req.reason = "Issued by device policy (no approval required)."
        req.save(update_fields=["status", "decided_at", "reason"])
        data |= {"status": req.status, "issuance": issued}
        subjects += issued_subjects
    ledger_append(kind=events.REQUEST_CREATED, actor=actor, subject=subjects, data=data)
    return req


def _locked_request(request_id: int) -> IssuanceRequest:
    req = locks.issuance_request_lock(request_id)
    if req is None:
        raise errors.IssuanceRequestNotFound(request_id=request_id)
    if req.status != IssuanceRequest.Status.PENDING:
        raise errors.IssuanceRequestNotPending(request_id=request_id, status=req.status)
    return req


@transaction.atomic
def issuance_request_approve(*, actor: User, request_id: int) -> IssuanceRequest:
    """The issuing body approves a pending request: its certificates are issued now."""
    _require_issuing_body(actor)
    req = _locked_request(request_id)
    now = timezone.now()
    issuance, issued, subjects = _issue(
        actor=actor,
        device_id=req.device_id,
        start=req.period_start,
        end=req.period_end,
        granularity=req.granularity,
        request=req,
        skip_issued=False,
        now=now,
    )
    req.status = IssuanceRequest.Status.APPROVED
    req.decided_at = now
    req.decided_by = actor
    req.save(update_fields=["status", "decided_at", "decided_by"])
    ledger_append(
        kind=events.REQUEST_APPROVED,
        actor=actor,
        subject=[req, *subjects],
        data=_request_data(req) | {"issuance": issued},
    )
    _issued(issuance)
    return req


@transaction.atomic
def issuance_request_reject(*, actor: User, request_id: int, reason: str) -> IssuanceRequest:
    """The issuing body rejects a pending request, with a reason."""
    _require_issuing_body(actor)
    if not reason or not reason.strip():
        raise errors.ReasonRequired(fields={"reason": ["required"]})
    req = _locked_request(request_id)
    req.status = IssuanceRequest.Status.REJECTED
    req.decided_at = timezone.now()
    req.decided_by = actor
    req.reason = reason.strip()
    req.save(update_fields=["status", "decided_at", "decided_by", "reason"])
    ledger_append(
        kind=events.REQUEST_REJECTED,
        actor=actor,
        subject=[req, ("device", req.device_id)],
        data=_request_data(req) | {"reason": req.reason},
    )
    return req
