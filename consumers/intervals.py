"""A community's period as arrays: shared production, members' consumption, membership,
how complete the readings are, and the allocation by the community's key.

The allocation report (`reports.community_allocation_read`) and the distribution of
certificates (`services.distribution`) read the same numbers from here, so a member's
certificates follow exactly the Wh the report shows. No consent check here: the callers
check before they read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db.models import Q

from assets.models import Meter, Reading
from consumers import allocation, errors
from consumers.models import Community, CommunityMember


@dataclass
class CommunityIntervals:
    """[start, start + n * step) in intervals of the community's metering resolution."""

    members: list[CommunityMember]
    start: dt.datetime
    step: int  # seconds
    n: int
    production: np.ndarray  # (T,) Wh of every shared device
    device_production: dict[int, np.ndarray]  # device id -> (T,) Wh
    consumption: np.ndarray  # (T, M) Wh, zero outside membership
    active: np.ndarray  # (T, M) the member belongs to the community for the whole interval
    complete: np.ndarray  # (T,) every production meter and every active member's meter read
    result: allocation.Allocation


def community_period_members(
    community: Community, start: dt.datetime, end: dt.datetime
) -> list[CommunityMember]:
    """Members for any part of [start, end), in primary-key order."""
    return list(
        CommunityMember.objects.filter(community=community, joined_at__lt=end)
        .filter(Q(left_at__isnull=True) | Q(left_at__gt=start))
        .select_related("site__household", "organisation")
        .order_by("pk")
    )


def _production_meters(community: Community) -> list[tuple[int, int, int]]:
    """(meter id, device id, interval minutes) of the shared devices' generation meters."""
    device_ids = list(community.devices.values_list("device_id", flat=True))
    return list(
        Meter.objects.filter(device_id__in=device_ids, kind=Meter.Kind.GENERATION)
        .order_by("pk")
        .values_list("pk", "device_id", "device__interval_minutes")
    )


def community_interval_minutes(community: Community, members: list[CommunityMember]) -> int:
    """The coarsest metering interval among the shared devices and the members' meters."""
    minutes = [m for _pk, _d, m in _production_meters(community)]
    minutes += list(
        Meter.objects.filter(pk__in=[m.consumption_meter_id for m in members]).values_list(
            "device__interval_minutes", flat=True
        )
    )
    return max(minutes or [15])


def _load(
    meter_ids: list[int], start: dt.datetime, end: dt.datetime, step: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Wh and seconds read per interval of [start, end), one row per meter id."""
    wh = np.zeros((len(meter_ids), n), dtype=np.int64)
    seconds = np.zeros((len(meter_ids), n), dtype=np.int64)
    index = {pk: i for i, pk in enumerate(meter_ids)}
    origin = int(start.timestamp())
    rows = Reading.objects.filter(
        meter_id__in=meter_ids, start__gte=start, end__lte=end
    ).values_list("meter_id", "start", "end", "wh")
    for meter_id, r_start, r_end, value in rows.iterator(chunk_size=10000):
        slot = (int(r_start.timestamp()) - origin) // step
        wh[index[meter_id], slot] += value
        seconds[index[meter_id], slot] += int((r_end - r_start).total_seconds())
    return wh, seconds


def static_weights(community: Community, members: list[CommunityMember]) -> np.ndarray | None:
    """The static key's shares as integer weights over a common denominator (None: dynamic)."""
    if community.key_kind != Community.KeyKind.STATIC:
        return None
    if any(m.share_denominator is None for m in members):
        raise errors.AllocationKeyInvalid("A member of the period has no static share yet.")
    common = int(np.lcm.reduce([m.share_denominator for m in members] or [1]))
    return np.array(
        [m.share_numerator * (common // m.share_denominator) for m in members], dtype=np.int64
    )


def membership(members: list[CommunityMember], start: dt.datetime, step: int, n: int) -> np.ndarray:
    """(T, M): member j belongs to the community for the whole of interval t."""
    starts = int(start.timestamp()) + step * np.arange(n)
    active = np.zeros((n, len(members)), dtype=bool)
    for j, member in enumerate(members):
        left = member.left_at.timestamp() if member.left_at else float("inf")
        active[:, j] = (starts >= member.joined_at.timestamp()) & (starts + step <= left)
    return active


def community_intervals(
    *,
    community: Community,
    members: list[CommunityMember],
    start: dt.datetime,
    end: dt.datetime,
    minutes: int,
) -> CommunityIntervals:
    """Load the period's readings and allocate each interval by the community's key."""
    step = minutes * 60
    n = int((end - start).total_seconds()) // step
    production_meters = _production_meters(community)
    p_wh, p_seconds = _load([pk for pk, _d, _m in production_meters], start, end, step, n)
    device_production: dict[int, np.ndarray] = {}
    for row, (_pk, device_id, _m) in enumerate(production_meters):
        device_production.setdefault(device_id, np.zeros(n, dtype=np.int64))
        device_production[device_id] += p_wh[row]
    c_wh, c_seconds = _load([m.consumption_meter_id for m in members], start, end, step, n)
    active = membership(members, start, step, n)
    consumption = np.where(active, c_wh.T, 0)  # outside membership: not the community's
    member_read = step == c_seconds.T
    complete = (p_seconds == step).all(axis=0) & (member_read | ~active).all(axis=1)
    production = p_wh.sum(axis=0)
    result = allocation.allocate(
        production=production,
        consumption=consumption,
        active=active,
        key=community.key_kind,
        static_weights=static_weights(community, members),
    )
    return CommunityIntervals(
        members=members,
        start=start,
        step=step,
        n=n,
        production=production,
        device_production=device_production,
        consumption=consumption,
        active=active,
        complete=complete,
        result=result,
    )
