"""Computed reads: a community's allocation and a consumer's hourly (24/7) matching.

Both load readings and certificates into arrays and hand them to the pure functions of
`consumers.allocation`. Household data read by anyone but the household passes
`selectors.consent_check` first, like every other read.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import F

from accounts.models import Account, User
from assets.models import Reading
from certificates.models import Bundle
from consumers import allocation, errors, pricing
from consumers.intervals import (
    community_interval_minutes,
    community_intervals,
    community_period_members,
)
from consumers.models import Community, Site, SiteMeter
from consumers.selectors import (
    AccessRequest,
    check_period,
    community_role,
    consent_check,
    consent_check_for_organisation,
    site_for_read,
)

HOUR = dt.timedelta(hours=1)


def _aligned(start: dt.datetime, end: dt.datetime, seconds: int) -> None:
    check_period(start, end)
    if int(start.timestamp()) % seconds or int(end.timestamp()) % seconds:
        raise errors.PeriodInvalid(f"start and end must be on the {seconds // 60}-minute grid.")


def _series(
    meter_ids: list[int], start: dt.datetime, end: dt.datetime, step: int, n: int
) -> np.ndarray:
    """Wh per interval of [start, end) for the meters, one row per meter id (summed)."""
    out = np.zeros((len(meter_ids), n), dtype=np.int64)
    index = {pk: i for i, pk in enumerate(meter_ids)}
    origin = int(start.timestamp())
    rows = Reading.objects.filter(
        meter_id__in=meter_ids, start__gte=start, end__lte=end
    ).values_list("meter_id", "start", "wh")
    for meter_id, moment, wh in rows.iterator(chunk_size=10000):
        out[index[meter_id], (int(moment.timestamp()) - origin) // step] += wh
    return out


# -- community allocation ----------------------------------------------------------------------


def community_allocation_read(
    *, user: User | None, community_id: int, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Each interval's shared production split by the community's key, per member.

    The operator's members see every member (a household member only with its consent for
    the community purpose); a member sees the totals and its own row.
    """
    community = Community.objects.select_related("grid_area").filter(pk=community_id).first()
    role = community_role(user=user, community=community) if community else None
    if role is None:
        raise errors.CommunityNotFound(community_id=community_id)
    members = community_period_members(community, start, end)
    minutes = community_interval_minutes(community, members)
    step = minutes * 60
    _aligned(start, end, step)
    if role == "admin":
        for member in members:
            if member.site is None:
                continue
            link = SiteMeter.objects.filter(meter_id=member.consumption_meter_id).first()
            consent_check(
                user=user,
                site=member.site,
                request=AccessRequest(
                    "community_allocation",
                    [link] if link else [],
                    start,
                    end,
                    "hourly",
                    as_organisation_id=community.organisation_id,
                    community=True,
                ),
            )
    period = community_intervals(
        community=community, members=members, start=start, end=end, minutes=minutes
    )
    n, production, consumption, result = (
        period.n,
        period.production,
        period.consumption,
        period.result,
    )
    price = community.internal_price_minor_per_kwh
    amounts = allocation.money_minor(result.allocated, price) if members else result.allocated
    market_price, cleared = pricing.prices_with_fallback(
        pricing.cleared_prices(
            grid_area_id=community.grid_area_id,
            currency=community.currency,
            start=start,
            step_seconds=step,
            n=n,
        ),
        price,
    )
    import_cost = allocation.money_at_prices(result.imported, market_price)
    export_earnings = allocation.money_at_prices(result.exported, market_price)
    allocated_value = allocation.money_at_prices(result.allocated, market_price)
    own_orgs = {m.organisation_id for m in members} if role == "admin" else _user_orgs(user)
    rows = []
    for j, member in enumerate(members):
        if member.organisation_id not in own_orgs:
            continue
        rows.append(
            {
                "member_id": member.pk,
                "organisation_id": member.organisation_id,
                "joined_at": member.joined_at,
                "left_at": member.left_at,
                "consumption_wh": int(consumption[:, j].sum()),
                "allocated_wh": int(result.allocated[:, j].sum()),
                "self_consumed_wh": int(result.allocated[:, j].sum()),
                "imported_wh": int(result.imported[:, j].sum()),
                "exported_wh": int(result.exported[:, j].sum()),
                "amount_minor": int(amounts[:, j].sum()),
                "market": {
                    "import_cost_minor": int(import_cost[j]),
                    "export_earnings_minor": int(export_earnings[j]),
                    "allocated_value_minor": int(allocated_value[j]),
                },
            }
        )
    return {
        "community_id": community.pk,
        "key_kind": community.key_kind,
        "interval_minutes": minutes,
        "currency": community.currency,
        "internal_price_minor_per_kwh": price,
        "market_prices": {
            "cleared_intervals": int(cleared.sum()),
            "fallback_intervals": int(n - cleared.sum()),
        },
        "production_wh": int(production.sum()),
        "allocated_wh": int(result.allocated.sum()),
        "exported_wh": int(result.community_exported.sum()),
        "members": rows,
        "intervals": [
            {
                "start": start + dt.timedelta(seconds=step * i),
                "production_wh": int(production[i]),
                "allocated_wh": int(result.allocated[i].sum()),
                "exported_wh": int(result.community_exported[i]),
                "market_price_minor_per_mwh": int(market_price[i]) if cleared[i] else None,
            }
            for i in range(n)
        ],
    }


def _user_orgs(user: User | None) -> set[int]:
    from consumers.selectors import _member_org_ids

    return set(_member_org_ids(user))


# -- hourly matching ---------------------------------------------------------------------------


def _grams(wh: np.ndarray, factor_g_per_kwh: Decimal) -> np.ndarray:
    """gCO2e of `wh` at a factor in g/kWh with three decimals, rounded half up."""
    milli = int((factor_g_per_kwh * 1000).to_integral_value())
    return (np.asarray(wh, dtype=np.int64) * milli + 500_000) // 1_000_000


def hourly_matching_read(
    *, user: User | None, site_id: int, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Consumption per hour against hourly certificates of the same grid area held or retired
    by the household's accounts; carbon-free energy score per hour, day and year (EnergyTag).
    """
    _aligned(start, end, 3600)
    site = site_for_read(site_id=site_id)
    meters = list(
        SiteMeter.objects.filter(
            site=site, role__in=[SiteMeter.Role.IMPORT, SiteMeter.Role.EV_CHARGER]
        ).order_by("pk")
    )
    consent_check(
        user=user, site=site, request=AccessRequest("hourly_matching", meters, start, end, "hourly")
    )
    n = int((end - start).total_seconds()) // 3600
    consumption = _series([m.meter_id for m in meters], start, end, 3600, n).sum(axis=0)
    certificates = _certificates_per_hour(site, start, end, n)
    matching = allocation.match_hourly(consumption, certificates)
    factor = site.grid_area.emission_factor_g_per_kwh
    location = _grams(consumption, factor)
    market = _grams(consumption - matching.matched, factor)
    hours = [start + HOUR * i for i in range(n)]
    days = np.array([h.date().toordinal() for h in hours], dtype=np.int64)
    years = np.array([h.year for h in hours], dtype=np.int64)

    def groups(labels: np.ndarray, name) -> list[dict[str, Any]]:
        if n == 0:
            return []
        keys = np.unique(labels)
        matched, consumed = matching.cfe(labels)
        return [
            {
                name: key,
                "consumption_wh": int(c),
                "matched_wh": int(m),
                "cfe_score": _score(m, c),
            }
            for key, m, c in zip(keys, matched, consumed, strict=True)
        ]

    total_matched, total_consumed = (int(x[0]) for x in matching.cfe())
    return {
        "site_id": site.pk,
        "grid_area": site.grid_area.code,
        "grid_emission_factor_g_per_kwh": str(factor),
        "method": "EnergyTag hourly: an hour's certificates match that hour's consumption only",
        "total": {
            "consumption_wh": total_consumed,
            "certificates_wh": int(certificates.sum()),
            "matched_wh": total_matched,
            "cfe_score": _score(total_matched, total_consumed),
            "location_based_g": int(location.sum()),
            "market_based_g": int(market.sum()),
            "avoided_g": int(location.sum() - market.sum()),
        },
        "years": groups(years, "year"),
        "days": [
            {**row, "day": dt.date.fromordinal(int(row["day"]))} for row in groups(days, "day")
        ],
        "hours": [
            {
                "hour": hours[i],
                "consumption_wh": int(consumption[i]),
                "certificates_wh": int(certificates[i]),
                "matched_wh": int(matching.matched[i]),
                "cfe_score": _score(matching.matched[i], consumption[i]),
                "location_based_g": int(location[i]),
                "market_based_g": int(market[i]),
            }
            for i in range(n)
        ],
    }


def _score(matched, consumed) -> str | None:
    """CFE score as a decimal string with 4 places; None for an hour without consumption."""
    if not consumed:
        return None
    return str((Decimal(int(matched)) / Decimal(int(consumed))).quantize(Decimal("0.0001")))


def _certificates_per_hour(site: Site, start: dt.datetime, end: dt.datetime, n: int) -> np.ndarray:
    accounts = Account.objects.filter(organisation_id=site.household.organisation_id)
    bundles = (
        Bundle.objects.filter(
            account__in=accounts,
            status__in=[Bundle.Status.ACTIVE, Bundle.Status.RESERVED, Bundle.Status.RETIRED],
            issuance__grid_area_id=site.grid_area_id,
            period_start__gte=start,
            period_end__lte=end,
        )
        .filter(period_end__lte=F("period_start") + HOUR)
        .values_list("period_start", "unit_start", "unit_end")
    )
    out = np.zeros(n, dtype=np.int64)
    origin = int(start.timestamp())
    for moment, unit_start, unit_end in bundles.iterator(chunk_size=10000):
        out[(int(moment.timestamp()) - origin) // 3600] += unit_end - unit_start
    return out


# -- metered consumption for contracts -----------------------------------------------------------

# The purpose a grant needs before another organisation's standing retirement may read a
# household's hourly consumption: retiring certificates for what a customer consumed is the
# supplier's disclosure of its supply.
RETIREMENT_PURPOSE = "supply"


def account_hourly_consumption(
    *,
    account_id: int,
    start: dt.datetime,
    end: dt.datetime,
    metering_point: str | None = None,
) -> dict[dt.datetime, int | None] | None:
    """The Wh the import meters of a household's confirmed sites consumed in each hour of
    [start, end), None for an hour whose readings do not cover it for every import meter;
    None altogether when this is not about a household (registered in apps.py on the
    contracts' `contracts.consumption_lookups` hook).

    Without `metering_point`: the sites of the household that holds the account (its own
    data, no consent). With one: that site; if it is not the account holder's own, the
    holder needs a grant in force for the `supply` purpose covering the site's import meters
    hourly (ConsentRequired otherwise), and the read leaves an access record.
    """
    organisation_id = (
        Account.objects.filter(pk=account_id).values_list("organisation_id", flat=True).first()
    )
    if organisation_id is None:
        return None
    sites = Site.objects.filter(status=Site.Status.CONFIRMED).select_related("household")
    if metering_point:
        sites = sites.filter(metering_point_id=metering_point)
    else:
        sites = sites.filter(household__organisation_id=organisation_id)
    sites = list(sites.order_by("pk"))
    links = list(
        SiteMeter.objects.filter(site__in=sites, role=SiteMeter.Role.IMPORT).order_by("pk")
    )
    if not links:
        return None
    for site in sites:
        site_links = [link for link in links if link.site_id == site.pk]
        if site_links:
            consent_check_for_organisation(
                organisation_id=organisation_id,
                site=site,
                request=AccessRequest(
                    "standing_retirement",
                    site_links,
                    start,
                    end,
                    "hourly",
                    purpose=RETIREMENT_PURPOSE,
                ),
            )
    meter_ids = [link.meter_id for link in links]
    covered: dict[tuple[int, dt.datetime], int] = {}
    wh_of: dict[dt.datetime, int] = {}
    rows = Reading.objects.filter(
        meter_id__in=meter_ids, start__gte=start, end__lte=end
    ).values_list("meter_id", "start", "end", "wh")
    for meter_id, r_start, r_end, wh in rows.iterator(chunk_size=10000):
        hour = r_start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        if r_end > hour + HOUR:  # a reading across hours says nothing of either hour
            continue
        key = (meter_id, hour)
        covered[key] = covered.get(key, 0) + int((r_end - r_start).total_seconds())
        wh_of[hour] = wh_of.get(hour, 0) + wh
    out: dict[dt.datetime, int | None] = {}
    hour = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        full = all(covered.get((pk, hour), 0) >= HOUR.total_seconds() for pk in meter_ids)
        out[hour] = wh_of.get(hour, 0) if full else None
        hour += HOUR
    return out
