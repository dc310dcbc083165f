"""A household buyer's consumption in an energy slot, for the market's delivery settlement
and its trading agents (registered in apps.py on the market's
`market.site_consumption_lookups` hook; the market and this app do not import each other).

The consumption of a household in a slot is what the **import** meters of its confirmed
sites read (in the market's grid area when it has one), by the assets app's one rule
(`assets.selectors.meters_metered_wh`: pro rata to time, None until every import meter in
place over the slot has readings covering it). A site measured by a net (bidirectional)
meter has its two registers linked as `import` and `export`: the buyer's consumption is the
import register alone, what the site drew from the grid, never import minus export. The
market delivers over the grid: energy the site's own panels or battery supplied behind the
meter never crossed it, and the site's export is production (settled on the seller side
when the household sells), so netting it off would count the same Wh on both sides. The
behind-the-meter roles (`production`, `storage`, `ev_charger`) are inside the import
register already and are not added.

Consent: these are the household's own sites, read to settle the household's own trades,
as a standing retirement reads the sites of the household that holds the account
(`reports.account_hourly_consumption` without a metering point): no grant is needed and no
access record is left. No other organisation's consumption is read here: a supplier's or
an operator's buying for a household is measured by its own meters.

An organisation without such a site is left out of the answer, so the market measures it
by its fallback rule (its devices' consumption meters).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from assets.models import Meter
from assets.selectors import meters_in_place, meters_metered_wh
from consumers.models import Site, SiteMeter


def households_consumed_wh(
    *,
    organisation_ids: Iterable[int],
    grid_area_id: int | None,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[int, int | None]:
    """{household organisation: Wh its sites' import meters read in [start, end), None
    while incomplete} for the given organisations that have a confirmed site with an
    import meter (in the grid area, when given); the others are not in the answer."""
    links = SiteMeter.objects.filter(
        role=SiteMeter.Role.IMPORT,
        site__status=Site.Status.CONFIRMED,
        site__household__organisation_id__in=list(organisation_ids),
    )
    if grid_area_id is not None:
        links = links.filter(site__grid_area_id=grid_area_id)
    owner_by_meter = dict(links.values_list("meter_id", "site__household__organisation_id"))
    if not owner_by_meter:
        return {}
    in_place = meters_in_place(Meter.objects.filter(pk__in=owner_by_meter), start, end)
    owner_of = {pk: owner_by_meter[pk] for pk in in_place.values_list("pk", flat=True)}
    known = sorted(set(owner_by_meter.values()))
    return meters_metered_wh(owner_of=owner_of, owners=known, start=start, end=end)
