import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from certificates import selectors, services
from certificates.models import Bundle
from certificates.replay import replay_ledger
from ledger.services import checkpoint_create, ledger_integrate
from tests.certificates.factories import DAY

pytestmark = pytest.mark.django_db


def _busy_day(plant):
    """Every kind of certificate event, on the plant's issued day."""
    b = plant.bundles
    sold = services.certificate_transfer(
        actor=plant.producer, bundle_id=b[0].pk, to_account_id=plant.buyer_account.pk, volume_wh=400
    )
    services.certificate_transfer_batch(
        actor=plant.producer,
        to_account_id=plant.buyer_account.pk,
        items=[(b[1].pk, None), (b[2].pk, 7)],
    )
    accepted = services.certificate_transfer(
        actor=plant.producer,
        bundle_id=b[3].pk,
        to_account_id=plant.buyer_account.pk,
        require_acceptance=True,
    )
    services.certificate_transfer_accept(actor=plant.buyer, transfer_id=accepted.pk)
    rejected = services.certificate_transfer(
        actor=plant.producer,
        bundle_id=b[4].pk,
        to_account_id=plant.buyer_account.pk,
        volume_wh=5,
        require_acceptance=True,
    )
    services.certificate_transfer_reject(actor=plant.buyer, transfer_id=rejected.pk)
    retirement = services.certificate_retire(
        actor=plant.buyer,
        items=[(sold.bundle_id, 150)],
        beneficiary_name="Beneficiary AG",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(days=1),
        purpose="disclosure",
    )
    Bundle.objects.filter(pk=b[6].pk).update(expires_on=dt.datetime.now(dt.UTC).date())
    services.certificate_expire_due()
    services.certificate_withdraw(actor=plant.ib, reason="double count", bundle_ids=[b[0].pk])
    return sold, retirement


def test_history_follows_a_unit_from_issuance_to_retirement(issued):
    # given a bundle sold in part and retired in part by the buyer
    sold, retirement = _busy_day(issued)
    ledger_integrate()
    checkpoint_create()
    retired = retirement.items.get().bundle
    # when the first unit of the original bundle is traced
    unit = issued.bundles[0].unit_start
    leaf = selectors.bundle_for_unit(device_id=issued.device.pk, unit=unit)
    history = selectors.bundle_history(bundle_id=leaf.pk)
    # then it is the retired piece, and its chain goes issuance -> transfer -> retirement
    assert leaf.pk == retired.pk
    assert history.bundle_ids == [issued.bundles[0].pk, sold.bundle_id, retired.pk]
    assert [s.kind for s in history.steps] == [
        "certificate.issued",
        "certificate.transferred",
        "certificate.retired",
        "certificate.withdrawn",
    ]
    assert all(s.proof is not None for s in history.steps)
    # and the history verifies as ledger.verify checks it
    from ledger.keys import registry_signer
    from ledger.verify.__main__ import Trust, check_history

    result = check_history(history.verify_bundle(), Trust.from_strings(registry_signer().vkey))
    assert [seq for seq, _ in result.entries] == [s.seq for s in history.steps]


def test_unit_that_was_never_issued_has_no_bundle(issued):
    assert selectors.bundle_for_unit(device_id=issued.device.pk, unit=10**12) is None
    assert selectors.bundle_for_unit(device_id=10**9, unit=0) is None


def test_entries_after_the_checkpoint_wait_for_their_proof(issued):
    ledger_integrate()
    checkpoint_create()
    services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[0].pk,
        to_account_id=issued.buyer_account.pk,
    )
    ledger_integrate()
    history = selectors.bundle_history(bundle_id=issued.bundles[0].pk)
    assert [s.proof is None for s in history.steps] == [False, True]
    assert len(history.verify_bundle()["entries"]) == 1


def test_replay_rebuilds_every_holding_from_the_ledger(issued):
    _busy_day(issued)
    ledger_integrate()  # some events numbered ...
    services.certificate_transfer(  # ... and one still queued
        actor=issued.producer,
        bundle_id=issued.bundles[10].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=3,
    )
    report = replay_ledger()
    assert report.ok, report.problems
    assert report.events == 11
    assert report.bundles == Bundle.objects.count()
    out = StringIO()
    call_command("replay_ledger", "--holdings", stdout=out)
    assert "OK:" in out.getvalue()
    assert f"account {issued.buyer_account.pk}:" in out.getvalue()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b, p: Bundle.objects.filter(pk=b.pk).update(account_id=p.own_second_account.pk),
        lambda b, p: Bundle.objects.filter(pk=b.pk).update(status=Bundle.Status.RETIRED),
        lambda b, p: Bundle.objects.filter(pk=b.pk).update(unit_end=b.unit_end + 1),
        lambda b, p: Bundle.objects.create(
            device_id=b.device_id,
            issuance_id=b.issuance_id,
            account_id=b.account_id,
            unit_start=10**9,
            unit_end=10**9 + 5,
            period_start=b.period_start,
            period_end=b.period_end,
        ),
    ],
    ids=["moved", "status", "range", "forged"],
)
def test_replay_exposes_a_row_changed_behind_the_services_back(issued, tamper):
    # given a consistent registry
    _busy_day(issued)
    assert replay_ledger().ok
    # when a bundle row is changed without a service (and so without an event)
    victim = Bundle.objects.filter(status=Bundle.Status.ACTIVE).order_by("pk").last()
    tamper(victim, issued)
    # then replay reports it and the command fails
    report = replay_ledger()
    assert not report.ok
    assert any(str(victim.pk) in p or "no event" in p for p in report.problems)
    with pytest.raises(CommandError, match="MISMATCH"):
        call_command("replay_ledger", stdout=StringIO(), stderr=StringIO())
