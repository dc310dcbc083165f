"""Issuance: certificates from a device's accepted readings, by the issuing body, by a
request's approval (`issuance_request.py`) or by the device's automatic hourly policy.

Lock: the device's unit counter (`locks.unit_counter_lock`) is the per-device issuance
lock; issuance touches no existing bundle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Account
from certificates import errors, events, locks, storage
from certificates.allocation import (
    HOUR,
    expiry_date,
    floor_hour,
    hour_number,
    is_hour_aligned,
    split_by_shares,
)
from certificates.models import Bundle, Issuance, IssuanceRequest, IssuedPeriod
from certificates.services.common import (
    Actor,
    _issued,
    _issuing_body_of,
    _require_issuing_body,
)
from ledger.services import ledger_append

MAX_REQUEST_DAYS = 366


def _device_for_issuance(device_id: int):
    from assets.models import Device

    device = Device.objects.select_related("grid_area").filter(pk=device_id).first()
    if device is None:
        raise errors.DeviceNotFound(device_id=device_id)
    if not device.can_issue:
        raise errors.DeviceCannotIssue(device_id=device_id, status=str(device.status))
    return device


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
        _live_periods_overlapping(device_id, periods[0][0], periods[-1][1])
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
    return _live_periods_overlapping(device_id, start, end).exists()


def _live_periods_overlapping(device_id: int, start: dt.datetime, end: dt.datetime):
    """The device's live issued periods that overlap [start, end).

    A device's live periods never overlap one another, so of those starting before
    `start` only the last can reach into the span: the index range scan begins at that
    one's start (found by one probe of the (device, period_start) index), not at the
    device's first period. `period_start < end AND period_end > start` alone scanned
    every earlier period of the device: a year of hourly issuance is 8,760 rows read on
    every issuance."""
    live = IssuedPeriod.objects.filter(device_id=device_id, withdrawn_at__isnull=True)
    last_before = live.filter(period_start__lt=start).order_by("-period_start")
    first = Coalesce(
        Subquery(last_before.values("period_start")[:1]),
        Value(start, output_field=DateTimeField()),
    )
    return live.filter(period_start__gte=first, period_start__lt=end, period_end__gt=start)


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
    kinds = dict(
        Account.objects.filter(pk__in=account_ids, status=Account.Status.OPEN).values_list(
            "pk", "kind"
        )
    )
    closed = [pk for pk in account_ids if pk not in kinds]
    if closed:
        raise errors.OwnershipIncomplete(
            device_id=device_id, reason="an owner's account is closed", account_ids=closed
        )
    # New certificates land in trading or issuance accounts, never in a retirement account.
    final = [pk for pk in account_ids if kinds[pk] == Account.Kind.RETIREMENT]
    if final:
        raise errors.AccountRefusesIssuance(device_id=device_id, account_ids=final)
    return list(zip(account_ids, shares, strict=True))


def _support_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def device_attributes(device: Any, grid: Any) -> dict[str, Any]:
    """What an issuance records of its device and grid area, as they are when it issues."""
    return {
        "device_name": device.name,
        "technology_code": device.technology_code,
        "energy_source_code": device.energy_source_code,
        "grid_area": grid,
        "grid_area_code": grid.code,
        "country": grid.country,
        "capacity_w": getattr(device, "capacity_w", None),
        "commissioning_date": getattr(device, "commissioning_date", None),
        "support": _support_text(getattr(device, "support", None)),
    }


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
    counter = locks.unit_counter_lock(device_id)  # the device's issuance lock
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
        **device_attributes(device, grid),
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
            storage.issued_periods_insert(
                [[device_id, issuance.pk, p[0], p[1], p[2], p[3]] for p in period_rows]
            )
    except IntegrityError:
        # The exclusion constraint (PostgreSQL) or the unique start: a writer that
        # bypassed the unit-counter lock. Never expected; refuse rather than double-issue.
        raise errors.DoubleIssuance(device_id=device_id) from None
    bundle_ids = iter(storage.bundle_rows_insert(bundle_rows))
    for period in period_rows:
        for row in period[4]:
            row[0] = next(bundle_ids)
    reading_ids = [pk for p in periods for pk in p[3]]
    marked = readings_mark_issued(reading_ids=reading_ids, at=now)
    if marked != len(reading_ids):
        raise errors.DoubleIssuance(device_id=device_id, reason="readings changed meanwhile")
    counter.next_unit = unit
    counter.save(update_fields=["next_unit"])
    # Every bundle the issuance creates and every account it credits is a subject, so that
    # a bundle's history starts at its issuance (a device-year of hourly certificates is
    # 8,760 subject rows: the subject index is built for that).
    owners = [row for period in period_rows for row in period[4]]
    subjects: list[Any] = [
        ("device", device_id),
        issuance,
        *(("bundle", row[0]) for row in owners),
        *(("account", row[1]) for row in owners),
    ]
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
    _issued(issuance)
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
