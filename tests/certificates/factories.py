"""Factories for the certificate suites: grid areas, approved devices with owners, readings.

Rows made here skip the assets services on purpose (they set up state); the certificate
services under test are called explicitly.
"""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import factory
from django.conf import settings
from factory.django import DjangoModelFactory

from accounts.models import Account, Membership
from assets.models import Device, DeviceOwner, GridArea, Meter, Reading, ReadingBatch
from assets.storage import generation_days_add
from tests.assets import factories as assets_factories
from tests.factories import AccountFactory, OrganisationFactory, member_of

UTC = dt.UTC
# A recent whole UTC day: over (so it can be issued) and far from expiry.
DAY = dt.datetime.combine(
    dt.datetime.now(UTC).date() - dt.timedelta(days=7), dt.time(0), tzinfo=UTC
)


class GridAreaFactory(DjangoModelFactory):
    class Meta:
        model = GridArea
        django_get_or_create = ("code",)

    code = "10Y1001A1001A82H"
    name = "DE-LU"
    country = "DE"
    time_zone = "Europe/Berlin"
    emission_factor_g_per_kwh = Decimal("380.000")
    expiry_months = 12


class DeviceFactory(DjangoModelFactory):
    class Meta:
        model = Device

    name = factory.Sequence(lambda n: f"Rooftop PV {n}")
    organisation = factory.SubFactory(OrganisationFactory)
    grid_area = factory.SubFactory(GridAreaFactory)
    technology_code = "T020001"
    energy_source_code = "F01010100"
    capacity_w = 100_000
    commissioning_date = dt.date(2020, 1, 1)
    latitude = Decimal("52.520000")
    longitude = Decimal("13.405000")
    support = Device.Support.NONE
    interval_minutes = 60
    issuance_policy = Device.IssuancePolicy.MANUAL
    issuance_requires_approval = True
    status = Device.Status.APPROVED


class MeterFactory(assets_factories.MeterFactory):
    """The assets suite's meter on this suite's device: one serial sequence for both, so a
    test (the permission matrix) that uses the two factories gets distinct serials."""

    device = factory.SubFactory(DeviceFactory)


def device_with_owners(
    shares: list[Fraction] | None = None, *, producer=None, **device_kwargs
) -> tuple[Device, list[Account]]:
    """An approved device owned by one organisation per share, each with a trading account.

    The first owner is the registrant (`producer`, or a new organisation).
    """
    shares = shares or [Fraction(1)]
    producer = producer or OrganisationFactory()
    device = DeviceFactory(organisation=producer, **device_kwargs)
    accounts = []
    for i, share in enumerate(shares):
        organisation = producer if i == 0 else OrganisationFactory()
        account = AccountFactory(organisation=organisation)
        DeviceOwner.objects.create(
            device=device,
            organisation=organisation,
            account=account,
            share_numerator=share.numerator,
            share_denominator=share.denominator,
        )
        accounts.append(account)
    return device, accounts


def add_readings(
    device: Device,
    *,
    start: dt.datetime = DAY,
    hours: int = 24,
    wh=lambda i: 1000 + 10 * i,
    minutes: int = 60,
    meter: Meter | None = None,
) -> list[Reading]:
    """Accepted readings of `minutes` each, covering `hours` hours from `start`."""
    meter = meter or Meter.objects.filter(device=device).first() or MeterFactory(device=device)
    count = hours * 60 // minutes
    batch = ReadingBatch.objects.create(
        organisation=device.organisation,
        device=device,
        meter=meter,
        status=ReadingBatch.Status.ACCEPTED,
        size=count,
        merkle_root="0" * 64,
    )
    step = dt.timedelta(minutes=minutes)
    rows = [
        Reading(
            device=device,
            meter=meter,
            batch=batch,
            start=start + i * step,
            end=start + (i + 1) * step,
            wh=wh(i),
            index_in_batch=i,
        )
        for i in range(count)
    ]
    created = Reading.objects.bulk_create(rows)
    days: dict = {}
    for row in rows:  # the per-day sums the accepting service keeps (assets.storage)
        key = (device.pk, row.start.astimezone(dt.UTC).date())
        days[key] = days.get(key, 0) + row.wh
    generation_days_add(days)
    return created


def holder(account: Account, role: str = Membership.Role.OPERATOR):
    """A user who acts for the account's organisation."""
    return member_of(account.organisation, role=role)


PARTNER = "registry-b.example/gridproof"


def export_event_data(account_number: str, **certificate) -> dict:
    """The data of a partner's certificate.exported event naming us as destination."""
    cert = {
        "origin": PARTNER,
        "device_id": 77,
        "device_name": "Windpark Nord",
        "unit_start": 1000,
        "unit_end": 1500,
        "period_start": "2026-11-01T10:00:00.000000Z",
        "period_end": "2026-11-01T11:00:00.000000Z",
        "expires_on": "2027-11-01",
        "issued_at": "2026-11-02T00:00:00.000000Z",
        "granularity": "hour",
        "attributes": {
            "technology_code": "T030001",
            "energy_source_code": "F01050100",
            "grid_area": "10YDK-1--------W",
            "country": "DK",
            "capacity_w": 3_000_000,
            "commissioning_date": "2019-05-01",
            "support": "",
            "emission_factor_g_per_kwh": "0.000",
            "is_storage": False,
            "expiry_months": 12,
        },
    } | certificate
    return {
        "export_id": 5,
        "destination": settings.REGISTRY_ORIGIN,
        "destination_account": account_number,
        "volume_wh": cert["unit_end"] - cert["unit_start"]
        if isinstance(cert["unit_end"], int) and isinstance(cert["unit_start"], int)
        else 0,
        "certificate": cert,
    }
