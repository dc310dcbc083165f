"""Certificates of a community's shared devices to its members, hour by hour, by the key.

The shared devices' certificates are issued to their owner (the community's operator) as
any device's are. `community_certificates_distribute` then moves each hour's certificates
to the members' accounts in exactly the Wh `consumers.intervals` allocates them for that
hour (the allocation report's numbers, summed over the hour's intervals); what the key
leaves over (the community's export) stays with the operator. Units move through the
certificates app's public reservation service (reserve the first units, deliver them),
which appends no event: this service appends the one event, naming every bundle and
account, with the unit changes the certificates replay follows.

Locks: the community row first (it serialises two distributions of one community, so
the second sees the hours the first wrote and skips them), then the hour's bundles in
primary-key order (`certificates.locks.bundles_lock`), then each receiving account
(FOR KEY SHARE, inside the delivery). No certificates writer waits for a community row,
so taking it before the bundles forms no cycle (docs/architecture.md, "Lock order").
An hour is distributed once: `CommunityDistribution` is unique per (community, hour).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Membership, User
from accounts.permissions import user_can_act_for
from certificates import locks as certificate_locks
from certificates.models import Bundle, IssuedPeriod
from certificates.services import certificate_units_deliver, certificate_units_reserve
from consumers import allocation, errors, events
from consumers.intervals import (
    community_interval_minutes,
    community_intervals,
    community_period_members,
)
from consumers.locks import community_lock
from consumers.models import Community, CommunityDistribution, CommunityMember, SiteMeter
from consumers.owners import communities_distributed_elsewhere
from consumers.selectors import AccessRequest, consent_check_for_organisation
from ledger.services import ledger_append
from registry.errors import DomainError

HOUR = dt.timedelta(hours=1)
# One call moves at most a month of hours in one transaction; the periodic task walks on.
MAX_DISTRIBUTION_SPAN = dt.timedelta(days=31)
# How far back the periodic run looks (hours whose readings or certificates came late).
DUE_LOOKBACK_DAYS = 7

# Why an hour was not distributed (the report's `skipped`).
ALREADY_DISTRIBUTED = "already_distributed"
READINGS_INCOMPLETE = "readings_incomplete"
CERTIFICATES_NOT_ISSUED = "certificates_not_issued"
# Why the periodic run left a community alone: an active community_sharing contract
# distributes it (consumers.owners).
DISTRIBUTED_ELSEWHERE = "distributed_by_contract"


@dataclass
class DistributionReport:
    """What one call did: the hours distributed, and each skipped hour with its reason."""

    community_id: int
    start: dt.datetime
    end: dt.datetime
    distributions: list[CommunityDistribution] = field(default_factory=list)
    skipped: list[tuple[dt.datetime, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        issued = sum(d.issued_wh for d in self.distributions)
        distributed = sum(d.distributed_wh for d in self.distributions)
        members: dict[str, int] = {}
        for row in self.distributions:
            for member_id, wh in row.member_wh.items():
                members[member_id] = members.get(member_id, 0) + wh
        return {
            "community_id": self.community_id,
            "start": self.start,
            "end": self.end,
            "issued_wh": issued,
            "distributed_wh": distributed,
            "kept_wh": issued - distributed,
            "members": [
                {"member_id": int(pk), "distributed_wh": wh} for pk, wh in sorted(members.items())
            ],
            "hours": [
                {
                    "hour": row.hour,
                    "issued_wh": row.issued_wh,
                    "distributed_wh": row.distributed_wh,
                    "kept_wh": row.kept_wh,
                    "members": row.member_wh,
                }
                for row in self.distributions
            ],
            "skipped": [{"hour": hour, "reason": reason} for hour, reason in self.skipped],
        }


def _on_the_hour(moment: dt.datetime) -> bool:
    return (
        moment.tzinfo is not None and not moment.microsecond and int(moment.timestamp()) % 3600 == 0
    )


def _check_period(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> None:
    """Whole hours, start < end <= now, at most 31 days apart; the error names what is wrong
    with which end."""
    fields: dict[str, list[str]] = {}
    if not _on_the_hour(start):
        fields["start"] = ["on the hour"]
    if not _on_the_hour(end):
        fields["end"] = ["on the hour"]
    if end <= start:
        fields.setdefault("end", []).append("after start")
    elif end - start > MAX_DISTRIBUTION_SPAN:
        fields.setdefault("end", []).append("at most 31 days after start")
    if end > now:
        fields.setdefault("end", []).append("not in the future")
    if fields:
        raise errors.PeriodInvalid(
            "Give whole hours, start < end <= now, at most 31 days apart.", fields=fields
        )


def _operator_community(actor: User, community_id: int) -> Community:
    community = Community.objects.select_related("organisation").filter(pk=community_id).first()
    if community is None:
        raise errors.CommunityNotFound(community_id=community_id)
    if not user_can_act_for(actor, community.organisation, role=Membership.Role.OPERATOR):
        raise errors.NotCommunityOperator()
    return community


def _check_consents(
    community: Community, members: list[CommunityMember], start: dt.datetime, end: dt.datetime
) -> None:
    """The distribution reads the members' consumption as the allocation report does: a
    household member's data only under its community grant, and the read is logged."""
    for member in members:
        if member.site is None:
            continue
        link = SiteMeter.objects.filter(meter_id=member.consumption_meter_id).first()
        consent_check_for_organisation(
            organisation_id=community.organisation_id,
            site=member.site,
            request=AccessRequest(
                "community_distribution",
                [link] if link else [],
                start,
                end,
                "hourly",
                community=True,
            ),
        )


def community_certificates_distribute(
    *, actor: User, community_id: int, start: dt.datetime, end: dt.datetime
) -> DistributionReport:
    """Move each complete, issued, not yet distributed hour's certificates of the shared
    devices from the operator's accounts to the members' accounts by the community's key.

    The consent check runs first, outside the transaction, so a refused read leaves its
    access record (as every read does); the moves are one transaction and one event.
    Nothing to distribute: no event, a report of skipped hours.
    """
    now = timezone.now()
    community = _operator_community(actor, community_id)
    _check_period(start, end, now)
    _check_consents(community, community_period_members(community, start, end), start, end)
    return _distribute(actor=actor, community_id=community.pk, start=start, end=end, now=now)


@dataclass(frozen=True)
class DueRun:
    """One call of the periodic run: a community over a span, its report or refusal."""

    community_id: int
    start: dt.datetime
    end: dt.datetime
    report: DistributionReport | None = None
    refused: str = ""


def _operator_user(community: Community) -> User | None:
    """Who the periodic run acts as: the operator organisation's first admin or operator
    (as the MQTT gateway acts for a meter's organisation)."""
    membership = (
        Membership.objects.filter(
            organisation_id=community.organisation_id,
            role__in=[Membership.Role.ADMIN, Membership.Role.OPERATOR],
        )
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return membership.user if membership else None


def community_certificates_distribute_due(
    *,
    days: int = DUE_LOOKBACK_DAYS,
    community_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[DueRun]:
    """The periodic run: every community with shared devices (or one), the hours of the
    last `days` days up to the current hour, at most a month per call, each call its own
    transaction. Hours already distributed are skipped, so a run again is harmless; a
    refusal (no consent, an account that cannot receive) stops that community's run and
    is reported, the other communities go on. A community another app distributes (an
    active community sharing contract) is left to it (`distributed_by_contract`)."""
    end = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    first = end - dt.timedelta(days=days)
    communities = Community.objects.filter(devices__isnull=False).distinct().order_by("pk")
    if community_id is not None:
        communities = communities.filter(pk=community_id)
    runs: list[DueRun] = []
    elsewhere = communities_distributed_elsewhere()
    for community in communities:
        if community.pk in elsewhere:
            runs.append(DueRun(community.pk, first, end, refused=DISTRIBUTED_ELSEWHERE))
            continue
        actor = _operator_user(community)
        if actor is None:
            runs.append(DueRun(community.pk, first, end, refused="no_operator_user"))
            continue
        start = first
        while start < end:
            stop = min(start + MAX_DISTRIBUTION_SPAN, end)
            try:
                report = community_certificates_distribute(
                    actor=actor, community_id=community.pk, start=start, end=stop
                )
            except DomainError as exc:
                runs.append(DueRun(community.pk, start, stop, refused=exc.code))
                break
            runs.append(DueRun(community.pk, start, stop, report=report))
            start = stop
    return runs


def _hour_sums(values: np.ndarray, per_hour: int) -> np.ndarray:
    return values.reshape(values.shape[0] // per_hour, per_hour, *values.shape[1:]).sum(axis=1)


@transaction.atomic
def _distribute(
    *, actor: User, community_id: int, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> DistributionReport:
    community = community_lock(community_id)
    members = community_period_members(community, start, end)
    minutes = community_interval_minutes(community, members)
    if 60 % minutes:
        raise errors.DistributionNotPossible(
            "The community's meters read in intervals longer than an hour.", minutes=minutes
        )
    period = community_intervals(
        community=community, members=members, start=start, end=end, minutes=minutes
    )
    per_hour = 60 // minutes
    hours = [start + HOUR * i for i in range(period.n // per_hour)]
    allocated = _hour_sums(period.result.allocated, per_hour)  # (H, M)
    complete = period.complete.reshape(len(hours), per_hour).all(axis=1)
    produced = {pk: _hour_sums(wh, per_hour) for pk, wh in period.device_production.items()}
    done = set(
        CommunityDistribution.objects.filter(
            community=community, hour__gte=start, hour__lt=end
        ).values_list("hour", flat=True)
    )
    issued = set(
        IssuedPeriod.objects.filter(
            device_id__in=list(produced),
            period_start__gte=start,
            period_end__lte=end,
            withdrawn_at__isnull=True,
        ).values_list("device_id", "period_start")
    )
    report = DistributionReport(community_id=community.pk, start=start, end=end)
    ready: list[int] = []
    for h, hour in enumerate(hours):
        if hour in done:
            report.skipped.append((hour, ALREADY_DISTRIBUTED))
        elif not complete[h]:
            report.skipped.append((hour, READINGS_INCOMPLETE))
        elif any(wh[h] > 0 and (pk, hour) not in issued for pk, wh in produced.items()):
            report.skipped.append((hour, CERTIFICATES_NOT_ISSUED))
        else:
            ready.append(h)
    held = _operator_bundles(community, list(produced), [hours[h] for h in ready], now)
    subjects: list[Any] = []
    units: list[dict[str, Any]] = []
    rows: list[CommunityDistribution] = []
    for h in ready:
        bundles = held.get(hours[h], [])
        if not bundles:
            continue  # nothing produced, or nothing the operator still holds: nothing to move
        held_wh = sum(b.volume_wh for b in bundles)
        given = _shares(held_wh, allocated[h])
        member_wh = _deliver(actor, bundles, members, given, now, subjects, units)
        total = int(given.sum())
        rows.append(
            CommunityDistribution(
                community=community,
                hour=hours[h],
                issued_wh=held_wh,
                distributed_wh=total,
                kept_wh=held_wh - total,
                member_wh=member_wh,
                distributed_by=actor,
                created_at=now,
            )
        )
    if not rows:
        return report
    report.distributions = CommunityDistribution.objects.bulk_create(rows)
    ledger_append(
        kind=events.COMMUNITY_CERTIFICATES_DISTRIBUTED,
        actor=actor,
        subject=[community, *report.distributions, *dict.fromkeys(subjects)],
        data={
            "community_id": community.pk,
            "start": start,
            "end": end,
            "key_kind": community.key_kind,
            "hours": [
                {
                    "distribution_id": row.pk,
                    "hour": row.hour,
                    "issued_wh": row.issued_wh,
                    "distributed_wh": row.distributed_wh,
                    "kept_wh": row.kept_wh,
                    "members": row.member_wh,
                }
                for row in report.distributions
            ],
            "units": units,
        },
    )
    return report


def _operator_bundles(
    community: Community, device_ids: list[int], hours: list[dt.datetime], now: dt.datetime
) -> dict[dt.datetime, list[Bundle]]:
    """The hour's active, unexpired hourly bundles of the shared devices that the operator
    holds in trading or issuance accounts, locked in primary-key order, per hour."""
    if not hours or not device_ids:
        return {}
    candidates = list(
        Bundle.objects.filter(
            device_id__in=device_ids,
            period_start__in=hours,
            status=Bundle.Status.ACTIVE,
            account__organisation_id=community.organisation_id,
            account__kind__in=[Account.Kind.TRADING, Account.Kind.ISSUANCE],
        ).values_list("pk", flat=True)
    )
    accounts = set(
        Account.objects.filter(organisation_id=community.organisation_id).values_list(
            "pk", flat=True
        )
    )
    today = now.astimezone(dt.UTC).date()
    out: dict[dt.datetime, list[Bundle]] = {}
    for bundle in certificate_locks.bundles_lock(candidates).values():
        # read again under the lock: a transfer may have moved it since the SELECT
        if (
            bundle.status != Bundle.Status.ACTIVE
            or bundle.account_id not in accounts
            or bundle.period_end - bundle.period_start != HOUR
            or (bundle.expires_on is not None and today >= bundle.expires_on)
        ):
            continue
        out.setdefault(bundle.period_start, []).append(bundle)
    return out


def _shares(held_wh: int, allocated: np.ndarray) -> np.ndarray:
    """Each member's Wh of the hour: its allocation, or, when the operator holds fewer
    certificates than were allocated, the held Wh split in proportion (largest remainder)."""
    allocated = np.asarray(allocated, dtype=np.int64)
    if int(allocated.sum()) <= held_wh:
        return allocated
    return allocation.split_largest_remainder(np.array([held_wh]), allocated[None, :])[0]


def _deliver(
    actor: User,
    bundles: list[Bundle],
    members: list[CommunityMember],
    given: np.ndarray,
    now: dt.datetime,
    subjects: list[Any],
    units: list[dict[str, Any]],
) -> dict[str, int]:
    """Take the members' Wh from the hour's bundles in pk order, first units first."""
    pool = sorted(bundles, key=lambda b: b.pk)
    member_wh: dict[str, int] = {}
    for j, member in enumerate(members):
        need = int(given[j])
        if need:
            member_wh[str(member.pk)] = need
        while need:
            source = pool[0]
            take = min(need, source.volume_wh)
            reserved = certificate_units_reserve(
                actor=actor,
                bundle_id=source.pk,
                volume_wh=None if take == source.volume_wh else take,
                now=now,
            )
            delivered = certificate_units_deliver(
                bundle_id=reserved.bundle.pk, to_account_id=member.account_id, now=now
            )
            subjects += [*reserved.subjects(), *delivered.subjects()]
            units.append({"action": "reserve", **reserved.data(), "account_id": source.account_id})
            units.append(
                {
                    "action": "deliver",
                    **delivered.data(),
                    "account_id": member.account_id,
                    "member_id": member.pk,
                }
            )
            pool = ([reserved.rest] if reserved.rest is not None else []) + pool[1:]
            need -= take
    return member_wh
