"""Real threads against PostgreSQL: an export is imported once, a bundle exported once, and
imports of overlapping units from two routes credit the units once."""

import pytest

from certificates import crossregistry, errors
from certificates.crossregistry import Refusal, VerifiedExport
from certificates.models import Bundle, CertificateExport, CertificateImport
from certificates.replay import replay_ledger
from registry.errors import DomainError
from tests.certificates.conftest import THREADS, run_together
from tests.certificates.factories import PARTNER, export_event_data
from tests.conftest import requires_postgres
from tests.federation.factories import PeerFactory

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def _verified(data: dict, seq: int) -> VerifiedExport:
    return VerifiedExport(
        origin=PARTNER, seq=seq, leaf_hash=seq.to_bytes(32, "big"), data=data, checkpoint="note"
    )


def _receipt(received: CertificateImport) -> str:
    return f"receipt {received.pk} {received.status}"


def test_one_export_delivered_many_times_at_once_is_imported_once(race_world):
    _device, _account, _producer, _bundle, receivers, _ib = race_world
    data = export_event_data(receivers[0].number)

    def work(i: int):
        return crossregistry.certificate_import(verified=_verified(data, 7), sign_receipt=_receipt)

    results = run_together(work)
    won = [r for r in results if isinstance(r, CertificateImport)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == THREADS - 1, results
    assert {type(e) for e in lost} == {errors.ExportAlreadyImported}
    assert CertificateImport.objects.count() == 1
    assert Bundle.objects.filter(issuance__imported_from=PARTNER).count() == 1
    assert replay_ledger().ok


def test_different_exports_of_overlapping_units_credit_them_once(race_world):
    # a partner (or two routes) sends the same units in 20 different exports at once
    _device, _account, _producer, _bundle, receivers, _ib = race_world

    def work(i: int):
        data = export_event_data(receivers[i].number, unit_start=1000 + i, unit_end=1100 + i)
        return crossregistry.certificate_import(
            verified=_verified(data, 100 + i), sign_receipt=_receipt
        )

    results = run_together(work)
    assert all(isinstance(r, CertificateImport) for r in results), results
    imported = [r for r in results if r.status == CertificateImport.Status.IMPORTED]
    refused = [r for r in results if r.status == CertificateImport.Status.REJECTED]
    # every pair of these ranges overlaps: exactly one is credited, the others are receipted
    assert len(imported) == 1 and len(refused) == THREADS - 1
    assert {r.reason for r in refused} == {Refusal.UNITS_ALREADY_HELD}
    assert Bundle.objects.filter(issuance__imported_from=PARTNER).count() == 1
    assert replay_ledger().ok


def test_parallel_exports_of_one_bundle_export_it_once(race_world):
    _device, _account, producer, bundle, _receivers, _ib = race_world
    PeerFactory(origin=PARTNER, is_partner=True)

    def work(i: int):
        return crossregistry.certificate_export(
            actor=producer,
            bundle_id=bundle.pk,
            destination=PARTNER,
            destination_account=f"B-{i}",
            volume_wh=150,
        )

    results = run_together(work)
    won = [r for r in results if isinstance(r, CertificateExport)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == THREADS - 1, results
    assert {type(e) for e in lost} == {errors.BundleNotActive}
    assert CertificateExport.objects.count() == 1
    assert replay_ledger().ok
