"""Reads of household data. Every read by anyone but the household passes `consent_check`.

`consent_check` is the one gate: it finds a grant in force now (its period is when the
grantee may read, as a Green Button authorisation) that covers the meters and the
resolution, and writes an access record (granted or refused) the household can list. The
record is written outside any transaction of the caller's making (reads open none), so a
refused read still leaves its trace.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from accounts.permissions import user_is_issuing_body
from assets.models import Reading
from consumers import errors, storage
from consumers.models import (
    Community,
    CommunityMember,
    Consent,
    DataAccess,
    Household,
    Site,
    SiteMeter,
)

# A grant at a resolution allows that resolution and every coarser one.
RESOLUTION_RANK = {"hourly": 0, "daily": 1, "monthly": 2}
MAX_READ_SPAN = dt.timedelta(days=366)


def _member_org_ids(user: User | None) -> list[int]:
    if not user or not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(
            user=user, organisation__status=Organisation.Status.APPROVED
        ).values_list("organisation_id", flat=True)
    )


def user_is_household_of(user: User | None, site: Site) -> bool:
    """The user belongs to the site's household organisation (any role): its own data."""
    return site.household.organisation_id in _member_org_ids(user)


def household_for_user(user: User | None) -> Household | None:
    """The household the user belongs to (any role), if any."""
    ids = _member_org_ids(user)
    return Household.objects.filter(organisation_id__in=ids).select_related("organisation").first()


@dataclass(frozen=True)
class AccessRequest:
    """What a reader wants: which meters of a site, over which period, at which resolution."""

    what: str
    site_meters: Sequence[SiteMeter]
    start: dt.datetime
    end: dt.datetime
    resolution: str
    as_organisation_id: int | None = None  # read on behalf of this organisation only
    # Grants for the community purpose serve the community's allocation and nothing else.
    community: bool = False
    purpose: str = ""  # only grants for this purpose (a contract's use), when given


def consent_check(*, user: User | None, site: Site, request: AccessRequest) -> int | None:
    """None for the household itself; otherwise the id of the covering grant, or
    ConsentRequired. Either way a non-household read leaves a DataAccess row.

    One SELECT finds the reader's organisations and the grants in force to them with their
    meters, and one INSERT records the read (consumers.storage), so the check costs little
    beside the read it guards.
    """
    if not user or not user.is_authenticated:
        return _consent_decide(site=site, orgs=[], reader_id=None, request=request, rows=[])
    orgs, rows = storage.reader_grant_rows(
        user_id=user.pk,
        site_id=site.pk,
        community=request.community,
        now=timezone.now(),
        purpose=request.purpose,
    )
    if site.household.organisation_id in orgs:
        return None
    if request.as_organisation_id is not None:
        orgs = [pk for pk in orgs if pk == request.as_organisation_id]
        rows = [row for row in rows if row[1] == request.as_organisation_id]
    return _consent_decide(site=site, orgs=orgs, reader_id=user.pk, request=request, rows=rows)


def consent_check_for_organisation(
    *, organisation_id: int, site: Site, request: AccessRequest
) -> int | None:
    """`consent_check` for a read no person makes (a contract's execution on behalf of
    `organisation_id`): None when the organisation is the site's household, else the
    covering grant or ConsentRequired, with the access record (no reader)."""
    if site.household.organisation_id == organisation_id:
        return None
    return _consent_decide(site=site, orgs=[organisation_id], reader_id=None, request=request)


def consent_checks(
    *, user: User | None, groups: Sequence[Sequence[tuple[Site, AccessRequest]]]
) -> list[errors.ConsentRequired | None]:
    """`consent_check` for many reads by one user at once (a report over many sites or
    members): each group's reads are checked in order and the group stops at its first
    refusal, as a loop of `consent_check` that raises would, and each group's outcome is
    None (every read covered, or the reader's own household) or that refusal.

    One SELECT per kind of grant asked for (community or not, purpose) finds the reader's
    organisations and their grants on all the sites, and one INSERT records every read
    (consumers.storage), whatever the number of sites."""
    now = timezone.now()
    reader_id = user.pk if user and user.is_authenticated else None
    orgs: list[int] = []
    rows: dict[tuple[bool, str], dict[int, list[tuple[int, int, str, bool, int]]]] = {}
    if reader_id is not None:
        site_ids = sorted({site.pk for group in groups for site, _request in group})
        kinds = sorted({(r.community, r.purpose) for group in groups for _site, r in group})
        for community, purpose in kinds:
            orgs, found = storage.reader_grant_rows_many(
                user_id=reader_id, site_ids=site_ids, community=community, now=now, purpose=purpose
            )
            by_site = rows.setdefault((community, purpose), defaultdict(list))
            for site_id, *row in found:
                by_site[site_id].append(tuple(row))
    records: list[dict[str, Any]] = []
    outcomes: list[errors.ConsentRequired | None] = []
    for group in groups:
        refusal = None
        for site, request in group:
            if site.household.organisation_id in orgs:
                continue
            readers = orgs
            grants = rows.get((request.community, request.purpose), {}).get(site.pk, [])
            if request.as_organisation_id is not None:
                readers = [pk for pk in orgs if pk == request.as_organisation_id]
                grants = [row for row in grants if row[1] == request.as_organisation_id]
            record = _consent_record(
                site=site, orgs=readers, reader_id=reader_id, request=request, rows=grants, at=now
            )
            records.append(record)
            if record["consent_id"] is None:
                refusal = errors.ConsentRequired(site_id=site.pk, reason=record["reason"])
                break
        outcomes.append(refusal)
    storage.data_access_insert_many(records)
    return outcomes


def _consent_decide(
    *,
    site: Site,
    orgs: list[int],
    reader_id: int | None,
    request: AccessRequest,
    rows: list[tuple[int, int, str, bool, int]] | None = None,
) -> int:
    """Find the covering grant among `rows` (read here when not given) and record the read."""
    now = timezone.now()
    if rows is None and orgs and request.resolution in RESOLUTION_RANK:
        rows = storage.consent_grant_rows(
            site_id=site.pk,
            org_ids=orgs,
            community=request.community,
            now=now,
            purpose=request.purpose,
        )
    record = _consent_record(
        site=site, orgs=orgs, reader_id=reader_id, request=request, rows=rows or [], at=now
    )
    storage.data_access_insert(**record)
    if record["consent_id"] is None:
        raise errors.ConsentRequired(site_id=site.pk, reason=record["reason"])
    return record["consent_id"]


def _consent_record(
    *,
    site: Site,
    orgs: list[int],
    reader_id: int | None,
    request: AccessRequest,
    rows: Sequence[tuple[int, int, str, bool, int]],
    at: dt.datetime,
) -> dict[str, Any]:
    """The access record of a read: granted under the first grant among `rows` (oldest
    first) that covers the meters at the resolution, or refused with its reason."""
    meter_ids = sorted(m.pk for m in request.site_meters)
    rank = RESOLUTION_RANK.get(request.resolution)
    consent_id = grantee_id = None
    reason = "consent_required"
    if rank is not None and orgs:
        grants: dict[int, tuple[int, str, set[int]]] = {}
        for pk, grantee, resolution, revoked, meter in rows:
            if revoked:  # a revoked grant in its period: the refusal says so
                reason = "consent_revoked"
                continue
            grants.setdefault(pk, (grantee, resolution, set()))[2].add(meter)
        for pk, (grantee, resolution, covered) in grants.items():
            if set(meter_ids) <= covered and RESOLUTION_RANK[resolution] <= rank:
                consent_id, grantee_id = pk, grantee
                break
    return {
        "household_id": site.household_id,
        "site_id": site.pk,
        "consent_id": consent_id,
        "reader_id": reader_id,
        "reader_organisation_id": grantee_id or (orgs[0] if orgs else None),
        "at": at,
        "what": request.what,
        "meter_ids": meter_ids,
        "resolution": request.resolution,
        "period_start": request.start,
        "period_end": request.end,
        "outcome": DataAccess.Outcome.GRANTED if consent_id else DataAccess.Outcome.REFUSED,
        "reason": "" if consent_id else reason,
    }


# -- sites -----------------------------------------------------------------------------------


def site_list(*, user: User | None) -> QuerySet[Site]:
    """The household's own sites; the issuing body and community admins see sites to confirm."""
    if not user or not user.is_authenticated:
        return Site.objects.none()
    orgs = _member_org_ids(user)
    visible = Q(household__organisation_id__in=orgs)
    if user_is_issuing_body(user):
        visible |= Q(status=Site.Status.PENDING)
    admin_orgs = Membership.objects.filter(
        user=user, role=Membership.Role.ADMIN, organisation_id__in=orgs
    ).values_list("organisation_id", flat=True)
    applicant_orgs = CommunityMember.objects.filter(
        community__organisation_id__in=list(admin_orgs)
    ).values_list("organisation_id", flat=True)
    visible |= Q(household__organisation_id__in=list(applicant_orgs), status=Site.Status.PENDING)
    return Site.objects.filter(visible).select_related("household", "grid_area").distinct()


def site_get(*, user: User | None, site_id: int) -> Site:
    site = site_list(user=user).filter(pk=site_id).first()
    if site is None:
        raise errors.SiteNotFound(site_id=site_id)
    return site


def site_for_read(*, site_id: int) -> Site:
    """A site by id for a consent-checked read (existence is not secret to a grantee)."""
    site = Site.objects.select_related("household").filter(pk=site_id).first()
    if site is None:
        raise errors.SiteNotFound(site_id=site_id)
    return site


def _bucket(moment: dt.datetime, resolution: str) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    if resolution == "hourly":
        return moment.replace(minute=0, second=0, microsecond=0)
    if resolution == "daily":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def check_period(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None or end <= start or end - start > MAX_READ_SPAN:
        raise errors.PeriodInvalid()


def site_readings_read(
    *,
    user: User | None,
    site_id: int,
    start: dt.datetime,
    end: dt.datetime,
    resolution: str,
    site_meter_ids: Iterable[int] | None = None,
) -> dict[str, Any]:
    """A site's readings summed per hour, day or month (UTC), per meter, after the check."""
    check_period(start, end)
    if resolution not in RESOLUTION_RANK:
        raise errors.PeriodInvalid(fields={"resolution": list(RESOLUTION_RANK)})
    site = site_for_read(site_id=site_id)
    meters = list(SiteMeter.objects.filter(site=site).select_related("meter").order_by("pk"))
    if site_meter_ids is not None:
        wanted = set(site_meter_ids)
        meters = [m for m in meters if m.pk in wanted]
        if len(meters) != len(wanted):
            raise errors.SiteNotFound("No such meter at this site.", site_id=site_id)
    consent = consent_check(
        user=user,
        site=site,
        request=AccessRequest("readings", meters, start, end, resolution),
    )
    by_meter = {m.meter_id: m for m in meters}
    sums: dict[tuple[int, dt.datetime], int] = defaultdict(int)
    rows = Reading.objects.filter(
        meter_id__in=list(by_meter), start__gte=start, end__lte=end
    ).values_list("meter_id", "start", "wh")
    for meter_id, moment, wh in rows.iterator(chunk_size=5000):
        sums[(meter_id, _bucket(moment, resolution))] += wh
    series = [
        {
            "site_meter_id": by_meter[meter_id].pk,
            "role": by_meter[meter_id].role,
            "start": moment,
            "wh": wh,
        }
        for (meter_id, moment), wh in sorted(sums.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return {
        "site_id": site.pk,
        "resolution": resolution,
        "consent_id": consent,
        "series": series,
    }


# -- the household's own view ------------------------------------------------------------------


def consent_list(*, user: User | None) -> QuerySet[Consent]:
    """Grants the user's household gave, and grants given to the user's organisations."""
    orgs = _member_org_ids(user)
    return (
        Consent.objects.filter(Q(household__organisation_id__in=orgs) | Q(grantee_id__in=orgs))
        .select_related("grantee")
        .prefetch_related("meters")
    )


def data_access_list(*, user: User | None) -> QuerySet[DataAccess]:
    """Every read of the household's data by others: who, when, what, under which grant."""
    household = household_for_user(user)
    if household is None:
        return DataAccess.objects.none()
    return DataAccess.objects.filter(household=household).select_related(
        "reader_organisation", "reader"
    )


def household_export(*, household: Household) -> dict[str, Any]:
    """All the household's data (GDPR access and portability), as plain values."""
    sites = list(household.sites.select_related("grid_area").order_by("pk"))
    links = list(SiteMeter.objects.filter(site__household=household).select_related("meter"))
    readings = Reading.objects.filter(meter_id__in=[link.meter_id for link in links]).order_by(
        "meter_id", "start"
    )
    role_of = {link.meter_id: (link.site_id, link.role, link.meter.serial) for link in links}
    return {
        "household": {
            "id": household.pk,
            "name": household.name,
            "street": household.street,
            "postcode": household.postcode,
            "city": household.city,
            "country": household.country,
            "organisation_id": household.organisation_id,
        },
        "sites": [
            {
                "id": site.pk,
                "name": site.name,
                "metering_point_id": site.metering_point_id,
                "grid_area": site.grid_area.code,
                "status": site.status,
                "meters": [
                    {
                        "site_meter_id": x.pk,
                        "meter_id": x.meter_id,
                        "serial": x.meter.serial,
                        "role": x.role,
                    }
                    for x in links
                    if x.site_id == site.pk
                ],
            }
            for site in sites
        ],
        "consents": [
            {
                "id": c.pk,
                "site_id": c.site_id,
                "grantee_id": c.grantee_id,
                "grantee": c.grantee.legal_name,
                "purpose": c.purpose,
                "resolution": c.resolution,
                "site_meter_ids": sorted(m.pk for m in c.meters.all()),
                "valid_from": c.valid_from,
                "valid_to": c.valid_to,
                "revoked_at": c.revoked_at,
            }
            for c in household.consents.select_related("grantee").prefetch_related("meters")
        ],
        "accesses": [
            {
                "id": a.pk,
                "at": a.at,
                "reader_organisation_id": a.reader_organisation_id,
                "what": a.what,
                "site_id": a.site_id,
                "meter_ids": a.meter_ids,
                "resolution": a.resolution,
                "period_start": a.period_start,
                "period_end": a.period_end,
                "consent_id": a.consent_id,
                "outcome": a.outcome,
                "reason": a.reason,
            }
            for a in household.accesses.order_by("pk")
        ],
        "readings": [
            {
                "site_id": role_of[r.meter_id][0],
                "role": role_of[r.meter_id][1],
                "meter": role_of[r.meter_id][2],
                "start": r.start,
                "end": r.end,
                "wh": r.wh,
                "signed": r.is_signed,
            }
            for r in readings.iterator(chunk_size=5000)
        ],
    }


def household_energy(
    *, household: Household, start: dt.datetime, end: dt.datetime, step: str
) -> list[dict[str, Any]]:
    """The household's own readings summed per meter role and hour or day (UTC), over all
    its sites: one grouped query whatever the number of readings (the web dashboard's
    chart). The household reads its own data, so no consent check and no access record."""
    if step not in ("hour", "day"):
        raise errors.PeriodInvalid(fields={"step": ["hour", "day"]})
    check_period(start, end)
    return list(
        Reading.objects.filter(
            meter__site_link__site__household=household, start__gte=start, end__lte=end
        )
        .annotate(bucket=Trunc("start", step, tzinfo=dt.UTC))
        .values("bucket", role=F("meter__site_link__role"))
        .annotate(wh=Sum("wh"))
        .order_by("bucket", "role")
    )


# -- communities ------------------------------------------------------------------------------


def community_list(*, user: User | None) -> QuerySet[Community]:
    """Communities are public (name, area, key kind, price); members are not."""
    return Community.objects.select_related("grid_area", "organisation")


def community_role(*, user: User | None, community: Community) -> str | None:
    """ "admin" (any member of the operator), "member", or None."""
    orgs = _member_org_ids(user)
    if community.organisation_id in orgs:
        return "admin"
    if community.members.filter(organisation_id__in=orgs).exists():
        return "member"
    return None


def readings_hide_household_meters(user: User | None, qs: QuerySet[Reading]) -> QuerySet[Reading]:
    """assets' reading list without other households' meters (registered in apps.py): they
    are read through `site_readings_read`, which checks consent and logs the read."""
    return qs.exclude(
        Q(meter__site_link__isnull=False)
        & ~Q(meter__site_link__site__household__organisation_id__in=_member_org_ids(user))
    )
