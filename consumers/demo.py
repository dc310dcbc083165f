"""Demo household: a login `household` with a confirmed site in the demo grid area, its
import and rooftop-PV meters with three days of hourly readings, a consent for the demo
buyer (as its supplier) and one read under it, so the web app's household pages have
something to show.

Runs after accounts.demo and assets.demo; idempotent. Everything goes through the services.
"""

import datetime as dt
import math
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts import demo as accounts_demo
from accounts.models import Account, Organisation, User
from assets import services as asset_services
from assets.demo import AREA_CODE
from assets.models import GridArea
from consumers import selectors, services
from consumers.metering_point import metering_point_with_check

USERNAME = "household"
SITE_NAME = "Lindenstraße 5"
DAYS = 3


def _consumption_wh(hour: int) -> int:
    """A household's day: a morning and an evening peak."""
    return 250 + (450 if 6 <= hour < 9 else 0) + (700 if 17 <= hour < 22 else 0)


def _production_wh(hour: int) -> int:
    """A 6 kW rooftop on a clear day (zero at night)."""
    return max(0, round(4200 * math.sin(math.pi * (hour - 6) / 14))) if 6 <= hour <= 20 else 0


@transaction.atomic
def seed(stdout) -> None:
    if User.objects.filter(username=USERNAME).exists():
        stdout.write("The demo household exists already.")
        return
    admin = User.objects.filter(username="admin").first()
    buyer = User.objects.filter(username="buyer").first()
    supplier = Organisation.objects.filter(legal_name="GreenBuy Energy GmbH").first()
    area = GridArea.objects.filter(code=AREA_CODE).first()
    if not (admin and buyer and supplier and area):
        stdout.write("The demo household needs the demo participants and grid area; skipped.")
        return
    stdout.write("Creating the demo household:")
    person = accounts_demo.new_user(USERNAME, stdout)
    household = services.household_register(
        actor=person,
        name="Sam Sonnenschein",
        street=SITE_NAME,
        postcode="10115",
        city="Berlin",
        country="DE",
    )
    site = services.site_register(
        actor=person,
        name=SITE_NAME,
        metering_point_id=metering_point_with_check(f"87152000{household.pk:09d}"),
        grid_area_id=area.pk,
        street=SITE_NAME,
        postcode="10115",
        city="Berlin",
    )
    services.site_confirm(actor=admin, site_id=site.pk, reason="Demo: grid operator confirmed.")
    account = Account.objects.get(organisation_id=household.organisation_id, kind="trading")
    device = asset_services.device_register(
        actor=person,
        organisation_id=household.organisation_id,
        name="Sam's rooftop PV",
        grid_area_id=area.pk,
        technology_code="T010101",
        energy_source_code="F01040100",
        capacity_w=6_000,
        commissioning_date=dt.date(2023, 5, 1),
        latitude=Decimal("52.530000"),
        longitude=Decimal("13.400000"),
        owners=[
            {"organisation_id": household.organisation_id, "account_id": account.pk, "share": "1"}
        ],
    )
    links = {}
    for role, kind, serial in (
        ("import", "consumption", f"HOME-{household.pk}-IMPORT"),
        ("production", "generation", f"HOME-{household.pk}-PV"),
    ):
        meter = asset_services.meter_register(
            actor=person, device_id=device.pk, serial=serial, kind=kind
        )
        links[role] = services.site_meter_link(
            actor=person, site_id=site.pk, meter_id=meter.pk, role=role
        )
    asset_services.device_submit(actor=person, device_id=device.pk)
    asset_services.device_approve(actor=admin, device_id=device.pk, reason="Demo: checked.")
    asset_services.device_activate(actor=person, device_id=device.pk)
    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=DAYS)
    rows = []
    for i in range(DAYS * 24):
        at = start + dt.timedelta(hours=i)
        for role, wh in (
            ("import", _consumption_wh(at.hour)),
            ("production", _production_wh(at.hour)),
        ):
            rows.append(
                {
                    "meter": links[role].meter.serial,
                    "start": at.isoformat(),
                    "end": (at + dt.timedelta(hours=1)).isoformat(),
                    "wh": wh,
                }
            )
    result = services.site_readings_submit(
        actor=person, site_id=site.pk, rows=rows, accept_valid=True
    )
    consent = services.consent_grant(
        actor=person,
        site_id=site.pk,
        grantee_id=supplier.pk,
        purpose="supply",
        site_meter_ids=[links["import"].pk],
        resolution="hourly",
        valid_to=end + dt.timedelta(days=365),
    )
    # The supplier reads once, so the access log has an entry.
    selectors.site_readings_read(
        user=buyer,
        site_id=site.pk,
        start=start,
        end=end,
        resolution="hourly",
        site_meter_ids=[links["import"].pk],
    )
    stdout.write(
        f"  {SITE_NAME} (site {site.pk}, metering point {site.metering_point_id}): "
        f"{result.stored} readings ({result.status}); consent {consent.pk} for {supplier}"
    )
