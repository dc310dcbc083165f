"""Every write about certificates: one function per use case, one transaction, one event.

Locking policy (PostgreSQL; SQLite serialises writers with IMMEDIATE transactions):

1. Bundle rows first, FOR UPDATE, in primary-key order (`_lock_bundles`, and
   `hotpath.bundles_lock_for_move` on the transfer and retirement path, which reads the
   holder's permission in the same statement). Two writers touching the same bundles
   queue on the lowest id instead of deadlocking.
2. Then the rows the operation is about: a transfer (accept / reject / withdraw), an
   issuance request, or the device's unit counter, which is the per-device issuance
   lock (issuance touches no existing bundle).
3. A receiving account last, FOR KEY SHARE (`_lock_receiving_account`): it waits for a
   concurrent `account_close` (FOR UPDATE) and then sees the account closed, while any
   number of transfers into the same account run side by side.

No global ledger row is locked: `ledger_append` only queues the event; the ledger's
integrator numbers it after commit.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.errors import AccountNotEmpty, NotIssuingBody, NotOrganisationMember
from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import user_can_act_for, user_is_issuing_body
from certificates import errors, events, hotpath
from certificates.allocation import (
    HOUR,
    expiry_date,
    floor_hour,
    hour_number,
    is_hour_aligned,
    split_by_shares,
)
from certificates.claims import claim_commitment, retirement_claim
from certificates.events import Move
from certificates.models import (
    Bundle,
    DeviceUnitCounter,
    Issuance,
    IssuanceRequest,
    IssuedPeriod,
    Retirement,
    RetirementItem,
    Transfer,
    TransferPolicy,
    Withdrawal,
    WithdrawalItem,
)
from ledger.services import ledger_append
from registry.errors import InvalidInput

MAX_SAFE_WH = 2**53
MAX_BATCH_ITEMS = 1000
MAX_REQUEST_DAYS = 366
EXPIRE_BATCH = 1000
COUNTRY = re.compile(r"^[A-Z]{2}$")
Actor = User | str

# Bundles that still count as held: they can move (active) or are promised (reserved).
LIVE = (Bundle.Status.ACTIVE, Bundle.Status.RESERVED)


# ---------------------------------------------------------------- helpers


def _today(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


def _check_volume(volume_wh: Any) -> None:
    """None (the whole bundle) or a positive whole number of Wh."""
    if volume_wh is None:
        return
    if (
        isinstance(volume_wh, bool)
        or not isinstance(volume_wh, int)
        or not 0 < volume_wh <= MAX_SAFE_WH
    ):
        raise errors.InvalidVolume(volume_wh=volume_wh)


def _lock_bundles(bundle_ids: Iterable[int]) -> dict[int, Bundle]:
    """Lock bundles FOR UPDATE in primary-key order; every id must exist."""
    ids = sorted(set(bundle_ids))
    rows = Bundle.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    found = {bundle.pk: bundle for bundle in rows}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise errors.BundleNotFound(bundle_ids=missing)
    return found


def _lock_receiving_account(
    account_id: int | None = None, number: str | None = None
) -> tuple[Account, bool]:
    """The open receiving account (by id or public number), locked FOR KEY SHARE, and
    whether its organisation's policy asks for acceptance (see the locking policy)."""
    found = hotpath.account_lock_for_receiving(account_id=account_id, number=number)
    if found is None:
        raise errors.AccountNotFoundForTransfer(account_id=account_id, account_number=number)
    account, policy = found
    if not account.is_open:
        raise errors.AccountClosed(account_id=account.pk)
    return account, policy


def _lock_held(bundle_ids: Iterable[int], actor: Actor) -> dict[int, hotpath.Held]:
    """Lock bundles (pk order) for moving them out; every one must exist and be the actor's."""
    user_id = None if isinstance(actor, str) else actor.pk
    held = hotpath.bundles_lock_for_move(list(bundle_ids), user_id)
    missing = sorted(set(bundle_ids) - set(held))
    if missing:
        raise errors.BundleNotFound(bundle_ids=missing)
    return held


def _require_holder(held: hotpath.Held) -> Account:
    if not held.may_move:
        raise errors.NotBundleHolder(bundle_id=held.bundle.pk)
    return held.account


def _check_movable(bundle: Bundle, today: dt.date) -> None:
    if bundle.status != Bundle.Status.ACTIVE:
        raise errors.BundleNotActive(bundle_id=bundle.pk, status=bundle.status_name)
    if bundle.expires_on is not None and today >= bundle.expires_on:
        raise errors.BundleExpired(bundle_id=bundle.pk, expires_on=bundle.expires_on.isoformat())


def _check_fits(bundle: Bundle, volume_wh: int) -> None:
    if volume_wh > bundle.volume_wh:
        raise errors.InsufficientVolume(
            bundle_id=bundle.pk, held_wh=bundle.volume_wh, requested_wh=volume_wh
        )


def _apply_moves(moves: Sequence[Move]) -> None:
    """Carry out moves on locked bundles: whole ones change in place, partial ones split.

    A split marks the source SPLIT and creates two children that partition its range:
    the moved part (the first `volume_wh` units) and the rest, which stays where it was.
    A handful of statements whatever the number of moves.
    """
    whole: dict[tuple[int, int], list[Bundle]] = defaultdict(list)
    split_ids: list[int] = []
    children: list[Bundle] = []
    for move in moves:
        source = move.bundle
        if move.is_whole:
            whole[(move.account_id, move.status)].append(source)
            source.account_id = move.account_id
            source.status = move.status
            move.moved, move.rest = source, None
            continue
        cut = source.unit_start + move.volume_wh
        common = {
            "device_id": source.device_id,
            "issuance_id": source.issuance_id,
            "parent_id": source.pk,
            "period_start": source.period_start,
            "period_end": source.period_end,
            "expires_on": source.expires_on,
        }
        move.moved = Bundle(
            **common,
            account_id=move.account_id,
            unit_start=source.unit_start,
            unit_end=cut,
            status=move.status,
        )
        move.rest = Bundle(
            **common,
            account_id=source.account_id,
            unit_start=cut,
            unit_end=source.unit_end,
            status=Bundle.Status.ACTIVE,
        )
        children += [move.moved, move.rest]
        source.status = Bundle.Status.SPLIT
        split_ids.append(source.pk)
    for (account_id, status), bundles in whole.items():
        hotpath.bundles_update([b.pk for b in bundles], status=status, account_id=account_id)
    if split_ids:
        hotpath.bundles_update(split_ids, status=Bundle.Status.SPLIT)
        hotpath.bundles_insert(children)


def _subjects(moves: Sequence[Move], *extra: Any) -> list[Any]:
    subjects: list[Any] = []
    for move in moves:
        subjects += move.bundles()
    return subjects + [item for item in extra if item is not None]


def _issuing_body_of(actor: Actor) -> Organisation | None:
    """The issuing body an actor works for; for the system, the registry's first one."""
    orgs = Organisation.objects.filter(
        is_issuing_body=True, status=Organisation.Status.APPROVED
    ).order_by("pk")
    if not isinstance(actor, str):
        orgs = orgs.filter(
            memberships__user=actor,
            memberships__role__in=[Membership.Role.OPERATOR, Membership.Role.ADMIN],
        )
    return orgs.first()


def _require_issuing_body(actor: Actor) -> None:
    if isinstance(actor, str):
        if not actor.startswith("system"):
            raise NotIssuingBody()
        return
    if not user_is_issuing_body(actor):
        raise NotIssuingBody()


# ---------------------------------------------------------------- account guard


def account_close_guard(account: Account) -> None:
    """accounts.services.ACCOUNT_CLOSE_GUARDS: an account holding live bundles stays open."""
    held = Bundle.objects.filter(account_id=account.pk, status__in=LIVE).exists()
    if held:
        raise AccountNotEmpty(
            "The account still holds active or reserved certificates.", account_id=account.pk
        )


# ---------------------------------------------------------------- issuance


def _device_for_issuance(device_id: int):
    from assets.models import Device

    device = Device.objects.select_related("grid_area").filter(pk=device_id).first()
    if device is None:
        raise errors.DeviceNotFound(device_id=device_id)
    if not device.can_issue:
        raise errors.DeviceCannotIssue(device_id=device_id, status=str(device.status))
    return device


def _lock_unit_counter(device_id: int) -> DeviceUnitCounter:
    counter = DeviceUnitCounter.objects.select_for_update().filter(device_id=device_id).first()
    if counter is None:
        DeviceUnitCounter.objects.bulk_create(
            [DeviceUnitCounter(device_id=device_id)], ignore_conflicts=True
        )
        counter = DeviceUnitCounter.objects.select_for_update().get(device_id=device_id)
    return counter


def _covers(intervals: list[tuple[dt.datetime, dt.datetime]], start, end) -> bool:
    """Whether the intervals, together, cover [start, end) without a gap."""
    reach = start
    for i_start, i_end in sorted(intervals):
        if i_start > reach:
            return False
        reach = max(reach, i_end)
    return reach >= end


def _group_readings(
    readings: Iterable[tuple[int, dt.datetime, dt.datetime, int]],
    *,
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
) -> list[tuple[dt.datetime, dt.datetime, int, list[int]]]:
    """(period_start, period_end, wh, reading ids) of the periods the readings complete.

    Hourly: an hour counts only when its readings cover all of it (readings arrive late
    and out of order; an hour issued early could never take its missing readings). With
    several meters (a replaced meter, parallel generation meters) their union must cover
    the hour. A reading that crosses an hour boundary is left for a period issuance.
    Period: everything inside [start, end) becomes one period.
    """
    if granularity == IssuanceRequest.Granularity.PERIOD:
        ids, total = [], 0
        for pk, r_start, r_end, wh in readings:
            if r_start >= start and r_end <= end:
                ids.append(pk)
                total += wh
        return [(start, end, total, ids)] if ids else []
    hours: dict[dt.datetime, list[Any]] = {}
    for pk, r_start, r_end, wh in readings:
        hour = floor_hour(r_start)
        if r_end > hour + HOUR or r_start < start or r_end > end:
            continue
        slot = hours.setdefault(hour, [0, [], []])
        slot[0] += wh
        slot[1].append((r_start, r_end))
        slot[2].append(pk)
    return [
        (hour, hour + HOUR, wh, ids)
        for hour, (wh, spans, ids) in sorted(hours.items())
        if _covers(spans, hour, hour + HOUR)
    ]


def _overlapping_periods(
    device_id: int, periods: Sequence[tuple[dt.datetime, dt.datetime, int, list[int]]]
) -> set[dt.datetime]:
    """Starts of the candidate periods that overlap a live issued period of the device."""
    if not periods:
        return set()
    issued = list(
        IssuedPeriod.objects.filter(
            device_id=device_id,
            withdrawn_at__isnull=True,
            period_start__lt=periods[-1][1],
            period_end__gt=periods[0][0],
        )
        .order_by("period_start")
        .values_list("period_start", "period_end")
    )
    clash: set[dt.datetime] = set()
    i = 0
    for p_start, p_end, _wh, _ids in periods:
        while i < len(issued) and issued[i][1] <= p_start:
            i += 1
        j = i
        while j < len(issued) and issued[j][0] < p_end:
            if issued[j][1] > p_start:
                clash.add(p_start)
                break
            j += 1
    return clash


def _issued_within(device_id: int, start: dt.datetime, end: dt.datetime) -> bool:
    return IssuedPeriod.objects.filter(
        device_id=device_id, withdrawn_at__isnull=True, period_start__lt=end, period_end__gt=start
    ).exists()


def _id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as inclusive [first, last] runs: readings come in contiguous batches."""
    runs: list[list[int]] = []
    for pk in sorted(ids):
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


def _owners_for_issuance(device_id: int) -> list[tuple[int, Fraction]]:
    """(account id, share) of the device's owners, in owner order; shares must add up to 1."""
    from assets.selectors import device_owners

    owners = sorted(device_owners(device_id=device_id), key=lambda owner: owner.pk)
    if not owners:
        raise errors.OwnershipIncomplete(device_id=device_id, reason="no owners")
    shares = [Fraction(owner.share) for owner in owners]
    if sum(shares, Fraction(0)) != 1:
        raise errors.OwnershipIncomplete(
            device_id=device_id, reason=f"shares add up to {sum(shares, Fraction(0))}"
        )
    account_ids = [owner.account_id for owner in owners]
    open_ids = set(
        Account.objects.filter(pk__in=account_ids, status=Account.Status.OPEN).values_list(
            "pk", flat=True
        )
    )
    closed = [pk for pk in account_ids if pk not in open_ids]
    if closed:
        raise errors.OwnershipIncomplete(
            device_id=device_id, reason="an owner's account is closed", account_ids=closed
        )
    return list(zip(account_ids, shares, strict=True))


def _support_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _issue(
    *,
    actor: Actor,
    device_id: int,
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
    request: IssuanceRequest | None,
    skip_issued: bool,
    now: dt.datetime,
) -> tuple[Issuance, dict[str, Any], list[Any]]:
    """Issue certificates for the device's accepted, unissued readings in [start, end).

    Returns the issuance, the event's "issuance" data and its subjects. Raises when
    nothing completes a period, or (unless `skip_issued`) when a period was issued before.
    """
    from assets.selectors import readings_for_issuance
    from assets.services import readings_mark_issued

    device = _device_for_issuance(device_id)
    counter = _lock_unit_counter(device_id)  # the device's issuance lock
    readings = (
        readings_for_issuance(device_id=device_id, start=start, end=end)
        .order_by("start")
        .values_list("pk", "start", "end", "wh")
    )
    periods = _group_readings(readings, start=start, end=end, granularity=granularity)
    clash = _overlapping_periods(device_id, periods)
    if clash and not skip_issued:
        raise errors.DoubleIssuance(
            device_id=device_id, period_starts=sorted(c.isoformat() for c in clash)[:10]
        )
    periods = [p for p in periods if p[0] not in clash]
    positive = [p for p in periods if p[2] > 0]
    if not positive:
        if not skip_issued and _issued_within(device_id, start, end):
            raise errors.DoubleIssuance(
                device_id=device_id, start=start.isoformat(), end=end.isoformat()
            )
        raise errors.NothingToIssue(
            device_id=device_id, start=start.isoformat(), end=end.isoformat()
        )
    owners = _owners_for_issuance(device_id)
    grid = device.grid_area
    months = getattr(grid, "expiry_months", None) or None
    factor = getattr(grid, "emission_factor_g_per_kwh", None)
    unit = counter.next_unit
    total = sum(p[2] for p in positive)
    issuance = Issuance.objects.create(
        device_id=device_id,
        request=request,
        issuing_body=_issuing_body_of(actor),
        issued_at=now,
        granularity=granularity,
        period_start=positive[0][0],
        period_end=positive[-1][1],
        unit_start=unit,
        unit_end=unit + total,
        volume_wh=total,
        device_name=device.name,
        technology_code=device.technology_code,
        energy_source_code=device.energy_source_code,
        grid_area=grid,
        grid_area_code=grid.code,
        country=grid.country,
        capacity_w=getattr(device, "capacity_w", None),
        commissioning_date=getattr(device, "commissioning_date", None),
        support=_support_text(getattr(device, "support", None)),
        emission_factor_g_per_kwh=None if factor is None else factor,
        is_storage=bool(getattr(device, "is_storage", False)),
        expiry_months=months,
    )
    # Rows as tuples, written by hand-made multi-row INSERTs: for a device-year of hourly
    # certificates (8,760 periods) the ORM's per-object work cost more than the database's.
    period_rows: list[list[Any]] = []
    bundle_rows: list[list[Any]] = []
    shares = [share for _account, share in owners]
    for p_start, p_end, wh, _ids in positive:
        expires_on = expiry_date(p_end, months)
        parts = split_by_shares(wh, shares, first_tie=hour_number(p_start) % len(owners))
        in_period = []
        period_rows.append([p_start, p_end, unit, unit + wh, in_period])
        for (account_id, _share), part in zip(owners, parts, strict=True):
            if part:
                in_period.append([None, account_id, unit, unit + part])
                bundle_rows.append(
                    [
                        device_id,
                        issuance.pk,
                        account_id,
                        None,
                        unit,
                        unit + part,
                        p_start,
                        p_end,
                        expires_on,
                        Bundle.Status.ACTIVE,
                    ]
                )
                unit += part
    try:
        with transaction.atomic():
            hotpath.issued_periods_insert(
                [[device_id, issuance.pk, p[0], p[1], p[2], p[3]] for p in period_rows]
            )
    except IntegrityError:
        # The exclusion constraint (PostgreSQL) or the unique start: a writer that
        # bypassed the unit-counter lock. Never expected; refuse rather than double-issue.
        raise errors.DoubleIssuance(device_id=device_id) from None
    bundle_ids = iter(hotpath.bundle_rows_insert(bundle_rows))
    for period in period_rows:
        for row in period[4]:
            row[0] = next(bundle_ids)
    reading_ids = [pk for p in periods for pk in p[3]]
    marked = readings_mark_issued(reading_ids=reading_ids, at=now)
    if marked != len(reading_ids):
        raise errors.DoubleIssuance(device_id=device_id, reason="readings changed meanwhile")
    counter.next_unit = unit
    counter.save(update_fields=["next_unit"])
    # The event names the device and the issuance, not each bundle: a device-year is
    # 8,760 bundles. Histories find a bundle's issuance through "issuance:<id>".
    subjects: list[Any] = [("device", device_id), issuance]
    data = events.issuance_data(issuance, period_rows) | {"readings": _id_ranges(reading_ids)}
    return issuance, data, subjects


def _check_request_period(start: dt.datetime, end: dt.datetime, granularity: str, now) -> None:
    if granularity not in IssuanceRequest.Granularity.values:
        raise errors.InvalidPeriod("Unknown granularity.", granularity=granularity)
    if start.tzinfo is None or end.tzinfo is None:
        raise errors.InvalidPeriod("Times must carry a time zone (UTC preferred).")
    if end <= start:
        raise errors.InvalidPeriod("The period must end after it starts.")
    if end > now:
        raise errors.InvalidPeriod("The period must be over before certificates are issued.")
    if end - start > dt.timedelta(days=MAX_REQUEST_DAYS):
        raise errors.InvalidPeriod(f"A request covers at most {MAX_REQUEST_DAYS} days.")
    if granularity == IssuanceRequest.Granularity.HOUR and not (
        is_hour_aligned(start) and is_hour_aligned(end)
    ):
        raise errors.InvalidPeriod("Hourly issuance needs a period on whole UTC hours.")


@transaction.atomic
def certificate_issue(
    *,
    actor: Actor,
    device_id: int,
    period_start: dt.datetime,
    period_end: dt.datetime,
    granularity: str = IssuanceRequest.Granularity.HOUR,
    skip_issued: bool = False,
) -> Issuance:
    """Issue certificates from a device's accepted readings (issuing body or system policy)."""
    _require_issuing_body(actor)
    now = timezone.now()
    _check_request_period(period_start, period_end, granularity, now)
    issuance, data, subjects = _issue(
        actor=actor,
        device_id=device_id,
        start=period_start,
        end=period_end,
        granularity=granularity,
        request=None,
        skip_issued=skip_issued,
        now=now,
    )
    ledger_append(kind=events.ISSUED, actor=actor, subject=subjects, data={"issuance": data})
    return issuance


def certificate_auto_issue(*, device_id: int, now: dt.datetime | None = None) -> Issuance | None:
    """Hourly issuance by device policy: every complete hour not issued yet, up to now.

    Its own transaction (via `certificate_issue`); None when no hour is complete.
    """
    now = now or timezone.now()
    end = floor_hour(now)
    start = end - dt.timedelta(days=MAX_REQUEST_DAYS)
    try:
        return certificate_issue(
            actor="system:auto-issuance",
            device_id=device_id,
            period_start=start,
            period_end=end,
            granularity=IssuanceRequest.Granularity.HOUR,
            skip_issued=True,
        )
    except errors.NothingToIssue:
        return None


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
    req = IssuanceRequest.objects.select_for_update().filter(pk=request_id).first()
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
    _issuance, issued, subjects = _issue(
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


# ---------------------------------------------------------------- transfer


def _plan_transfers(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int | None]],
    to_account_id: int | None,
    to_account_number: str | None,
    require_acceptance: bool,
    now: dt.datetime,
) -> tuple[list[Move], Account]:
    """Lock, check and plan the moves of a transfer (single or batch); changes nothing.

    Receiver acceptance applies only across organisations: when the request or the
    receiving organisation's policy asks for it.
    """
    seen: set[int] = set()
    for bundle_id, volume in items:
        if bundle_id in seen:
            raise errors.DuplicateBundle(bundle_id=bundle_id)
        seen.add(bundle_id)
        _check_volume(volume)
    held = _lock_held(seen, actor)
    today = _today(now)
    sources: list[tuple[Bundle, int, Account]] = []
    for bundle_id, volume in items:
        bundle = held[bundle_id].bundle
        account = _require_holder(held[bundle_id])
        _check_movable(bundle, today)
        volume = bundle.volume_wh if volume is None else volume
        _check_fits(bundle, volume)
        sources.append((bundle, volume, account))
    to_account, policy = _lock_receiving_account(to_account_id, to_account_number)
    moves = []
    for bundle, volume, account in sources:
        if account.pk == to_account.pk:
            raise errors.SameAccount(bundle_id=bundle.pk, account_id=account.pk)
        pending = account.organisation_id != to_account.organisation_id and (
            require_acceptance or policy
        )
        moves.append(
            Move(
                bundle=bundle,
                volume_wh=volume,
                account_id=account.pk if pending else to_account.pk,
                status=Bundle.Status.RESERVED if pending else Bundle.Status.ACTIVE,
                extra={"from_account": account, "pending": pending},
            )
        )
    return moves, to_account


def _record_transfers(
    moves: Sequence[Move], to_account: Account, actor: Actor, now: dt.datetime
) -> list[Transfer]:
    transfers = [
        Transfer(
            bundle=move.moved,
            source_id=move.bundle.pk,
            from_account=move.extra["from_account"],
            to_account=to_account,
            volume_wh=move.volume_wh,
            status=Transfer.Status.PENDING if move.extra["pending"] else Transfer.Status.COMPLETED,
            created_by=None if isinstance(actor, str) else actor,
            created_at=now,
        )
        for move in moves
    ]
    hotpath.transfers_insert(transfers)
    return transfers


@transaction.atomic
def certificate_transfer(
    *,
    actor: Actor,
    bundle_id: int,
    to_account_id: int | None = None,
    to_account_number: str | None = None,
    volume_wh: int | None = None,
    require_acceptance: bool = False,
) -> Transfer:
    """Move a bundle, or its first `volume_wh` units (a split), to another open account
    (given by id or by its public number)."""
    now = timezone.now()
    moves, to_account = _plan_transfers(
        actor=actor,
        items=[(bundle_id, volume_wh)],
        to_account_id=to_account_id,
        to_account_number=to_account_number,
        require_acceptance=require_acceptance,
        now=now,
    )
    _apply_moves(moves)
    (transfer,) = _record_transfers(moves, to_account, actor, now)
    move = moves[0]
    ledger_append(
        kind=events.TRANSFERRED,
        actor=actor,
        subject=_subjects(moves, transfer, move.extra["from_account"], to_account),
        data=events.transfer_data(transfer, move),
    )
    return transfer


@transaction.atomic
def certificate_transfer_batch(
    *,
    actor: Actor,
    items: Sequence[tuple[int, int | None]],
    to_account_id: int | None = None,
    to_account_number: str | None = None,
    require_acceptance: bool = False,
) -> list[Transfer]:
    """Move many bundles (whole or part) to one account, all or nothing, as one event."""
    if not items:
        raise errors.InvalidVolume("A batch needs at least one item.", fields={"items": ["empty"]})
    if len(items) > MAX_BATCH_ITEMS:
        raise errors.InvalidVolume(
            f"A batch holds at most {MAX_BATCH_ITEMS} items.", fields={"items": ["too many"]}
        )
    now = timezone.now()
    moves, to_account = _plan_transfers(
        actor=actor,
        items=items,
        to_account_id=to_account_id,
        to_account_number=to_account_number,
        require_acceptance=require_acceptance,
        now=now,
    )
    _apply_moves(moves)
    transfers = _record_transfers(moves, to_account, actor, now)
    from_accounts = {m.extra["from_account"].pk: m.extra["from_account"] for m in moves}
    ledger_append(
        kind=events.BATCH_TRANSFERRED,
        actor=actor,
        subject=_subjects(moves, *transfers, *from_accounts.values(), to_account),
        data={
            "to_account_id": to_account.pk,
            "transfers": [
                events.transfer_data(t, m) for t, m in zip(transfers, moves, strict=True)
            ],
        },
    )
    return transfers


def _pending_transfer(transfer_id: int) -> tuple[Transfer, Bundle]:
    """Lock the reserved bundle (first, per the policy), then the transfer; it must be pending."""
    bundle_id = Transfer.objects.filter(pk=transfer_id).values_list("bundle_id", flat=True).first()
    if bundle_id is None:
        raise errors.TransferNotFound(transfer_id=transfer_id)
    bundle = _lock_bundles([bundle_id])[bundle_id]
    transfer = (
        Transfer.objects.select_for_update()
        .select_related("from_account__organisation", "to_account__organisation")
        .get(pk=transfer_id)
    )
    return transfer, bundle


def _decide(*, actor: Actor, transfer_id: int, side: str, outcome: str, kind: str) -> Transfer:
    transfer, bundle = _pending_transfer(transfer_id)
    account = transfer.to_account if side == "receiver" else transfer.from_account
    if isinstance(actor, str) or not user_can_act_for(actor, account.organisation):
        raise errors.NotTransferParty(transfer_id=transfer_id)
    if transfer.status != Transfer.Status.PENDING:
        raise errors.TransferNotPending(transfer_id=transfer_id, status=transfer.status)
    now = timezone.now()
    if outcome == Transfer.Status.ACCEPTED:
        to_account, _policy = _lock_receiving_account(transfer.to_account_id)
        if bundle.expires_on is not None and _today(now) >= bundle.expires_on:
            raise errors.BundleExpired(bundle_id=bundle.pk)
        bundle.account_id = to_account.pk
    bundle.status = Bundle.Status.ACTIVE
    bundle.save(update_fields=["account", "status"])
    transfer.status = outcome
    transfer.decided_at = now
    transfer.save(update_fields=["status", "decided_at"])
    ledger_append(
        kind=kind,
        actor=actor,
        subject=[bundle, transfer, transfer.from_account, transfer.to_account],
        data=events.transfer_decision_data(transfer, bundle),
    )
    return transfer


@transaction.atomic
def certificate_transfer_accept(*, actor: User, transfer_id: int) -> Transfer:
    """The receiver accepts a pending transfer: the reserved units become theirs."""
    return _decide(
        actor=actor,
        transfer_id=transfer_id,
        side="receiver",
        outcome=Transfer.Status.ACCEPTED,
        kind=events.TRANSFER_ACCEPTED,
    )


@transaction.atomic
def certificate_transfer_reject(*, actor: User, transfer_id: int) -> Transfer:
    """The receiver refuses a pending transfer: the units are free again at the sender."""
    return _decide(
        actor=actor,
        transfer_id=transfer_id,
        side="receiver",
        outcome=Transfer.Status.REJECTED,
        kind=events.TRANSFER_REJECTED,
    )


@transaction.atomic
def certificate_transfer_withdraw(*, actor: User, transfer_id: int) -> Transfer:
    """The sender takes back a pending transfer: the units are free again."""
    return _decide(
        actor=actor,
        transfer_id=transfer_id,
        side="sender",
        outcome=Transfer.Status.WITHDRAWN,
        kind=events.TRANSFER_WITHDRAWN,
    )


@transaction.atomic
def transfer_policy_set(
    *, actor: User, organisation_id: int, require_acceptance: bool
) -> TransferPolicy:
    """An organisation's administrator decides whether incoming transfers wait for acceptance."""
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None or not user_can_act_for(
        actor, organisation, role=Membership.Role.ADMIN
    ):
        raise NotOrganisationMember(organisation_id=organisation_id)
    policy, _created = TransferPolicy.objects.select_for_update().get_or_create(
        organisation=organisation
    )
    policy.require_acceptance = require_acceptance
    policy.save(update_fields=["require_acceptance", "updated_at"])
    ledger_append(
        kind=events.POLICY_UPDATED,
        actor=actor,
        subject=organisation,
        data={"organisation_id": organisation.pk, "require_acceptance": require_acceptance},
    )
    return policy


# ---------------------------------------------------------------- retirement


def _check_claim(
    *,
    beneficiary_name: str,
    beneficiary_country: str,
    consumption_start: dt.datetime,
    consumption_end: dt.datetime,
    purpose: str,
) -> None:
    if not (beneficiary_name or "").strip() or not COUNTRY.match(beneficiary_country or ""):
        raise errors.BeneficiaryRequired(
            fields={"beneficiary_name": ["required"], "beneficiary_country": ["ISO 3166 alpha-2"]}
        )
    if purpose not in Retirement.Purpose.values:
        raise InvalidInput(
            "Unknown purpose.", fields={"purpose": sorted(Retirement.Purpose.values)}
        )
    if consumption_start.tzinfo is None or consumption_end.tzinfo is None:
        raise errors.InvalidPeriod("Consumption times must carry a time zone.")
    if consumption_end <= consumption_start:
        raise errors.InvalidPeriod("The consumption period must end after it starts.")


@transaction.atomic
def certificate_retire(
    *,
    actor: User,
    items: Sequence[tuple[int, int | None]],
    beneficiary_name: str,
    beneficiary_country: str,
    consumption_start: dt.datetime,
    consumption_end: dt.datetime,
    purpose: str,
    location: str = "",
) -> Retirement:
    """Retire bundles (whole or first `volume` units) for a beneficiary: final, with a statement."""
    _check_claim(
        beneficiary_name=beneficiary_name,
        beneficiary_country=beneficiary_country,
        consumption_start=consumption_start,
        consumption_end=consumption_end,
        purpose=purpose,
    )
    if not items or len(items) > MAX_BATCH_ITEMS:
        raise errors.InvalidVolume(
            f"Retire between 1 and {MAX_BATCH_ITEMS} bundles.", fields={"items": ["count"]}
        )
    seen: set[int] = set()
    for bundle_id, volume in items:
        if bundle_id in seen:
            raise errors.DuplicateBundle(bundle_id=bundle_id)
        seen.add(bundle_id)
        _check_volume(volume)
    now = timezone.now()
    held = _lock_held(seen, actor)
    moves: list[Move] = []
    accounts: set[int] = set()
    for bundle_id, volume in items:
        bundle = held[bundle_id].bundle
        account = _require_holder(held[bundle_id])
        _check_movable(bundle, _today(now))
        volume = bundle.volume_wh if volume is None else volume
        _check_fits(bundle, volume)
        accounts.add(account.pk)
        moves.append(
            Move(
                bundle=bundle,
                volume_wh=volume,
                account_id=account.pk,
                status=Bundle.Status.RETIRED,
            )
        )
    if len(accounts) > 1:
        raise errors.InvalidVolume(
            "Retire from one account at a time.", fields={"items": ["several accounts"]}
        )
    _apply_moves(moves)
    salt = secrets.token_hex(16)
    retirement = Retirement(
        account_id=accounts.pop(),
        retired_by=actor,
        retired_at=now,
        volume_wh=sum(m.volume_wh for m in moves),
        beneficiary_name=beneficiary_name.strip(),
        beneficiary_country=beneficiary_country,
        consumption_start=consumption_start,
        consumption_end=consumption_end,
        location=location.strip(),
        purpose=purpose,
        claim_salt=salt,
    )
    retirement.claim_commitment = claim_commitment(retirement_claim(retirement), salt)
    retirement.save()
    RetirementItem.objects.bulk_create(
        [RetirementItem(retirement=retirement, bundle=m.moved) for m in moves]
    )
    ledger_append(
        kind=events.RETIRED,
        actor=actor,
        subject=_subjects(moves, retirement, ("account", retirement.account_id)),
        data={
            "retirement_id": retirement.pk,
            "public_id": retirement.public_id,
            "account_id": retirement.account_id,
            "volume_wh": retirement.volume_wh,
            "beneficiary_country": beneficiary_country,
            "consumption_start": consumption_start,
            "consumption_end": consumption_end,
            "purpose": purpose,
            "claim_commitment": retirement.claim_commitment,
            "items": [m.data() for m in moves],
        },
    )
    return retirement


# ---------------------------------------------------------------- expiry and withdrawal


@transaction.atomic
def certificate_expire_due(
    *, now: dt.datetime | None = None, limit: int = EXPIRE_BATCH
) -> list[int]:
    """Expire up to `limit` active bundles past their expiry date; one event for the lot.

    Bundles locked by a transfer in flight are skipped (SKIP LOCKED) and expire on the
    next run. Reserved bundles wait for their transfer's outcome.
    """
    now = now or timezone.now()
    today = _today(now)
    due = Bundle.objects.filter(
        status=Bundle.Status.ACTIVE, expires_on__isnull=False, expires_on__lte=today
    )
    ids = list(
        due.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return []
    Bundle.objects.filter(pk__in=ids).update(status=Bundle.Status.EXPIRED)
    ledger_append(
        kind=events.EXPIRED,
        actor="system:expiry",
        subject=[("bundle", pk) for pk in ids],
        data={"on": today, "bundle_ids": ids},
    )
    return ids


def _descendants(bundle_ids: Iterable[int]) -> set[int]:
    """The bundles and all bundles split from them, at any depth."""
    ids = sorted(set(bundle_ids))
    if not ids:
        return set()
    table = Bundle._meta.db_table
    marks = ",".join(["%s"] * len(ids))
    sql = (
        f"WITH RECURSIVE tree(id) AS ("  # noqa: S608 - table name from the model, values bound
        f" SELECT id FROM {table} WHERE id IN ({marks})"
        f" UNION SELECT b.id FROM {table} b JOIN tree t ON b.parent_id = t.id"
        f") SELECT id FROM tree"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def certificate_withdraw(
    *,
    actor: User,
    reason: str,
    bundle_ids: Sequence[int] = (),
    device_id: int | None = None,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
) -> Withdrawal:
    """The issuing body withdraws certificates issued in error, wherever they are held.

    Give bundles (their split descendants are included) and/or a device and period.
    Active, reserved and expired bundles become WITHDRAWN (a pending transfer of them is
    cancelled); retired ones keep their status and are flagged by the withdrawal record.
    A production period none of whose units are left un-withdrawn is released, so that
    corrected readings can be issued again (under new unit numbers).
    """
    _require_issuing_body(actor)
    if not reason or not reason.strip():
        raise errors.ReasonRequired(fields={"reason": ["required"]})
    roots = set(bundle_ids)
    missing = roots - set(Bundle.objects.filter(pk__in=roots).values_list("pk", flat=True))
    if missing:
        raise errors.BundleNotFound(bundle_ids=sorted(missing))
    if device_id is not None:
        if period_start is None or period_end is None or period_end <= period_start:
            raise errors.InvalidPeriod("Give the period to withdraw (start before end).")
        roots |= set(
            Bundle.objects.filter(
                device_id=device_id,
                parent__isnull=True,
                period_start__lt=period_end,
                period_end__gt=period_start,
            ).values_list("pk", flat=True)
        )
    if not roots:
        raise errors.BundleNotFound("Nothing matches: give bundles or a device and period.")
    locked: dict[int, Bundle] = {}
    pending = _descendants(roots)
    while pending:
        # A concurrent split may add children after we read the tree: lock, then look again.
        locked |= _lock_bundles(pending)
        splits = [pk for pk, b in locked.items() if b.status == Bundle.Status.SPLIT]
        pending = _descendants(splits) - set(locked)
    leaves = [b for pk, b in sorted(locked.items()) if b.status != Bundle.Status.SPLIT]
    already = set(
        WithdrawalItem.objects.filter(bundle_id__in=[b.pk for b in leaves]).values_list(
            "bundle_id", flat=True
        )
    )
    now = timezone.now()
    withdrawal = Withdrawal.objects.create(
        reason=reason.strip(), withdrawn_by=actor, withdrawn_at=now
    )
    items, withdrawn, flagged = [], [], []
    for bundle in leaves:
        if bundle.pk in already or bundle.status == Bundle.Status.WITHDRAWN:
            continue
        items.append(
            WithdrawalItem(withdrawal=withdrawal, bundle=bundle, previous_status=bundle.status)
        )
        if bundle.status in (Bundle.Status.RETIRED, Bundle.Status.EXPORTED):
            flagged.append(bundle)
        else:
            withdrawn.append(bundle)
    if not items:
        raise errors.BundleNotActive(
            "Everything selected was withdrawn already.", bundle_ids=sorted(roots)
        )
    reserved = [b.pk for b in withdrawn if b.status == Bundle.Status.RESERVED]
    cancelled = list(
        Transfer.objects.filter(bundle_id__in=reserved, status=Transfer.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    Transfer.objects.filter(pk__in=cancelled).update(
        status=Transfer.Status.CANCELLED, decided_at=now
    )
    Bundle.objects.filter(pk__in=[b.pk for b in withdrawn]).update(status=Bundle.Status.WITHDRAWN)
    WithdrawalItem.objects.bulk_create(items)
    withdrawal.volume_wh = sum(item.bundle.volume_wh for item in items)
    withdrawal.save(update_fields=["volume_wh"])
    released = _release_periods({(b.device_id, b.period_start) for b in leaves}, now)
    ledger_append(
        kind=events.WITHDRAWN,
        actor=actor,
        subject=[withdrawal, *(item.bundle for item in items)],
        data={
            "withdrawal_id": withdrawal.pk,
            "reason": withdrawal.reason,
            "withdrawn_bundle_ids": [b.pk for b in withdrawn],
            "flagged_bundle_ids": [b.pk for b in flagged],
            "cancelled_transfer_ids": cancelled,
            "released_periods": released,
            "volume_wh": withdrawal.volume_wh,
        },
    )
    return withdrawal


def _release_periods(keys: set[tuple[int, dt.datetime]], now: dt.datetime) -> list[list[Any]]:
    """Release issued periods all of whose current bundles carry a withdrawal record."""
    released: list[list[Any]] = []
    by_device: dict[int, set[dt.datetime]] = defaultdict(set)
    for device_id, start in keys:
        by_device[device_id].add(start)
    for device_id, starts in sorted(by_device.items()):
        kept = set(
            Bundle.objects.filter(device_id=device_id, period_start__in=starts)
            .exclude(status=Bundle.Status.SPLIT)
            .filter(withdrawal_item__isnull=True)
            .values_list("period_start", flat=True)
        )
        periods = IssuedPeriod.objects.filter(
            device_id=device_id, period_start__in=starts - kept, withdrawn_at__isnull=True
        ).order_by("period_start")
        rows = list(periods.values_list("pk", "period_start", "period_end"))
        IssuedPeriod.objects.filter(pk__in=[pk for pk, *_ in rows]).update(withdrawn_at=now)
        released += [[device_id, start, end] for _pk, start, end in rows]
    return released
