"""A community battery and a rooftop plant for the storage balancing suites.

The plant's certificates land in the community's account (the charge account); the
battery (same organisation, or another one: `supplier`) has a charge meter (`consumption`)
and a discharge meter (`storage`) with a day of hourly readings each.
"""

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

from accounts.models import Membership
from assets.models import Meter
from certificates import services as certificates
from contracts import services
from contracts.kinds.storage import STORAGE_BALANCING
from tests.certificates.factories import (
    DAY,
    MeterFactory,
    add_readings,
    device_with_owners,
    holder,
)
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user

START = DAY
END = DAY + dt.timedelta(days=365)
SOLAR = {10: 5_000, 11: 5_000, 12: 5_000, 13: 5_000}  # Wh produced per hour
CHARGE = {10: 4_000, 11: 4_000, 12: 4_000, 13: 4_000}  # Wh into the battery
DISCHARGE = {18: 3_000, 19: 3_000, 20: 3_000, 21: 3_000}  # Wh out of it


def make_world(*, supplier: bool = False, charge=CHARGE, discharge=DISCHARGE, solar=SOLAR):
    org = OrganisationFactory(legal_name="Sunny Street Energy Community")
    solar_device, (solar_account,) = device_with_owners([Fraction(1)], producer=org)
    add_readings(solar_device, hours=24, wh=lambda i: solar.get(i, 0))
    charge_account = solar_account
    if supplier:
        charge_account = AccountFactory(organisation=OrganisationFactory(legal_name="Supplier"))
    battery, (storage_account,) = device_with_owners(
        [Fraction(1)],
        producer=OrganisationFactory(legal_name="Battery Co") if supplier else org,
        name="Community battery",
        technology_code="T050000",
        energy_source_code="F05000000",
        is_storage=True,
        storage_capacity_wh=100_000,
        round_trip_efficiency=Decimal("0.9000"),
    )
    charge_meter = MeterFactory(device=battery, kind=Meter.Kind.CONSUMPTION)
    discharge_meter = MeterFactory(device=battery, kind=Meter.Kind.STORAGE)
    add_readings(battery, hours=24, wh=lambda i: charge.get(i, 0), meter=charge_meter)
    add_readings(battery, hours=24, wh=lambda i: discharge.get(i, 0), meter=discharge_meter)
    world = SimpleNamespace(
        org=org,
        solar=solar_device,
        solar_account=solar_account,
        charge_account=charge_account,
        battery=battery,
        storage_account=storage_account,
        charge_meter=charge_meter,
        discharge_meter=discharge_meter,
        operator=holder(storage_account, Membership.Role.ADMIN),
        supplier=holder(charge_account, Membership.Role.ADMIN),
        ib=issuing_body_user(),
    )
    return world


def issue_solar(world, hours: int = 24):
    return certificates.certificate_issue(
        actor=world.ib,
        device_id=world.solar.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=hours),
    )


def storage_terms(world, **overrides) -> dict:
    return {
        "device_id": world.battery.pk,
        "charge_account": world.charge_account.number,
        "storage_account": world.storage_account.number,
        "efficiency_ppm": 900_000,
        "capacity_wh": 50_000,
    } | overrides


def make_storage_contract(world, *, active: bool = True, **overrides):
    contract = services.contract_create(
        actor=world.operator,
        kind=STORAGE_BALANCING,
        terms=storage_terms(world, **overrides),
        start_at=START,
        end_at=END,
    )
    if active:
        services.contract_agree(actor=world.operator, contract_id=contract.pk)
        if world.supplier.pk != world.operator.pk and contract.status == "draft":
            contract.refresh_from_db()
            if contract.status == "draft":
                services.contract_agree(actor=world.supplier, contract_id=contract.pk)
        contract.refresh_from_db()
    return contract


def day_trigger(day=DAY) -> str:
    return f"day:{day.date().isoformat()}"
