"""Computed reads: a community's allocation and a consumer's hourly (24/7) matching.

Both load readings and certificates into arrays (`consumers.report_data`: one query per kind
of row, whatever the number of sites, communities or members) and hand them to the pure
functions of `consumers.allocation`; the `*_read` functions answer for one site or
community, the plural ones for many in the same number of queries. Household data read by
anyone but the household passes `selectors.consent_check` first, like every other read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from accounts.models import Account, User
from assets.models import Reading
from consumers import allocation, errors, pricing, report_data
from consumers.intervals import membership, static_weights
from consumers.models import Site, SiteMeter
from consumers.selectors import (
    AccessRequest,
    check_period,
    consent_check_for_organisation,
    consent_checks,
)
from registry.errors import DomainError

HOUR = dt.timedelta(hours=1)


def _aligned(start: dt.datetime, end: dt.datetime, seconds: int) -> None:
    check_period(start, end)
    if int(start.timestamp()) % seconds or int(end.timestamp()) % seconds:
        raise errors.PeriodInvalid(f"start and end must be on the {seconds // 60}-minute grid.")


def _one(results: dict[int, Any], pk: int) -> dict[str, Any]:
    """The report for `pk` from a bulk read, or its refusal raised."""
    result = results[pk]
    if isinstance(result, DomainError):
        raise result
    return result


# -- community allocation ----------------------------------------------------------------------


def community_allocation_read(
    *, user: User | None, community_id: int, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Each interval's shared production split by the community's key, per member.

    The operator's members see every member (a household member only with its consent for
    the community purpose); a member sees the totals and its own row.
    """
    results = community_allocations_read(
        user=user, community_ids=[community_id], start=start, end=end
    )
    return _one(results, community_id)


def community_allocations_read(
    *, user: User | None, community_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> dict[int, dict[str, Any] | DomainError]:
    """`community_allocation_read` for many communities, each id mapped to its report or
    to the refusal the single read would raise, in a fixed number of queries whatever the
    number of communities and members (consumers.report_data; the operator's consent checks
    for all members at once, selectors.consent_checks)."""
    reader_orgs = _user_orgs(user)
    loads = report_data.communities_load(
        community_ids=community_ids, reader_org_ids=sorted(reader_orgs), start=start, end=end
    )
    out: dict[int, dict[str, Any] | DomainError] = {}
    checked: list[report_data.CommunityLoad] = []
    for community_id in dict.fromkeys(community_ids):
        load = loads.get(community_id)
        try:
            if load is None:
                raise errors.CommunityNotFound(community_id=community_id)
            _aligned(start, end, load.step)
        except DomainError as error:
            out[community_id] = error
        else:
            checked.append(load)
    # The operator reads each household member's consumption under a community grant.
    groups = [_member_reads(load, start, end) if load.role == "admin" else [] for load in checked]
    refusals = consent_checks(user=user, groups=groups)
    ready = []
    for load, refusal in zip(checked, refusals, strict=True):
        if refusal is not None:
            out[load.community.pk] = refusal
        else:
            ready.append(load)
    report_data.communities_fill(ready, start, end)
    prices = _cleared_prices(ready, start, end)
    for load in ready:
        try:
            out[load.community.pk] = _community_allocation(
                load, reader_orgs, start, end, prices[load.community.pk]
            )
        except DomainError as error:
            out[load.community.pk] = error
    return {pk: out[pk] for pk in community_ids}


def _cleared_prices(
    loads: list[report_data.CommunityLoad], start: dt.datetime, end: dt.datetime
) -> dict[int, list[int | None]]:
    """Each community's cleared market price per interval (consumers.pricing): one lookup
    for all of them, whatever their number and grid areas."""
    keys = list(
        dict.fromkeys((c.community.grid_area_id, c.community.currency, c.step) for c in loads)
    )
    answers = pricing.cleared_prices_many(
        [
            {
                "grid_area_id": area,
                "currency": currency,
                "start": start,
                "step_seconds": step,
                "n": report_data.intervals(start, end, step),
            }
            for area, currency, step in keys
        ]
    )
    by_key = dict(zip(keys, answers, strict=True))
    return {
        c.community.pk: by_key[(c.community.grid_area_id, c.community.currency, c.step)]
        for c in loads
    }


def _member_reads(
    load: report_data.CommunityLoad, start: dt.datetime, end: dt.datetime
) -> list[tuple[Site, AccessRequest]]:
    """The consent checks of the operator's read: each household member's meter, in turn."""
    reads = []
    for member in load.members:
        if member.site is None:
            continue
        link = load.site_links.get(member.consumption_meter_id)
        request = AccessRequest(
            "community_allocation",
            [link] if link else [],
            start,
            end,
            "hourly",
            as_organisation_id=load.community.organisation_id,
            community=True,
        )
        reads.append((member.site, request))
    return reads


def _community_allocation(
    load: report_data.CommunityLoad,
    reader_orgs: set[int],
    start: dt.datetime,
    end: dt.datetime,
    cleared_prices: list[int | None],
) -> dict[str, Any]:
    community, role, members = load.community, load.role, load.members
    minutes, step = load.minutes, load.step
    n = report_data.intervals(start, end, step)
    production = load.production
    consumption = load.consumption.T
    active = membership(members, start, step, n)
    consumption = np.where(active, consumption, 0)  # outside membership: not the community's
    result = allocation.allocate(
        production=production,
        consumption=consumption,
        active=active,
        key=community.key_kind,
        static_weights=static_weights(community, members),
    )
    price = community.internal_price_minor_per_kwh
    amounts = allocation.money_minor(result.allocated, price) if members else result.allocated
    market_price, cleared = pricing.prices_with_fallback(cleared_prices, price)
    import_cost = allocation.money_at_prices(result.imported, market_price)
    export_earnings = allocation.money_at_prices(result.exported, market_price)
    allocated_value = allocation.money_at_prices(result.allocated, market_price)
    own_orgs = {m.organisation_id for m in members} if role == "admin" else reader_orgs
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
    return _one(hourly_matchings_read(user=user, site_ids=[site_id], start=start, end=end), site_id)


def hourly_matchings_read(
    *, user: User | None, site_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> dict[int, dict[str, Any] | DomainError]:
    """`hourly_matching_read` for many sites, each id mapped to its report or to the refusal
    the single read would raise, in a fixed number of queries whatever the number of sites
    (consumers.report_data; the consent checks of sites not the reader's own all at once,
    selectors.consent_checks)."""
    _aligned(start, end, 3600)
    loads = report_data.sites_load(site_ids=site_ids)
    out: dict[int, dict[str, Any] | DomainError] = {}
    found = []
    for site_id in dict.fromkeys(site_ids):
        if site_id in loads:
            found.append(loads[site_id])
        else:
            out[site_id] = errors.SiteNotFound(site_id=site_id)
    refusals = consent_checks(
        user=user,
        groups=[
            [(load.site, AccessRequest("hourly_matching", load.meters, start, end, "hourly"))]
            for load in found
        ],
    )
    ready = []
    for load, refusal in zip(found, refusals, strict=True):
        if refusal is not None:
            out[load.site.pk] = refusal
        else:
            ready.append(load)
    report_data.sites_fill_hourly(ready, start, end)
    for load in ready:
        out[load.site.pk] = _hourly_matching(load, start, end)
    return {pk: out[pk] for pk in site_ids}


def _hourly_matching(
    load: report_data.SiteLoad, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    site, consumption, certificates = load.site, load.consumption, load.certificates
    n = len(consumption)
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
