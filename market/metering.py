"""What the parties of a slot metered (reads the assets app's accepted readings; no writes).

A seller's production is what the generation and storage meters of its organisation's
devices read in the slot; a buyer's consumption what its consumption meters read (until
the consumers app offers a site's meter through a hook, a buyer's consumption meter is
any consumption meter on a device its organisation registered). When the market has a
grid area, only devices in that area count.

A reading that covers only part of the slot counts for that part, pro rata to time and
rounded down (an hourly meter in a 15-minute slot counts a quarter of its hour). A party
is complete when every meter it had installed over the slot has readings covering the
whole slot; a party with no such meter is not complete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Q

from assets.models import Meter, Reading

PRODUCTION_KINDS = (Meter.Kind.GENERATION, Meter.Kind.STORAGE)
CONSUMPTION_KINDS = (Meter.Kind.CONSUMPTION,)


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
    meters = Meter.objects.filter(
        device__organisation_id__in=wanted,
        kind__in=PRODUCTION_KINDS if production else CONSUMPTION_KINDS,
    ).filter(Q(installed_at__isnull=True) | Q(installed_at__lte=start))
    meters = meters.filter(Q(removed_at__isnull=True) | Q(removed_at__gte=end))
    if grid_area_id is not None:
        meters = meters.filter(device__grid_area_id=grid_area_id)
    owner_of = dict(meters.values_list("pk", "device__organisation_id"))
    covered = dict.fromkeys(owner_of, 0)
    wh = dict.fromkeys(owner_of, 0)
    readings = Reading.objects.filter(meter_id__in=owner_of, start__lt=end, end__gt=start)
    for meter_id, r_start, r_end, r_wh in readings.values_list("meter_id", "start", "end", "wh"):
        overlap = int((min(r_end, end) - max(r_start, start)).total_seconds())
        length = int((r_end - r_start).total_seconds())
        covered[meter_id] += overlap
        wh[meter_id] += r_wh * overlap // length
    seconds = int((end - start).total_seconds())
    result: dict[int, int | None] = {}
    for organisation_id in wanted:
        mine = [pk for pk, owner in owner_of.items() if owner == organisation_id]
        if not mine or any(covered[pk] < seconds for pk in mine):
            result[organisation_id] = None
        else:
            result[organisation_id] = sum(wh[pk] for pk in mine)
    return result
