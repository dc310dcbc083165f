"""A pending charging bill of the web world's household (a station of the producer's, the
household's card, one session billed while the household had no money)."""

import datetime as dt

from assets.models import Meter
from charging import services
from charging.models import Bill
from tests.certificates.factories import DeviceFactory, MeterFactory
from tests.charging.factories import DAY, TARIFF, tx_event


def household_bill(world, *, tx: str = "WEB-1", hour: int = 2) -> Bill:
    producer = world.users["producer"]
    organisation = world.device.organisation
    if not hasattr(world, "charging_station"):
        device = DeviceFactory(organisation=organisation, name="Car park charger")
        meter = MeterFactory(device=device, kind=Meter.Kind.CONSUMPTION)
        tariff = services.tariff_create(
            actor=producer, organisation_id=organisation.pk, currency="EUR", elements=TARIFF
        )
        world.charging_station = services.station_register(
            actor=producer,
            device_id=device.pk,
            meter_serial=meter.serial,
            evse_id=f"DE*GPR*E{device.pk}",
            tariff_id=tariff.pk,
        )
        services.driver_token_register(
            actor=world.household.person,
            organisation_id=world.household.organisation_id,
            id_token="HOME-CARD",
            type="ISO14443",
        )
    start = DAY + dt.timedelta(hours=hour)
    session = None
    for i, (kind, minutes, wh) in enumerate((("Started", 0, 0), ("Ended", 60, 7_000))):
        session = services.transaction_event_record(
            actor=producer,
            station_id=world.charging_station.pk,
            message=tx_event(
                kind,
                i,
                start + dt.timedelta(minutes=minutes),
                wh,
                transaction_id=tx,
                id_token="HOME-CARD",
            ),
        )
    return Bill.objects.get(session=session)
