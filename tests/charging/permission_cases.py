"""Permission matrix rows for the charging endpoints (see tests/registry/matrix.py).

The world: the producer organisation is the charge point operator (a station with a
tariff and an OCMF key), the other organisation is the driver (a registered card), with
two billed sessions at an hour without certificates: one with its receipt, one without.
"""

import datetime as dt

from accounts.models import Account
from assets.models import Meter
from charging import services
from tests.certificates.factories import DeviceFactory, MeterFactory
from tests.charging.factories import DAY, TARIFF, ocmf_key, ocmf_record, tx_event
from tests.factories import AccountFactory
from tests.registry.matrix import Case, expect

OPERATORS = {"producer_admin": 201, "producer_operator": 201}
PARTIES = {
    "anonymous": 401,
    "producer_admin": 200,
    "producer_operator": 200,
    "producer_viewer": 200,
    "other_admin": 200,
    "issuing_body": 200,
    "auditor": 200,
}
# Parties who see the bill but are not its payer (the driver, other_admin, has no money).
NOT_BILL_PAYER = {
    role: 403
    for role in (
        "producer_admin",
        "producer_operator",
        "producer_viewer",
        "issuing_body",
        "auditor",
    )
}
START = DAY + dt.timedelta(hours=3)  # no certificates of this hour in any world
NOT_OPERATOR = {
    role: "not_station_operator"
    for role in ("producer_viewer", "other_admin", "issuing_body", "auditor", "no_org")
}


def _session(world, operator, tx: str, hour: int):
    start = START + dt.timedelta(hours=hour)
    for i, (kind, minutes, wh) in enumerate((("Started", 0, 0), ("Ended", 30, 2000))):
        session = services.transaction_event_record(
            actor=operator,
            station_id=world.charging_station.pk,
            message=tx_event(
                kind,
                i,
                start + dt.timedelta(minutes=minutes),
                wh,
                transaction_id=tx,
                id_token="MATRIX-CARD",
            ),
        )
    return session


def setup_world(world) -> None:
    producer, other = world.orgs["producer"], world.orgs["other"]
    admin = world.users["producer_admin"]
    device = DeviceFactory(organisation=producer, name="Matrix charger")
    meter = MeterFactory(device=device, kind=Meter.Kind.CONSUMPTION)
    world.charging_tariff = services.tariff_create(
        actor=admin, organisation_id=producer.pk, currency="EUR", elements=TARIFF
    )
    world.ocmf_private, public = ocmf_key()
    world.charging_station = services.station_register(
        actor=admin,
        device_id=device.pk,
        meter_serial=meter.serial,
        evse_id="DE*GPR*EMATRIX",
        tariff_id=world.charging_tariff.pk,
        ocmf_public_key=public,
    )
    world.free_device = DeviceFactory(organisation=producer, name="Matrix charger 2")
    world.free_meter = MeterFactory(device=world.free_device, kind=Meter.Kind.CONSUMPTION)
    world.charging_token = services.driver_token_register(
        actor=world.users["other_admin"],
        organisation_id=other.pk,
        id_token="MATRIX-CARD",
        type="ISO14443",
    )
    world.charging_accounts = {
        producer.pk: AccountFactory(organisation=producer, kind=Account.Kind.TRADING),
        other.pk: AccountFactory(organisation=other, kind=Account.Kind.TRADING),
    }
    world.charging_session = _session(world, admin, "MATRIX-1", 0)
    matched = _session(world, admin, "MATRIX-2", 1)
    world.charging_receipt = services.session_match(
        actor=admin,
        session_id=matched.pk,
        account_id=world.charging_accounts[producer.pk].pk,
    )


def _account_for(world, role) -> dict:
    own = world.own_org[role]
    account = (
        world.charging_accounts.get(own.pk) or world.charging_accounts[world.orgs["producer"].pk]
    )
    return {"account": account.pk}


def _station(world) -> dict:
    return {"pk": world.charging_station.pk}


def _session_pk(world) -> dict:
    return {"pk": world.charging_session.pk}


CASES = [
    Case("GET", "/api/v1/charging/stations/", expect(200, anonymous=401)),
    Case("GET", "/api/v1/charging/stations/{pk}/", expect(200, anonymous=401), args=_station),
    Case(
        "POST",
        "/api/v1/charging/stations/",
        expect(403, anonymous=401, **OPERATORS),
        body=lambda w, role: {
            "device": w.free_device.pk,
            "meter_serial": w.free_meter.serial,
            "evse_id": "DE*GPR*EMATRIX2",
            "tariff": w.charging_tariff.pk,
        },
        codes=NOT_OPERATOR,
    ),
    Case(
        "POST",
        "/api/v1/charging/stations/{pk}/transaction-events/",
        expect(403, anonymous=401, producer_admin=200, producer_operator=200),
        args=_station,
        body=lambda w, role: tx_event(
            "Started", 0, START, 100, transaction_id=f"M-{role}", id_token="MATRIX-CARD"
        ),
        codes=NOT_OPERATOR,
    ),
    Case(
        "POST",
        "/api/v1/charging/stations/{pk}/ocmf/",
        expect(403, anonymous=401, **OPERATORS),
        args=_station,
        body=lambda w, role: {
            "ocmf": ocmf_record(
                w.ocmf_private,
                begin=(START, "1.0"),
                end=(START + dt.timedelta(minutes=20), "2.5"),
                id_token="MATRIX-CARD",
            )
        },
        codes=NOT_OPERATOR,
    ),
    Case("GET", "/api/v1/charging/tariffs/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/charging/tariffs/{pk}/",
        expect(200, anonymous=401),
        args=lambda w: {"pk": w.charging_tariff.pk},
    ),
    Case(
        "POST",
        "/api/v1/charging/tariffs/",
        expect(403, anonymous=401, other_admin=201, issuing_body=201, **OPERATORS),
        body=lambda w, role: {
            "organisation": w.own_org[role].pk,
            "currency": "EUR",
            "elements": TARIFF,
        },
    ),
    Case("GET", "/api/v1/charging/tokens/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/charging/tokens/{pk}/",
        expect(404, anonymous=401, other_admin=200, issuing_body=200, auditor=200),
        args=lambda w: {"pk": w.charging_token.pk},
    ),
    Case(
        "POST",
        "/api/v1/charging/tokens/",
        expect(403, anonymous=401, other_admin=201, issuing_body=201, **OPERATORS),
        body=lambda w, role: {
            "organisation": w.own_org[role].pk,
            "id_token": f"CARD-{role}",
            "type": "ISO14443",
        },
    ),
    Case("GET", "/api/v1/charging/sessions/", expect(200, anonymous=401)),
    Case("GET", "/api/v1/charging/sessions/{pk}/", expect(404, **PARTIES), args=_session_pk),
    Case("GET", "/api/v1/charging/sessions/{pk}/cdr/", expect(404, **PARTIES), args=_session_pk),
    Case(
        "POST",
        "/api/v1/charging/sessions/{pk}/receipts/",
        expect(403, anonymous=401, other_admin=201, **OPERATORS),
        args=_session_pk,
        body=_account_for,
        codes={"auditor": "not_session_party", "issuing_body": "not_session_party"},
    ),
    Case("GET", "/api/v1/charging/bills/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/charging/bills/{pk}/",
        expect(404, **PARTIES),
        args=lambda w: {"pk": w.charging_session.bill.pk},
    ),
    Case(
        "POST",
        "/api/v1/charging/bills/{pk}/pay/",
        expect(404, **(PARTIES | NOT_BILL_PAYER | {"other_admin": 409})),
        args=lambda w: {"pk": w.charging_session.bill.pk},
        codes={role: "not_bill_payer" for role in NOT_BILL_PAYER}
        | {"other_admin": "insufficient_funds"},
    ),
    Case("GET", "/api/v1/charging/receipts/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/charging/receipts/{pk}/",
        expect(404, **PARTIES),
        args=lambda w: {"pk": w.charging_receipt.pk},
    ),
]
