"""Export to and import from partner registries: the certificate side (services, replay).

The wire side (packages, proofs, receipts, delivery) is in tests/federation/test_transfers.py;
three real registries exchange certificates in tests/federation/test_multi_registry.py.
"""

import base64
import datetime as dt
import json
import time

import pytest
from django.conf import settings
from django.utils import timezone

from assets.models import Device
from certificates import crossregistry, errors
from certificates.crossregistry import Refusal, VerifiedExport
from certificates.models import (
    Bundle,
    CertificateExport,
    CertificateImport,
    ForeignDevice,
    Issuance,
)
from certificates.replay import replay_ledger
from certificates.selectors import bundle_history
from certificates.services import certificate_transfer
from federation import transfers
from federation.models import Anchor
from federation.peer_requests import verify_request
from ledger.keys import registry_signer
from ledger.merkle import leaf_hash
from ledger.models import PendingEvent
from ledger.services import checkpoint_create, ledger_integrate
from tests.certificates.conftest import last_event_id, new_events, snapshot
from tests.certificates.factories import PARTNER, export_event_data
from tests.factories import AccountFactory
from tests.federation.factories import PeerFactory
from tests.federation.fakes import _Handler, _Server, make_signer

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner():
    return PeerFactory(origin=PARTNER, is_partner=True)


def _export(issued, bundle=None, **kwargs):
    return crossregistry.certificate_export(
        actor=kwargs.pop("actor", issued.producer),
        bundle_id=(bundle or issued.bundles[0]).pk,
        destination=kwargs.pop("destination", PARTNER),
        destination_account=kwargs.pop("destination_account", "B-ACC-1"),
        **kwargs,
    )


def _event(kind: str) -> dict:
    raw = PendingEvent.objects.filter(kind=kind).order_by("-pk").values_list("event", flat=True)[0]
    return json.loads(bytes(raw))


def test_export_marks_the_units_exported_for_good(issued, partner):
    bundle = issued.bundles[0]
    before = last_event_id()
    export = _export(issued, bundle)
    bundle.refresh_from_db()
    assert bundle.status == Bundle.Status.EXPORTED and export.bundle_id == bundle.pk
    assert export.status == CertificateExport.Status.PENDING
    assert new_events(before) == ["certificate.exported"]
    event = _event("certificate.exported")
    data = event["data"]
    assert data["destination"] == PARTNER and data["destination_account"] == "B-ACC-1"
    cert = data["certificate"]
    assert cert["origin"] == settings.REGISTRY_ORIGIN and cert["device_id"] == bundle.device_id
    assert (cert["unit_start"], cert["unit_end"]) == (bundle.unit_start, bundle.unit_end)
    assert cert["attributes"]["technology_code"] == issued.issuance.technology_code
    assert f"certificate_export:{export.pk}" in event["subject"]
    # the exported units never move here again
    with pytest.raises(errors.BundleNotActive):
        certificate_transfer(
            actor=issued.producer, bundle_id=bundle.pk, to_account_id=issued.buyer_account.pk
        )
    with pytest.raises(errors.BundleNotActive):
        _export(issued, bundle)
    assert replay_ledger().ok


def test_partial_export_splits_and_exports_the_first_units(issued, partner):
    parent = issued.bundles[2]
    export = _export(issued, parent, volume_wh=100)
    parent.refresh_from_db()
    moved = Bundle.objects.get(pk=export.bundle_id)
    rest = Bundle.objects.get(parent=parent, unit_start=moved.unit_end)
    assert parent.status == Bundle.Status.SPLIT
    assert moved.status == Bundle.Status.EXPORTED and moved.volume_wh == 100
    assert rest.status == Bundle.Status.ACTIVE and rest.unit_end == parent.unit_end
    assert export.source_id == parent.pk and export.volume_wh == 100
    assert replay_ledger().ok


@pytest.mark.parametrize(
    "change, error",
    [
        ({"destination": "unknown.example/registry"}, errors.ExportDestinationUnknown),
        ({"destination_account": "bad account!"}, errors.InvalidInput),
        ({"volume_wh": 0}, errors.InvalidVolume),
        ({"volume_wh": 10**12}, errors.InsufficientVolume),
    ],
)
def test_bad_exports_change_nothing(issued, partner, change, error):
    before = snapshot()
    with pytest.raises(error):
        _export(issued, **change)
    assert snapshot() == before
    assert not CertificateExport.objects.exists()


def test_only_partner_peers_receive_exports(issued):
    PeerFactory(origin=PARTNER, is_partner=False, is_mirror=True)
    with pytest.raises(errors.ExportDestinationUnknown):
        _export(issued)


def test_only_the_holder_exports(issued, partner):
    before = snapshot()
    with pytest.raises(errors.NotBundleHolder):
        _export(issued, actor=issued.buyer)
    assert snapshot() == before


def test_a_refusal_returns_the_units_and_a_receipt_settles_once(issued, partner):
    bundle = issued.bundles[1]
    export = _export(issued, bundle)
    returned = crossregistry.certificate_export_settle(
        export_id=export.pk, outcome="rejected", receipt="signed receipt", reason="expired"
    )
    bundle.refresh_from_db()
    assert returned.status == CertificateExport.Status.RETURNED and returned.reason == "expired"
    assert bundle.status == Bundle.Status.ACTIVE
    assert _event("certificate.export_returned")["data"]["reason"] == "expired"
    # the same receipt again is a no-op; another one is refused
    again = crossregistry.certificate_export_settle(
        export_id=export.pk, outcome="rejected", receipt="signed receipt", reason="expired"
    )
    assert again.status == CertificateExport.Status.RETURNED
    with pytest.raises(errors.ExportAlreadySettled):
        crossregistry.certificate_export_settle(
            export_id=export.pk, outcome="imported", receipt="another receipt"
        )
    # returned units move again
    certificate_transfer(
        actor=issued.producer, bundle_id=bundle.pk, to_account_id=issued.buyer_account.pk
    )
    assert replay_ledger().ok


def test_an_import_receipt_completes_the_export(issued, partner):
    export = _export(issued)
    done = crossregistry.certificate_export_settle(
        export_id=export.pk, outcome="imported", receipt="r", reference={"bundle_id": 9}
    )
    assert done.status == CertificateExport.Status.IMPORTED
    assert Bundle.objects.get(pk=export.bundle_id).status == Bundle.Status.EXPORTED
    assert _event("certificate.export_completed")["data"]["reference"] == {"bundle_id": 9}
    assert replay_ledger().ok


# ---------------------------------------------------------------- import


def verified(data: dict, seq: int = 41, origin: str = PARTNER) -> VerifiedExport:
    return VerifiedExport(
        origin=origin, seq=seq, leaf_hash=bytes([seq]) * 32, data=data, checkpoint="note"
    )


def receipt_of(received: CertificateImport) -> str:
    return f"receipt {received.status} {received.reason}"


def _import(export: VerifiedExport) -> CertificateImport:
    return crossregistry.certificate_import(verified=export, sign_receipt=receipt_of)


def test_import_credits_the_units_under_a_stand_in_of_the_foreign_device(issued):
    account = issued.buyer_account
    before = last_event_id()
    received = _import(verified(export_event_data(account.number)))
    assert received.status == CertificateImport.Status.IMPORTED
    assert received.receipt == "receipt imported "
    bundle = received.bundle
    assert bundle.account_id == account.pk and bundle.status == Bundle.Status.ACTIVE
    assert (bundle.unit_start, bundle.unit_end) == (1000, 1500)
    foreign = ForeignDevice.objects.get(origin=PARTNER, origin_device_id=77)
    assert bundle.device_id == foreign.device_id
    assert Device.objects.get(pk=foreign.device_id).status == Device.Status.FOREIGN
    assert not Device.objects.get(pk=foreign.device_id).can_issue
    issuance = Issuance.objects.get(pk=bundle.issuance_id)
    assert issuance.imported_from == PARTNER and issuance.technology_code == "T030001"
    assert new_events(before) == ["certificate.imported"]
    data = _event("certificate.imported")["data"]
    assert data["origin"] == PARTNER and data["export_seq"] == 41
    assert replay_ledger().ok
    # the imported certificates move like any other
    certificate_transfer(
        actor=issued.buyer, bundle_id=bundle.pk, to_account_id=issued.producer_account.pk
    )
    assert replay_ledger().ok


def test_the_same_export_is_never_imported_twice(issued):
    data = export_event_data(issued.buyer_account.number)
    _import(verified(data))
    before = snapshot()
    with pytest.raises(errors.ExportAlreadyImported):
        _import(verified(data))
    assert snapshot() == before
    assert CertificateImport.objects.count() == 1


def test_units_held_here_already_are_refused_with_a_receipt(issued):
    _import(verified(export_event_data(issued.buyer_account.number)))
    overlapping = export_event_data(issued.buyer_account.number, unit_start=1400, unit_end=1600)
    received = _import(verified(overlapping, seq=42))
    assert received.status == CertificateImport.Status.REJECTED
    assert received.reason == Refusal.UNITS_ALREADY_HELD and received.bundle is None
    assert received.receipt == f"receipt rejected {Refusal.UNITS_ALREADY_HELD}"
    assert _event("certificate.import_rejected")["data"]["reason"] == Refusal.UNITS_ALREADY_HELD
    assert Bundle.objects.filter(device__foreign__origin=PARTNER).count() == 1


@pytest.mark.parametrize(
    "account, certificate, reason",
    [
        ("NO-SUCH-ACCOUNT", {}, Refusal.ACCOUNT_NOT_FOUND),
        (None, {"expires_on": "2020-01-01"}, Refusal.EXPIRED),
        (None, {"unit_start": "many"}, Refusal.MALFORMED),
        (None, {"unit_start": 10, "unit_end": 10}, Refusal.MALFORMED),
    ],
)
def test_refusals(issued, account, certificate, reason):
    data = export_event_data(account or issued.buyer_account.number, **certificate)
    received = _import(verified(data))
    assert received.status == CertificateImport.Status.REJECTED and received.reason == reason
    assert not Bundle.objects.filter(issuance__imported_from=PARTNER).exists()
    assert not ForeignDevice.objects.exists(), "a refusal leaves no stand-in device"
    assert replay_ledger().ok


def _attributes(**change) -> dict:
    return export_event_data("")["certificate"]["attributes"] | change


@pytest.mark.parametrize(
    "certificate",
    [
        # values the columns an import writes cannot hold (bigint, smallint, decimal(9, 3))
        {"unit_start": 0, "unit_end": 2**63},
        {"device_id": 2**63},
        {"device_id": -1},
        {"attributes": _attributes(capacity_w=2**63)},
        {"attributes": _attributes(expiry_months=2**40)},
        {"attributes": _attributes(emission_factor_g_per_kwh="1e30")},
        {"origin": "o" * 256},
        # values the database's constraints refuse (a stand-in device has a capacity)
        {"attributes": _attributes(capacity_w=None)},
        {"attributes": _attributes(capacity_w=0)},
        {"attributes": _attributes(emission_factor_g_per_kwh="-1")},
        {"attributes": _attributes(expiry_months=-1)},
        # values of the wrong kind
        {"attributes": _attributes(expiry_months="twelve")},
        {"attributes": _attributes(expiry_months=[12])},
        {"attributes": _attributes(emission_factor_g_per_kwh="NaN")},
        {"device_id": True},
        {"granularity": "fortnight"},
        # times outside years 1000-8999 (year 10000 in UTC cannot be read back) or naive
        {"period_end": "9999-12-31T23:59:59-05:00"},
        {"period_start": "0001-01-01T00:00:00+05:00"},
        {"period_start": "2026-11-01T10:00:00", "period_end": "2026-11-01T11:00:00"},
    ],
)
def test_a_certificate_its_columns_cannot_hold_is_refused_as_malformed(issued, certificate):
    # given: a partner's export whose certificate has a value we could not store
    data = export_event_data(issued.buyer_account.number, **certificate)
    before = last_event_id()
    # when
    received = _import(verified(data))
    # then: refused with a receipt, as any malformed certificate, and nothing credited
    assert received.status == CertificateImport.Status.REJECTED
    assert received.reason == Refusal.MALFORMED and received.bundle is None
    assert new_events(before) == ["certificate.import_rejected"]
    assert not ForeignDevice.objects.exists() and not Issuance.objects.filter(imported_from=PARTNER)


def test_closed_and_non_trading_accounts_refuse(issued):
    closed = AccountFactory(organisation=issued.buyer_account.organisation, status="closed")
    retirement = AccountFactory(organisation=issued.buyer_account.organisation, kind="retirement")
    assert _import(verified(export_event_data(closed.number))).reason == (Refusal.ACCOUNT_CLOSED)
    assert _import(verified(export_event_data(retirement.number), seq=2)).reason == (
        Refusal.ACCOUNT_NOT_TRADING
    )


def test_only_the_destination_may_answer_an_export(issued):
    data = export_event_data(issued.buyer_account.number) | {
        "destination": "someone-else.example/registry"
    }
    before = snapshot()
    with pytest.raises(errors.ExportNotForThisRegistry):
        _import(verified(data))
    assert snapshot() == before and not CertificateImport.objects.exists()


def test_our_own_units_come_back_only_if_they_left(issued, partner):
    bundle = issued.bundles[4]
    own = {
        "origin": settings.REGISTRY_ORIGIN,
        "device_id": bundle.device_id,
        "unit_start": bundle.unit_start,
        "unit_end": bundle.unit_end,
    }
    # still here: refused
    received = _import(verified(export_event_data(issued.buyer_account.number, **own)))
    assert received.reason == Refusal.UNITS_ALREADY_HELD
    # exported, then sent back by the partner: credited on our own device
    _export(issued, bundle)
    back = _import(verified(export_event_data(issued.buyer_account.number, **own), seq=9))
    assert back.status == CertificateImport.Status.IMPORTED
    assert back.bundle.device_id == bundle.device_id and back.bundle.unit_start == bundle.unit_start
    assert replay_ledger().ok


def test_reexport_of_imported_units_keeps_their_identity(issued, partner):
    received = _import(verified(export_event_data(issued.buyer_account.number)))
    export = crossregistry.certificate_export(
        actor=issued.buyer,
        bundle_id=received.bundle_id,
        destination=PARTNER,
        destination_account="B-ACC-2",
        volume_wh=200,
    )
    data = _event("certificate.exported")["data"]
    assert data["certificate"]["origin"] == PARTNER and data["certificate"]["device_id"] == 77
    assert (data["certificate"]["unit_start"], data["certificate"]["unit_end"]) == (1000, 1200)
    assert data["imported_from"] == {
        "origin": PARTNER,
        "export_seq": 41,
        "leaf_hash": received.export_leaf_hash,
    }
    assert export.volume_wh == 200
    assert replay_ledger().ok


# ---------------------------------------------------------------- delivery (exporter side)


class FakeDestination(_Server):
    """A partner registry's transfer endpoint: records requests, answers with a receipt
    signed by its key (or misbehaves)."""

    def __init__(self, signer, outcome: str = "imported") -> None:
        self.signer, self.outcome = signer, outcome
        self.requests: list[tuple[dict, bytes]] = []
        self.status, self.receipt_signer, self.delay = 201, signer, 0.0
        owner = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append((dict(self.headers), body))
                time.sleep(owner.delay)
                if owner.status != 201:
                    return self.send_body(owner.status, b"down", "text/plain")
                package = json.loads(body)
                seq = package["export_seq"]
                entry = next(e for e in package["hop"]["entries"] if e["seq"] == seq)
                leaf = leaf_hash(base64.b64decode(entry["event_b64"])).hex()
                text = (
                    f"gridproof-transfer-receipt/v1\nfrom {owner.signer.name}\n"
                    f"to {settings.REGISTRY_ORIGIN}\nexport {seq} {leaf}\n"
                    f"outcome {owner.outcome}\nimport 0b3f\nbundle 12\naccount B-ACC-1\n"
                    f"reason {'-' if owner.outcome == 'imported' else 'account_closed'}\n"
                )
                answer = {"outcome": owner.outcome, "receipt": owner.receipt_signer.sign_note(text)}
                return self.send_body(201, json.dumps(answer).encode(), "application/json")

        self.handler = Handler


@pytest.fixture
def destination():
    server = FakeDestination(make_signer(PARTNER, 41)).start()
    yield server
    server.stop()


def _anchor_everything() -> int:
    while ledger_integrate():
        pass
    checkpoint, _ = checkpoint_create()
    Anchor.objects.create(
        size=checkpoint.size,
        root=checkpoint.root,
        note=checkpoint.note,
        checkpoint_created_at=checkpoint.created_at,
        anchored_at=timezone.now(),
    )
    return checkpoint.size


def test_delivery_waits_for_an_anchor_then_settles_with_the_signed_receipt(
    client, issued, destination
):
    peer = PeerFactory(
        origin=PARTNER, is_partner=True, base_url=destination.url, log_vkey=destination.signer.vkey
    )
    bundle = issued.bundles[0]
    export = _export(issued, bundle)
    assert transfers.export_deliver(export_id=export.pk) == "waiting for an anchored checkpoint"
    assert not destination.requests
    size = _anchor_everything()
    assert transfers.export_deliver(export_id=export.pk) == "imported"
    # one signed request carrying the export entry and its history, all in the anchor
    ((headers, body),) = destination.requests
    verify_request(
        registry_signer().verifier,
        headers=headers,
        to=PARTNER,
        method="POST",
        path=transfers.TRANSFERS_PATH,
        body=body,
        now=int(time.time()),
        max_skew=60,
    )
    package = json.loads(body)
    kinds = [
        json.loads(base64.b64decode(e["event_b64"]))["type"] for e in package["hop"]["entries"]
    ]
    assert kinds == ["certificate.issued", "certificate.exported"]
    assert all(e["seq"] < size for e in package["hop"]["entries"])
    export.refresh_from_db()
    assert export.status == CertificateExport.Status.IMPORTED and export.export_seq is not None
    assert export.destination_reference["bundle_id"] == 12
    assert export.destination_reference["history_url"] == (
        f"{peer.base_url}/api/v1/bundles/12/history/"
    )
    history = bundle_history(bundle_id=bundle.pk)
    assert history.exported == export
    page = client.get(f"/certificates/{bundle.pk}/").content.decode()
    assert "Exported to account B-ACC-1" in page and "Imported by the destination" in page
    assert export.destination_reference["history_url"] in page
    assert [s.kind for s in history.steps][-1] == "certificate.exported"
    assert replay_ledger().ok


def test_a_refusing_destination_returns_the_units(issued, destination):
    destination.outcome = "rejected"
    PeerFactory(
        origin=PARTNER, is_partner=True, base_url=destination.url, log_vkey=destination.signer.vkey
    )
    export = _export(issued)
    _anchor_everything()
    assert transfers.export_deliver(export_id=export.pk) == "rejected"
    export.refresh_from_db()
    assert export.status == CertificateExport.Status.RETURNED and export.reason == "account_closed"
    assert Bundle.objects.get(pk=export.bundle_id).status == Bundle.Status.ACTIVE
    assert replay_ledger().ok


def test_failed_deliveries_back_off_and_change_nothing(issued, destination):
    PeerFactory(
        origin=PARTNER, is_partner=True, base_url=destination.url, log_vkey=destination.signer.vkey
    )
    export = _export(issued)
    _anchor_everything()
    destination.status = 503
    assert transfers.export_deliver(export_id=export.pk) == "refused (503)"
    # backing off: the periodic path leaves it alone, nothing is sent
    sent = len(destination.requests)
    assert transfers.export_deliver(export_id=export.pk, due_only=True) == "not due"
    assert transfers.export_deliver_due() == {} and len(destination.requests) == sent
    destination.status = 201
    destination.receipt_signer = make_signer(PARTNER, 42)  # not the registered key
    export.refresh_from_db()
    export.next_attempt_at = None
    export.save()
    assert transfers.export_deliver(export_id=export.pk) == "bad receipt"
    export.refresh_from_db()
    assert export.status == CertificateExport.Status.PENDING
    assert export.delivery_attempts == 2 and "signature" in export.last_error
    assert export.next_attempt_at > timezone.now()
    assert transfers.export_due_ids() == []
    assert Bundle.objects.get(pk=export.bundle_id).status == Bundle.Status.EXPORTED


def test_the_federation_status_counts_transfers_per_partner(client, issued, partner):
    export = _export(issued, issued.bundles[0])
    _export(issued, issued.bundles[1])
    crossregistry.certificate_export_settle(
        export_id=export.pk, outcome="rejected", receipt="r", reason="expired"
    )
    _import(verified(export_event_data(issued.buyer_account.number)))
    (row,) = [
        p
        for p in client.get("/api/v1/federation/status/").json()["peers"]
        if p["peer"]["origin"] == PARTNER
    ]
    assert (row["exports_pending"], row["exports_imported"], row["exports_returned"]) == (1, 0, 1)
    assert row["imports_received"] == 1
    page = client.get("/federation/status").content.decode()
    assert "1 pending, 1 returned" in page and "received: 1" in page


def test_a_delivery_cut_short_is_due_again_once_its_claim_expires(issued, partner):
    # a worker claims the export, then dies before any answer is recorded
    export = _export(issued)
    assert transfers._claim(export.pk, due_only=True)
    assert transfers.export_due_ids() == []
    assert not transfers._claim(export.pk, due_only=True), "claimed: the next round skips it"
    # once the claim's deadline has passed, the next round sends it again
    CertificateExport.objects.filter(pk=export.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert transfers.export_due_ids() == [export.pk]


def test_a_slow_destination_times_out_within_the_bound(issued, destination, settings):
    settings.FEDERATION_HTTP_TIMEOUT_SECONDS = 0.3
    PeerFactory(
        origin=PARTNER, is_partner=True, base_url=destination.url, log_vkey=destination.signer.vkey
    )
    export = _export(issued)
    _anchor_everything()
    destination.delay = 3.0
    started = time.monotonic()
    assert transfers.export_deliver(export_id=export.pk) == "unreachable"
    assert time.monotonic() - started < 2.0
    export.refresh_from_db()
    assert export.status == CertificateExport.Status.PENDING and "timed out" in export.last_error
