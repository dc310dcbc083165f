"""What the consumers' reports read, loaded for many sites or communities at once.

`consumers.reports` computes hourly matching per site and allocation per community; a page
that shows several of them (the household's dashboard) or an operator's allocation over
many members would otherwise repeat the same few queries per site, community or member.
Here each kind of row is one query whatever the count: sites with their import meters;
readings of all the meters involved; hourly certificates of all the households' accounts;
communities, their members, shared devices and meters. Arrays are filled as the rows
stream, so memory is what the reports hold anyway.

These are loaders, not gates: `reports` runs the consent check before it asks for readings.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db.models import F, Q

from assets.models import Meter, Reading
from certificates.models import Bundle
from consumers.models import Community, CommunityDevice, CommunityMember, Site, SiteMeter

HOUR = dt.timedelta(hours=1)
CHUNK = 10_000


def intervals(start: dt.datetime, end: dt.datetime, step: int) -> int:
    """How many intervals of `step` seconds [start, end) holds."""
    return int((end - start).total_seconds()) // step


def readings_into(
    targets: Iterable[tuple[int, np.ndarray, int]], start: dt.datetime, end: dt.datetime
) -> None:
    """Add the Wh of every reading of [start, end) to the interval it starts in, for each
    (meter id, 1-d array, step in seconds) target: one query for all the meters. A meter may
    feed several arrays (two communities, a member who left and joined again)."""
    by_meter: dict[int, list[tuple[np.ndarray, int]]] = defaultdict(list)
    for meter_id, array, step in targets:
        by_meter[meter_id].append((array, step))
    if not by_meter:
        return
    origin = int(start.timestamp())
    rows = Reading.objects.filter(
        meter_id__in=list(by_meter), start__gte=start, end__lte=end
    ).values_list("meter_id", "start", "wh")
    for meter_id, moment, wh in rows.iterator(chunk_size=CHUNK):
        offset = int(moment.timestamp()) - origin
        for array, step in by_meter[meter_id]:
            array[offset // step] += wh


# -- sites (hourly matching) -------------------------------------------------------------------


@dataclass
class SiteLoad:
    """A site, its consumption meters (import and EV charger), and per hour of the period
    their summed Wh and the hourly certificates of its grid area its household holds."""

    site: Site
    meters: list[SiteMeter]
    consumption: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    certificates: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def sites_load(*, site_ids: Sequence[int]) -> dict[int, SiteLoad]:
    """The sites that exist among `site_ids`, with household, grid area and consumption
    meters (pk order): two queries."""
    sites = Site.objects.filter(pk__in=list(site_ids)).select_related("household", "grid_area")
    loads = {site.pk: SiteLoad(site=site, meters=[]) for site in sites}
    if loads:
        links = SiteMeter.objects.filter(
            site_id__in=list(loads), role__in=[SiteMeter.Role.IMPORT, SiteMeter.Role.EV_CHARGER]
        ).order_by("pk")
        for link in links:
            loads[link.site_id].meters.append(link)
    return loads


def sites_fill_hourly(loads: Sequence[SiteLoad], start: dt.datetime, end: dt.datetime) -> None:
    """Fill each load's hourly consumption and certificates: two queries for all sites."""
    n = intervals(start, end, 3600)
    for load in loads:
        load.consumption = np.zeros(n, dtype=np.int64)
        load.certificates = np.zeros(n, dtype=np.int64)
    readings_into(
        ((link.meter_id, load.consumption, 3600) for load in loads for link in load.meters),
        start,
        end,
    )
    _certificates_into(loads, start, end)


def _certificates_into(loads: Sequence[SiteLoad], start: dt.datetime, end: dt.datetime) -> None:
    """Hourly certificates (periods of at most an hour) active, reserved or retired in the
    accounts of each site's household, from the site's grid area, per hour."""
    targets: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for load in loads:
        key = (load.site.household.organisation_id, load.site.grid_area_id)
        targets[key].append(load.certificates)
    if not targets:
        return
    bundles = (
        Bundle.objects.filter(
            account__organisation_id__in={org for org, _area in targets},
            status__in=[Bundle.Status.ACTIVE, Bundle.Status.RESERVED, Bundle.Status.RETIRED],
            issuance__grid_area_id__in={area for _org, area in targets},
            period_start__gte=start,
            period_end__lte=end,
        )
        .filter(period_end__lte=F("period_start") + HOUR)
        .values_list(
            "account__organisation_id",
            "issuance__grid_area_id",
            "period_start",
            "unit_start",
            "unit_end",
        )
    )
    origin = int(start.timestamp())
    for org, area, moment, unit_start, unit_end in bundles.iterator(chunk_size=CHUNK):
        hour = (int(moment.timestamp()) - origin) // 3600
        for array in targets.get((org, area), ()):
            array[hour] += unit_end - unit_start


# -- communities (allocation) ------------------------------------------------------------------


@dataclass
class CommunityLoad:
    """A community as the reader sees it over a period: its role ("admin" or "member"), the
    members of the period (pk order), the interval, and once filled the production per
    interval and the consumption per member and interval."""

    community: Community
    role: str
    members: list[CommunityMember] = field(default_factory=list)
    production_meter_ids: list[int] = field(default_factory=list)
    minutes: int = 15
    # consumption meter id -> its site link, for the operator's consent checks
    site_links: dict[int, SiteMeter] = field(default_factory=dict)
    production: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    consumption: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    @property
    def step(self) -> int:
        return self.minutes * 60


def communities_load(
    *,
    community_ids: Sequence[int],
    reader_org_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[int, CommunityLoad]:
    """The communities among `community_ids` the reader's organisations run ("admin") or
    belong to ("member", at any time), with what their allocation over [start, end) needs:
    at most seven queries whatever the number of communities and members."""
    orgs = list(reader_org_ids)
    communities = list(
        Community.objects.filter(pk__in=list(community_ids)).select_related("grid_area")
    )
    member_of = set()
    if orgs and communities:
        member_of = set(
            CommunityMember.objects.filter(
                community_id__in=[c.pk for c in communities], organisation_id__in=orgs
            ).values_list("community_id", flat=True)
        )
    loads: dict[int, CommunityLoad] = {}
    for community in communities:
        if community.organisation_id in orgs:
            loads[community.pk] = CommunityLoad(community=community, role="admin")
        elif community.pk in member_of:
            loads[community.pk] = CommunityLoad(community=community, role="member")
    if not loads:
        return loads
    members = (
        CommunityMember.objects.filter(community_id__in=list(loads), joined_at__lt=end)
        .filter(Q(left_at__isnull=True) | Q(left_at__gt=start))
        .select_related("site__household", "organisation")
        .order_by("pk")
    )
    for member in members:
        loads[member.community_id].members.append(member)
    devices: dict[int, int] = dict(
        CommunityDevice.objects.filter(community_id__in=list(loads)).values_list(
            "device_id", "community_id"
        )
    )
    minutes_of: dict[int, int] = {}
    for pk, device_id, minutes in Meter.objects.filter(
        device_id__in=list(devices), kind=Meter.Kind.GENERATION
    ).values_list("pk", "device_id", "device__interval_minutes"):
        loads[devices[device_id]].production_meter_ids.append(pk)
        minutes_of[pk] = minutes
    consumption_ids = {m.consumption_meter_id for load in loads.values() for m in load.members}
    minutes_of.update(
        Meter.objects.filter(pk__in=consumption_ids).values_list("pk", "device__interval_minutes")
    )
    for load in loads.values():
        meters = load.production_meter_ids + [m.consumption_meter_id for m in load.members]
        load.minutes = max([minutes_of[pk] for pk in meters if pk in minutes_of] or [15])
    admin_meters = {
        m.consumption_meter_id
        for load in loads.values()
        if load.role == "admin"
        for m in load.members
        if m.site_id is not None
    }
    if admin_meters:
        links = {
            link.meter_id: link for link in SiteMeter.objects.filter(meter_id__in=admin_meters)
        }
        for load in loads.values():
            load.site_links = links
    return loads


def communities_fill(loads: Sequence[CommunityLoad], start: dt.datetime, end: dt.datetime) -> None:
    """Fill each load's production and consumption per interval: one query for all."""
    targets: list[tuple[int, np.ndarray, int]] = []
    for load in loads:
        n = intervals(start, end, load.step)
        load.production = np.zeros(n, dtype=np.int64)
        load.consumption = np.zeros((len(load.members), n), dtype=np.int64)
        targets += [(pk, load.production, load.step) for pk in load.production_meter_ids]
        targets += [
            (member.consumption_meter_id, load.consumption[j], load.step)
            for j, member in enumerate(load.members)
        ]
    readings_into(targets, start, end)
