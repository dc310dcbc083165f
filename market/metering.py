"""What the parties of a slot metered (reads accepted readings; no writes).

A seller's production is what the generation and storage meters of its organisation's
devices read in the slot. A buyer's consumption is first asked of the
`market.site_consumption_lookups` hook: the consumers app answers for the households whose
confirmed sites have an import meter (the grid connection's consumption register, docs/
market.md "Delivery settlement"). For an organisation no lookup knows, it is what its
consumption meters read: any consumption meter on a device it registered. When the market
has a grid area, only devices (and sites) in that area count.

A reading that covers only part of the slot counts for that part, pro rata to time and
rounded down (an hourly meter in a 15-minute slot counts a quarter of its hour). A party
is complete when every meter it had installed over the slot has readings covering the
whole slot; a party with no such meter is not complete (`assets.selectors.meters_metered_wh`).

`SITE_CONSUMPTION_LOOKUPS` is defined while market/models.py loads (it imports this
module), before any app's `ready()`, so the consumers app, which comes before the market in
INSTALLED_APPS, registers into it by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from assets.models import Meter
from assets.selectors import meters_in_place, meters_metered_wh
from registry.hooks import Hook

PRODUCTION_KINDS = (Meter.Kind.GENERATION, Meter.Kind.STORAGE)
CONSUMPTION_KINDS = (Meter.Kind.CONSUMPTION,)

SITE_CONSUMPTION_LOOKUPS = Hook("market.site_consumption_lookups")
"""Each lookup takes keywords `organisation_ids`, `grid_area_id`, `start`, `end` and returns
{organisation id: Wh consumed at its sites in [start, end), None while incomplete} for the
organisations it knows; an organisation it leaves out is measured by the fallback rule."""


def metered_wh(
    *,
    organisation_ids: Iterable[int],
    production: bool,
    grid_area_id: int | None,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[int, int | None]:
    """Each organisation's metered Wh in [start, end): None when its readings are missing."""
    wanted = sorted(set(organisation_ids))
    result: dict[int, int | None] = {}
    if not production:
        for lookup in SITE_CONSUMPTION_LOOKUPS:
            rest = [org for org in wanted if org not in result]
            if not rest:
                break
            known = lookup(organisation_ids=rest, grid_area_id=grid_area_id, start=start, end=end)
            result.update({org: wh for org, wh in known.items() if org in rest})
        wanted = [org for org in wanted if org not in result]
    if not wanted:
        return result
    meters = Meter.objects.filter(
        device__organisation_id__in=wanted,
        kind__in=PRODUCTION_KINDS if production else CONSUMPTION_KINDS,
    )
    meters = meters_in_place(meters, start, end)
    if grid_area_id is not None:
        meters = meters.filter(device__grid_area_id=grid_area_id)
    owner_of = dict(meters.values_list("pk", "device__organisation_id"))
    result.update(meters_metered_wh(owner_of=owner_of, owners=wanted, start=start, end=end))
    return result
