"""Demo assets: the DE-LU grid area, a co-owned rooftop PV plant with a signing meter and a
few days of signed hourly readings, and a wind park with a backdated batch held for review.

Runs after accounts.demo; idempotent. The PV meter's private key is kept in .dev/ (not in
git) so that `manage.py simulate_meter --key-file` can keep feeding the demo meter.
"""

import base64
import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import nacl.signing
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Organisation, User
from assets import services
from assets.models import Device, GridArea

AREA_CODE = "10Y1001A1001A82H"
PV_NAME = "Lindenhof residents' rooftop PV"
PV_METER = "SRC-PV-0001"
WIND_NAME = "Nordfeld community wind park"
WIND_METER = "SRC-WT-0001"


def demo_key_path() -> Path:
    return Path(settings.BASE_DIR) / ".dev" / f"demo-meter-{PV_METER}.key"


def _meter_key(path: Path) -> nacl.signing.SigningKey:
    if path.is_file():
        return nacl.signing.SigningKey(base64.b64decode(path.read_text().strip()))
    key = nacl.signing.SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(base64.b64encode(bytes(key)).decode() + "\n")
    os.chmod(path, 0o600)
    return key


def _account(organisation: Organisation, kind: str) -> Account:
    return Account.objects.filter(organisation=organisation, kind=kind, status="open").first()


@transaction.atomic
def seed(stdout, *, key_path: Path | None = None) -> None:
    if Device.objects.filter(name=PV_NAME).exists():
        stdout.write("Demo assets exist already.")
        return
    admin = User.objects.filter(username="admin").first()
    producer = User.objects.filter(username="producer").first()
    coop = Organisation.objects.filter(legal_name="Sunny Rooftops Cooperative eG").first()
    buyer = Organisation.objects.filter(legal_name="GreenBuy Energy GmbH").first()
    if not (admin and producer and coop and buyer):
        stdout.write("Demo assets need the demo participants (accounts.demo) first; skipped.")
        return
    stdout.write("Creating demo assets:")
    area = GridArea.objects.filter(code=AREA_CODE).first() or services.grid_area_create(
        actor=admin,
        code=AREA_CODE,
        name="DE-LU bidding zone",
        country="DE",
        time_zone="Europe/Berlin",
        emission_factor_g_per_kwh=Decimal("380.000"),
        expiry_months=12,
    )
    today = timezone.now().date()

    pv = services.device_register(
        actor=producer,
        organisation_id=coop.pk,
        name=PV_NAME,
        grid_area_id=area.pk,
        technology_code="T010101",
        energy_source_code="F01040100",
        capacity_w=99_500,
        commissioning_date=dt.date(2021, 4, 1),
        latitude=Decimal("52.521918"),
        longitude=Decimal("13.413215"),
        support=Device.Support.PRODUCTION,
        interval_minutes=60,
        require_signed_readings=True,
        issuance_policy=Device.IssuancePolicy.AUTOMATIC_HOURLY,
        owners=[
            {
                "organisation_id": coop.pk,
                "account_id": _account(coop, "trading").pk,
                "share": "2/3",
            },
            {
                "organisation_id": buyer.pk,
                "account_id": _account(buyer, "trading").pk,
                "share": "1/3",
            },
        ],
    )
    key_path = key_path or demo_key_path()
    key = _meter_key(key_path)
    services.meter_register(
        actor=producer,
        device_id=pv.pk,
        serial=PV_METER,
        public_key=bytes(key.verify_key),
    )
    services.device_submit(actor=producer, device_id=pv.pk)
    services.device_approve(actor=admin, device_id=pv.pk, reason="Demo: documents checked.")
    services.device_activate(actor=producer, device_id=pv.pk)
    start = today - dt.timedelta(days=3)
    call_command(
        "simulate_meter",
        device=pv.pk,
        meter=PV_METER,
        start=start.isoformat(),
        days=4,
        key_file=str(key_path),
        direct=True,
        user="producer",
        stdout=stdout,
    )
    stdout.write(f"  {PV_NAME} (device {pv.pk}), meter {PV_METER}, key in {key_path}")

    wind = services.device_register(
        actor=producer,
        organisation_id=coop.pk,
        name=WIND_NAME,
        grid_area_id=area.pk,
        technology_code="T020001",
        energy_source_code="F01050100",
        capacity_w=3_600_000,
        commissioning_date=dt.date(2019, 9, 15),
        latitude=Decimal("54.474000"),
        longitude=Decimal("9.050000"),
        support=Device.Support.INVESTMENT,
        interval_minutes=60,
        owners=[
            {"organisation_id": coop.pk, "account_id": _account(coop, "trading").pk, "share": "1"}
        ],
    )
    services.meter_register(actor=producer, device_id=wind.pk, serial=WIND_METER)
    services.device_submit(actor=producer, device_id=wind.pk)
    services.device_approve(actor=admin, device_id=wind.pk)
    services.device_activate(actor=producer, device_id=wind.pk)
    backdated = today - dt.timedelta(days=settings.READINGS_BACKDATE_LIMIT_DAYS + 8)
    call_command(
        "simulate_meter",
        device=wind.pk,
        meter=WIND_METER,
        start=backdated.isoformat(),
        days=1,
        direct=True,
        user="producer",
        stdout=stdout,
    )
    stdout.write(
        f"  {WIND_NAME} (device {wind.pk}): a backdated day of readings is held for review"
    )
