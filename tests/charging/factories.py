"""A charging world: a charge point operator with a station, a driver with a token, a
tariff, and helpers that build OCPP TransactionEvent messages and signed OCMF records.

Rows the charging services do not own (organisations, devices, meters) come from the
shared factories; the charging rows are made through the charging services.
"""

import datetime as dt
import json
from types import SimpleNamespace

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from accounts.models import Membership
from assets.models import Meter
from charging import services
from tests.certificates.factories import DeviceFactory, MeterFactory
from tests.factories import OrganisationFactory, member_of

UTC = dt.UTC
# A recent whole UTC day, in the past (certificates of it can be issued and are not expired).
DAY = dt.datetime.combine(
    dt.datetime.now(UTC).date() - dt.timedelta(days=7), dt.time(0), tzinfo=UTC
)
TARIFF = [
    {"price_components": [{"type": "FLAT", "price": "0.50", "step_size": 1}]},
    {
        "price_components": [
            {"type": "ENERGY", "price": "0.30", "step_size": 1},
            {"type": "TIME", "price": "1.20", "step_size": 1},
        ]
    },
]


def ocmf_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.hex()


def charging_world(*, elements=None, currency: str = "EUR") -> SimpleNamespace:
    """A CPO (admin) with one station (OCMF key registered), a driver org with its token."""
    cpo = OrganisationFactory(legal_name="Charge Point Operator GmbH", country="DE")
    driver = OrganisationFactory(legal_name="Driver Fleet AG", country="DE")
    operator = member_of(cpo, Membership.Role.OPERATOR)
    driver_admin = member_of(driver, Membership.Role.ADMIN)
    device = DeviceFactory(organisation=cpo, name="Car park charger")
    meter = MeterFactory(device=device, kind=Meter.Kind.CONSUMPTION)
    tariff = services.tariff_create(
        actor=operator, organisation_id=cpo.pk, currency=currency, elements=elements or TARIFF
    )
    key, public = ocmf_key()
    station = services.station_register(
        actor=operator,
        device_id=device.pk,
        meter_serial=meter.serial,
        evse_id=f"DE*GPR*E{device.pk}",
        tariff_id=tariff.pk,
        ocmf_public_key=public,
    )
    token = services.driver_token_register(
        actor=driver_admin, organisation_id=driver.pk, id_token="04A1B2C3D4E5F6", type="ISO14443"
    )
    return SimpleNamespace(
        cpo=cpo,
        driver=driver,
        operator=operator,
        driver_admin=driver_admin,
        device=device,
        meter=meter,
        tariff=tariff,
        station=station,
        token=token,
        ocmf_private=key,
    )


def tx_event(
    event_type: str,
    seq_no: int,
    at: dt.datetime,
    wh: int | None,
    *,
    transaction_id: str = "TX-1",
    id_token: str = "04A1B2C3D4E5F6",
) -> dict:
    """An OCPP 2.0.1 TransactionEventRequest with one energy register value."""
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "StopAuthorized"}
    message = {
        "eventType": event_type,
        "timestamp": at.isoformat(),
        "triggerReason": trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id},
    }
    if event_type == "Started":
        message["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if wh is not None:
        message["meterValue"] = [
            {
                "timestamp": at.isoformat(),
                "sampledValue": [
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ]
    return message


def charge(world, *, start: dt.datetime, readings: list[tuple[int, int]], tx: str = "TX-1"):
    """Run a whole OCPP session: readings are (minutes after start, meter Wh)."""
    session = None
    for i, (minutes, wh) in enumerate(readings):
        kind = "Started" if i == 0 else "Ended" if i == len(readings) - 1 else "Updated"
        at = start + dt.timedelta(minutes=minutes)
        session = services.transaction_event_record(
            actor=world.operator,
            station_id=world.station.pk,
            message=tx_event(kind, i, at, wh, transaction_id=tx),
        )
    return session


def _ocmf_time(at: dt.datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S,000+0000 S")


def ocmf_record(
    key,
    *,
    begin: tuple[dt.datetime, str],
    end: tuple[dt.datetime, str],
    id_token: str = "04A1B2C3D4E5F6",
    sign: bool = True,
) -> str:
    """A signed OCMF record (ECDSA secp256r1 SHA-256) with a begin and end reading in kWh."""
    payload = {
        "FV": "1.0",
        "GI": "GridProof Test",
        "GS": "CP-1",
        "GV": "1.0",
        "PG": "T1",
        "MV": "Meter",
        "MS": "MS-1",
        "IS": True,
        "IL": "VERIFIED",
        "IT": "ISO14443",
        "ID": id_token,
        "RD": [
            {
                "TM": _ocmf_time(at),
                "TX": tx,
                "RV": value,
                "RI": "01-00:01.08.00",
                "RU": "kWh",
                "RT": "AC",
                "EF": "",
                "ST": "G",
            }
            for tx, (at, value) in (("B", begin), ("E", end))
        ],
    }
    text = json.dumps(payload, separators=(",", ":")).replace('"RV":"', '"RV":')
    text = text.replace('","RI"', ',"RI"')
    signature = key.sign(text.encode(), ec.ECDSA(hashes.SHA256())).hex() if sign else ""
    signed = {"SA": "ECDSA-secp256r1-SHA256", "SD": signature} if sign else {"SA": "x"}
    return f"OCMF|{text}|{json.dumps(signed)}"


def renewable_hours(world, *, hours: dict[int, int]):
    """A PV plant of the CPO in the station's grid area with certificates issued for the
    given hours of DAY ({hour: Wh}), held by the CPO's account (returned)."""
    from assets.models import DeviceOwner
    from certificates.services import certificate_issue
    from tests.certificates.factories import add_readings
    from tests.factories import AccountFactory, issuing_body_user

    account = AccountFactory(organisation=world.cpo)
    plant = DeviceFactory(organisation=world.cpo, grid_area=world.device.grid_area)
    DeviceOwner.objects.create(
        device=plant,
        organisation=world.cpo,
        account=account,
        share_numerator=1,
        share_denominator=1,
    )
    first, last = min(hours), max(hours)
    add_readings(
        plant,
        start=DAY + dt.timedelta(hours=first),
        hours=last - first + 1,
        wh=lambda i: hours.get(first + i, 0) or 1,
    )
    certificate_issue(
        actor=issuing_body_user(),
        device_id=plant.pk,
        period_start=DAY + dt.timedelta(hours=first),
        period_end=DAY + dt.timedelta(hours=last + 1),
    )
    return account
