"""Permission matrix rows for the certificate endpoints (see tests/registry/matrix.py).

The world: an approved plant of the producer organisation with three issued hours (held
by the producer's account), three more hours of readings under a pending issuance
request, a pending transfer to the other organisation, a retirement and a withdrawal.
"""

import datetime as dt

from accounts.models import Account
from certificates import crossregistry, services
from certificates.models import Bundle
from tests.certificates.factories import DAY, DeviceFactory, add_readings, export_event_data
from tests.factories import AccountFactory
from tests.federation.factories import peer_for_log
from tests.federation.fakes import FakeLog
from tests.registry.matrix import Case, expect

HOLDERS = {"producer_admin": 201, "producer_operator": 201}
PARTNER = "matrix-partner.example/registry"
PRODUCER_READERS = {
    "anonymous": 401,
    "producer_admin": 200,
    "producer_operator": 200,
    "producer_viewer": 200,
    "issuing_body": 200,
    "auditor": 200,
}
CLAIM = {
    "beneficiary_name": "Matrix Beneficiary GmbH",
    "beneficiary_country": "DE",
    "consumption_start": DAY.isoformat(),
    "consumption_end": (DAY + dt.timedelta(hours=1)).isoformat(),
    "purpose": "disclosure",
}


def setup_world(world) -> None:
    from assets.models import DeviceOwner

    producer = world.orgs["producer"]
    ib = world.users["issuing_body"]
    admin = world.users["producer_admin"]
    world.producer_trading = AccountFactory(organisation=producer, kind=Account.Kind.TRADING)
    world.other_trading = AccountFactory(organisation=world.orgs["other"])
    world.cert_device = DeviceFactory(organisation=producer)
    DeviceOwner.objects.create(
        device=world.cert_device,
        organisation=producer,
        account=world.producer_trading,
        share_numerator=1,
        share_denominator=1,
    )
    add_readings(world.cert_device, hours=6)
    services.certificate_issue(
        actor=ib,
        device_id=world.cert_device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=3),
    )
    world.request = services.issuance_request_create(
        actor=admin,
        device_id=world.cert_device.pk,
        period_start=DAY + dt.timedelta(hours=3),
        period_end=DAY + dt.timedelta(hours=6),
    )
    first, second, third = Bundle.objects.filter(device=world.cert_device).order_by("pk")
    world.bundle = first
    world.pending = services.certificate_transfer(
        actor=admin,
        bundle_id=second.pk,
        to_account_id=world.other_trading.pk,
        volume_wh=10,
        require_acceptance=True,
    )
    world.retirement = services.certificate_retire(
        actor=admin,
        items=[(third.pk, 5)],
        **(CLAIM | {"consumption_start": DAY, "consumption_end": DAY + dt.timedelta(hours=1)}),
    )
    world.withdrawal = services.certificate_withdraw(
        actor=ib,
        reason="matrix",
        bundle_ids=[Bundle.objects.get(parent=third, unit_start__gt=third.unit_start).pk],
    )
    world.partner = peer_for_log(FakeLog(PARTNER, seed_byte=24), is_partner=True)
    world.export = crossregistry.certificate_export(
        actor=admin,
        bundle_id=Bundle.objects.get(parent=second, unit_start__gt=second.unit_start).pk,
        destination=PARTNER,
        destination_account="MATRIX-B-1",
    )
    world.received = crossregistry.certificate_import(
        verified=crossregistry.VerifiedExport(
            origin=PARTNER,
            seq=3,
            leaf_hash=bytes(32),
            data=export_event_data(world.other_trading.number),
            checkpoint="matrix",
        ),
        sign_receipt=lambda received: "matrix receipt",
    )


def _bundle(world) -> dict:
    return {"pk": world.bundle.pk}


def _transfer(world) -> dict:
    return {"pk": world.pending.pk}


def _to_other(world, role) -> dict:
    return {"to_account": world.other_trading.number, "volume_wh": 10}


NOT_HOLDER = {
    role: "not_bundle_holder"
    for role in ("producer_viewer", "other_admin", "issuing_body", "auditor", "no_org")
}

CASES = [
    Case(
        "GET",
        "/api/v1/accounts/{pk}/holdings/",
        expect(404, **PRODUCER_READERS),
        name="the producer's account holdings",
        args=lambda w: {"pk": w.producer_trading.pk},
    ),
    Case("GET", "/api/v1/bundles/", expect(200, anonymous=401)),
    Case("GET", "/api/v1/bundles/{pk}/", expect(200), args=_bundle),
    Case("GET", "/api/v1/bundles/{pk}/history/", expect(200), args=_bundle),
    Case(
        "POST",
        "/api/v1/bundles/{pk}/transfers/",
        expect(403, anonymous=401, **HOLDERS),
        args=_bundle,
        body=_to_other,
        codes=NOT_HOLDER,
    ),
    Case(
        "POST",
        "/api/v1/bundles/{pk}/retirements/",
        expect(403, anonymous=401, **HOLDERS),
        args=_bundle,
        body=lambda w, role: CLAIM | {"volume_wh": 10},
        codes=NOT_HOLDER,
    ),
    Case(
        "POST",
        "/api/v1/bundles/{pk}/exports/",
        expect(403, anonymous=401, **HOLDERS),
        args=_bundle,
        body=lambda w, role: {
            "destination": PARTNER,
            "destination_account": "MATRIX-B-2",
            "volume_wh": 5,
        },
        codes=NOT_HOLDER,
    ),
    Case("GET", "/api/v1/exports/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/exports/{pk}/",
        expect(404, **PRODUCER_READERS),
        args=lambda w: {"pk": w.export.pk},
    ),
    Case("GET", "/api/v1/imports/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/imports/{pk}/",
        expect(404, anonymous=401, other_admin=200, issuing_body=200, auditor=200),
        args=lambda w: {"pk": w.received.pk},
    ),
    Case("GET", "/api/v1/transfers/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/transfers/{pk}/",
        expect(
            404,
            anonymous=401,
            producer_admin=200,
            producer_operator=200,
            producer_viewer=200,
            other_admin=200,
            issuing_body=200,
            auditor=200,
        ),
        args=_transfer,
    ),
    Case(
        "POST",
        "/api/v1/transfers/batch/",
        expect(403, anonymous=401, **HOLDERS),
        body=lambda w, role: {
            "to_account": w.other_trading.number,
            "items": [{"bundle": w.bundle.pk, "volume_wh": 3}],
        },
        codes=NOT_HOLDER,
    ),
    Case(
        "POST",
        "/api/v1/transfers/{pk}/accept/",
        expect(403, anonymous=401, other_admin=200),
        args=_transfer,
        codes={"producer_admin": "not_transfer_party", "auditor": "not_transfer_party"},
    ),
    Case(
        "POST",
        "/api/v1/transfers/{pk}/reject/",
        expect(403, anonymous=401, other_admin=200),
        args=_transfer,
        codes={"producer_admin": "not_transfer_party"},
    ),
    Case(
        "POST",
        "/api/v1/transfers/{pk}/withdraw/",
        expect(403, anonymous=401, producer_admin=200, producer_operator=200),
        args=_transfer,
        codes={"other_admin": "not_transfer_party"},
    ),
    Case("GET", "/api/v1/retirements/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/retirements/",
        expect(403, anonymous=401, **HOLDERS),
        body=lambda w, role: CLAIM | {"items": [{"bundle": w.bundle.pk, "volume_wh": 1}]},
        codes=NOT_HOLDER,
    ),
    Case(
        "GET",
        "/api/v1/retirements/{public_id}/",
        expect(
            404,
            anonymous=401,
            producer_admin=200,
            producer_operator=200,
            producer_viewer=200,
            issuing_body=200,
            auditor=200,
        ),
        args=lambda w: {"public_id": w.retirement.public_id},
    ),
    Case(
        "GET",
        "/api/v1/statements/{public_id}/",
        expect(200),
        args=lambda w: {"public_id": w.retirement.public_id},
    ),
    Case(
        "GET",
        "/api/v1/units/{device_id}/{unit}/",
        expect(200),
        args=lambda w: {"device_id": w.cert_device.pk, "unit": w.bundle.unit_start},
    ),
    Case("GET", "/api/v1/issuance-requests/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/issuance-requests/",
        expect(403, anonymous=401, **HOLDERS),
        body=lambda w, role: {
            "device": w.cert_device.pk,
            "period_start": (DAY + dt.timedelta(hours=3)).isoformat(),
            "period_end": (DAY + dt.timedelta(hours=6)).isoformat(),
        },
        codes={"producer_viewer": "not_device_producer", "issuing_body": "not_device_producer"},
    ),
    Case(
        "GET",
        "/api/v1/issuance-requests/{pk}/",
        expect(
            404,
            anonymous=401,
            producer_admin=200,
            producer_operator=200,
            producer_viewer=200,
            issuing_body=200,
            auditor=200,
        ),
        args=lambda w: {"pk": w.request.pk},
    ),
    Case(
        "POST",
        "/api/v1/issuance-requests/{pk}/approve/",
        expect(403, anonymous=401, issuing_body=200),
        args=lambda w: {"pk": w.request.pk},
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case(
        "POST",
        "/api/v1/issuance-requests/{pk}/reject/",
        expect(403, anonymous=401, issuing_body=200),
        args=lambda w: {"pk": w.request.pk},
        body=lambda w, role: {"reason": "meter not sealed"},
        codes={"producer_admin": "not_issuing_body"},
    ),
    Case("GET", "/api/v1/withdrawals/", expect(200)),
    Case("GET", "/api/v1/withdrawals/{pk}/", expect(200), args=lambda w: {"pk": w.withdrawal.pk}),
    Case(
        "POST",
        "/api/v1/withdrawals/",
        expect(403, anonymous=401, issuing_body=201),
        body=lambda w, role: {"reason": "issued in error", "bundles": [w.bundle.pk]},
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case(
        "POST",
        "/api/v1/withdrawals/by-device/",
        expect(403, anonymous=401, issuing_body=200),
        name="a device's certificates for a period, dry run",
        body=lambda w, role: {
            "device": w.cert_device.pk,
            "period_start": DAY.isoformat(),
            "period_end": (DAY + dt.timedelta(hours=1)).isoformat(),
            "reason": "meter fault",
            "dry_run": True,
        },
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
        events=0,
    ),
    Case(
        "POST",
        "/api/v1/withdrawals/by-device/",
        expect(403, anonymous=401, issuing_body=201),
        name="a device's certificates for a period",
        body=lambda w, role: {
            "device": w.cert_device.pk,
            "period_start": DAY.isoformat(),
            "period_end": (DAY + dt.timedelta(hours=1)).isoformat(),
            "reason": "meter fault",
        },
        codes={"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"},
    ),
    Case(
        "GET",
        "/api/v1/transfer-policies/{organisation_id}/",
        expect(200, anonymous=401),
        args=lambda w: {"organisation_id": w.orgs["producer"].pk},
    ),
    Case(
        "PUT",
        "/api/v1/transfer-policies/{organisation_id}/",
        expect(403, anonymous=401, producer_admin=200),
        args=lambda w: {"organisation_id": w.orgs["producer"].pk},
        body=lambda w, role: {"require_acceptance": True},
        codes={"producer_operator": "not_organisation_member"},
    ),
]
