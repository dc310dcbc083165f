"""The read-only admin for cross-registry transfers, and its "Deliver now" action."""

import pytest

from certificates import crossregistry
from certificates.crossregistry import VerifiedExport
from certificates.models import CertificateExport, CertificateImport, ForeignDevice
from tests.certificates.factories import PARTNER, export_event_data
from tests.federation.factories import PeerFactory

pytestmark = pytest.mark.django_db

EXPORTS = "/admin/certificates/certificateexport/"
IMPORTS = "/admin/certificates/certificateimport/"
DEVICES = "/admin/certificates/foreigndevice/"


@pytest.fixture
def transfers(issued):
    """Two exports to a partner (one settled with a receipt) and one import from it."""
    PeerFactory(origin=PARTNER, is_partner=True)

    def export(bundle, account):
        return crossregistry.certificate_export(
            actor=issued.producer,
            bundle_id=bundle.pk,
            destination=PARTNER,
            destination_account=account,
        )

    pending = export(issued.bundles[0], "B-ACC-1")
    settled = export(issued.bundles[1], "B-ACC-2")
    crossregistry.certificate_export_settle(
        export_id=settled.pk,
        outcome="imported",
        receipt="gridproof-transfer-receipt/v1\noutcome imported",
        reference={"bundle_id": 9},
    )
    received = crossregistry.certificate_import(
        verified=VerifiedExport(
            origin=PARTNER,
            seq=41,
            leaf_hash=bytes([41]) * 32,
            data=export_event_data(issued.buyer_account.number),
            checkpoint="registry-b.example/gridproof\n42\nroot",
            provenance=[{"origin": PARTNER, "verified": True, "entries": []}],
        ),
        sign_receipt=lambda row: f"signed receipt for {row.status}",
    )
    return pending, CertificateExport.objects.get(pk=settled.pk), received


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def test_exports_are_listed_and_shown_read_only(admin_client, transfers):
    pending, settled, _received = transfers
    CertificateExport.objects.filter(pk=pending.pk).update(last_error="HTTP 503: b'busy'")

    listing = admin_client.get(EXPORTS)
    assert listing.status_code == 200
    assert str(pending.public_id) in listing.content.decode()
    assert b"B-ACC-2" in admin_client.get(EXPORTS, {"q": "B-ACC-2"}).content
    found = admin_client.get(EXPORTS, {"q": str(pending.public_id)}).content.decode()
    assert "B-ACC-1" in found and "B-ACC-2" not in found
    assert admin_client.get(EXPORTS, {"status__exact": "imported"}).status_code == 200

    failing = admin_client.get(f"{EXPORTS}{pending.pk}/change/")
    assert failing.status_code == 200 and "HTTP 503: b&#x27;busy&#x27;" in failing.content.decode()
    receipt = admin_client.get(f"{EXPORTS}{settled.pk}/change/").content.decode()
    assert "<pre>gridproof-transfer-receipt/v1\noutcome imported</pre>" in receipt
    assert "&quot;bundle_id&quot;: 9" in receipt
    assert b'name="_save"' not in failing.content

    assert admin_client.get(f"{EXPORTS}add/").status_code == 403
    assert admin_client.post(f"{EXPORTS}{pending.pk}/delete/").status_code == 403


def test_imports_and_foreign_devices_are_listed_and_shown_read_only(admin_client, transfers):
    _pending, _settled, received = transfers
    assert received.status == CertificateImport.Status.IMPORTED

    listing = admin_client.get(IMPORTS)
    assert listing.status_code == 200 and str(received.public_id) in listing.content.decode()
    assert admin_client.get(IMPORTS, {"q": PARTNER}).status_code == 200
    page = admin_client.get(f"{IMPORTS}{received.pk}/change/").content.decode()
    assert "Windpark Nord" in page  # export data
    assert "&quot;verified&quot;: true" in page  # provenance
    assert "<pre>registry-b.example/gridproof\n42\nroot</pre>" in page  # checkpoint
    assert "signed receipt for imported" in page
    assert admin_client.get(f"{IMPORTS}add/").status_code == 403

    device = ForeignDevice.objects.get(origin=PARTNER, origin_device_id=77)
    devices = admin_client.get(DEVICES)
    assert devices.status_code == 200 and PARTNER in devices.content.decode()
    assert admin_client.get(f"{DEVICES}{device.pk}/change/").status_code == 200
    assert admin_client.get(f"{DEVICES}add/").status_code == 403

    issuances = admin_client.get("/admin/certificates/issuance/", {"imported_from": PARTNER})
    assert issuances.status_code == 200 and b"Windpark Nord" in issuances.content


def test_deliver_now_calls_delivery_for_pending_exports_only(admin_client, transfers, monkeypatch):
    pending, settled, _received = transfers
    calls = []

    def deliver(*, export_id):
        calls.append(export_id)
        return "imported"

    monkeypatch.setattr("federation.transfers.export_deliver", deliver)
    response = admin_client.post(
        EXPORTS,
        {"action": "deliver_now", "_selected_action": [str(pending.pk), str(settled.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert calls == [pending.pk]
    assert _messages(response) == [
        ("success", f"Export #{pending.pk} to {PARTNER}: imported"),
        ("warning", f"Export #{settled.pk} to {PARTNER}: not pending (imported)"),
    ]


def test_deliver_now_reports_a_failed_attempt_with_its_error(admin_client, transfers, monkeypatch):
    pending, _settled, _received = transfers

    def deliver(*, export_id):
        CertificateExport.objects.filter(pk=export_id).update(
            delivery_attempts=1, last_error="connection refused"
        )
        return "unreachable"

    monkeypatch.setattr("federation.transfers.export_deliver", deliver)
    response = admin_client.post(
        EXPORTS, {"action": "deliver_now", "_selected_action": [str(pending.pk)]}, follow=True
    )

    assert _messages(response) == [
        ("error", f"Export #{pending.pk} to {PARTNER}: unreachable (connection refused)")
    ]
