"""Factories and helpers for the assets suite (rows made here skip the services on purpose)."""

import base64
import datetime as dt
import itertools
from decimal import Decimal

import factory
import nacl.signing
from factory.django import DjangoModelFactory

from assets.canonical import counter_bytes, reading_bytes
from assets.models import Device, DeviceOwner, GridArea, Meter, MeterKey
from assets.validation import eic_check_character
from tests.factories import AccountFactory, OrganisationFactory

UTC = dt.UTC
_eic_numbers = itertools.count(1)


def new_eic() -> str:
    """A fresh, valid EIC area code."""
    while True:
        first15 = f"10YTEST{next(_eic_numbers):08d}"
        check = eic_check_character(first15)
        if check != "-":
            return first15 + check


class GridAreaFactory(DjangoModelFactory):
    class Meta:
        model = GridArea

    code = factory.LazyFunction(new_eic)
    name = factory.Sequence(lambda n: f"Test zone {n}")
    country = "DE"
    time_zone = "Europe/Berlin"
    emission_factor_g_per_kwh = Decimal("380.000")
    expiry_months = 12


class DeviceFactory(DjangoModelFactory):
    class Meta:
        model = Device
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Rooftop PV {n}")
    organisation = factory.SubFactory(OrganisationFactory)
    grid_area = factory.SubFactory(GridAreaFactory)
    technology_code = "T010101"
    energy_source_code = "F01040100"
    capacity_w = 100_000
    commissioning_date = dt.date(2020, 1, 1)
    latitude = Decimal("52.520008")
    longitude = Decimal("13.404954")
    interval_minutes = 60
    status = Device.Status.ACTIVE

    @factory.post_generation
    def sole_owner(self, create, extracted, **kwargs):
        if create and extracted is not False:
            account = AccountFactory(organisation=self.organisation)
            DeviceOwner.objects.create(
                device=self,
                organisation=self.organisation,
                account=account,
                share_numerator=1,
                share_denominator=1,
            )


class MeterFactory(DjangoModelFactory):
    class Meta:
        model = Meter

    serial = factory.Sequence(lambda n: f"MTR-{n:06d}")
    device = factory.SubFactory(DeviceFactory)
    kind = Meter.Kind.GENERATION


def signing_key(seed: int = 1) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes([seed]) * 32)


def public_key_b64(key: nacl.signing.SigningKey) -> str:
    return base64.b64encode(bytes(key.verify_key)).decode()


def add_key(
    meter: Meter, key: nacl.signing.SigningKey, valid_from=dt.datetime(2000, 1, 1, tzinfo=UTC)
) -> MeterKey:
    return MeterKey.objects.create(
        meter=meter, public_key=public_key_b64(key), valid_from=valid_from
    )


def sign(key: nacl.signing.SigningKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data).signature).decode()


def interval_row(meter, start: dt.datetime, wh: int, *, key=None, minutes: int = 60, **extra):
    """A JSON-style interval reading, signed when `key` is given."""
    serial = meter if isinstance(meter, str) else meter.serial
    end = start + dt.timedelta(minutes=minutes)
    row = {"meter": serial, "start": start.isoformat(), "end": end.isoformat(), "wh": wh}
    if key is not None:
        row["signature"] = sign(key, reading_bytes(serial, start, end, wh))
    row.update(extra)
    return row


def counter_row(meter, time: dt.datetime, counter_wh: int, *, key=None):
    serial = meter if isinstance(meter, str) else meter.serial
    row = {"meter": serial, "time": time.isoformat(), "counter_wh": counter_wh}
    if key is not None:
        row["signature"] = sign(key, counter_bytes(serial, time, counter_wh))
    return row


def hours_ago(hours: int, now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours)
