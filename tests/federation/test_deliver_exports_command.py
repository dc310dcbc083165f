"""`manage.py deliver_exports`: due exports now, or one export regardless of its back-off."""

import datetime as dt
import io
from fractions import Fraction

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from certificates import crossregistry, services
from certificates.models import Bundle, CertificateExport
from tests.certificates.factories import DAY, PARTNER, add_readings, device_with_owners, holder
from tests.factories import issuing_body_user
from tests.federation.factories import PeerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def exports():
    """Two pending exports to a partner: the first due, the second backing off for an hour."""
    device, (account,) = device_with_owners([Fraction(1)])
    add_readings(device, hours=2)
    services.certificate_issue(
        actor=issuing_body_user(),
        device_id=device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=2),
    )
    PeerFactory(origin=PARTNER, is_partner=True)
    producer = holder(account)
    made = [
        crossregistry.certificate_export(
            actor=producer, bundle_id=bundle.pk, destination=PARTNER, destination_account="B-1"
        )
        for bundle in Bundle.objects.filter(account=account).order_by("pk")
    ]
    CertificateExport.objects.filter(pk=made[1].pk).update(
        delivery_attempts=3, next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )
    return made


@pytest.fixture
def deliveries(monkeypatch):
    calls = []

    def deliver(*, export_id, due_only=False):
        calls.append(export_id)
        return "imported" if len(calls) == 1 else "unreachable"

    monkeypatch.setattr("federation.transfers.export_deliver", deliver)
    return calls


def run(*args) -> str:
    out = io.StringIO()
    call_command("deliver_exports", *args, stdout=out)
    return out.getvalue()


def test_delivers_the_due_exports_only(exports, deliveries):
    due, backing_off = exports
    assert run() == f"export {due.pk}: imported\n"
    assert deliveries == [due.pk]
    assert backing_off.pk not in deliveries


def test_prints_one_line_per_export_with_its_outcome(exports, deliveries):
    first, second = exports
    CertificateExport.objects.update(next_attempt_at=None)
    assert run() == f"export {first.pk}: imported\nexport {second.pk}: unreachable\n"
    assert deliveries == [first.pk, second.pk]


def test_one_export_is_delivered_regardless_of_its_back_off(exports, deliveries):
    _due, backing_off = exports
    assert run("--export", str(backing_off.pk)) == f"export {backing_off.pk}: imported\n"
    assert deliveries == [backing_off.pk]


def test_nothing_due_says_so(exports, deliveries):
    CertificateExport.objects.update(next_attempt_at=timezone.now() + dt.timedelta(hours=1))
    assert run() == "no exports due\n"
    assert deliveries == []


def test_an_unknown_export_is_an_error(exports, deliveries):
    missing = max(e.pk for e in exports) + 100
    with pytest.raises(CommandError, match=f"no certificate export with id {missing}"):
        run("--export", str(missing))
    assert deliveries == []
