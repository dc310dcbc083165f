import datetime as dt
import json

import pytest

from accounts.errors import NotIssuingBody
from certificates import errors, services
from certificates.models import Bundle, IssuedPeriod, Transfer, WithdrawalItem
from certificates.tasks import certificates_expire_due_task
from ledger.models import PendingEvent
from tests.certificates.conftest import last_event_id, new_events, snapshot
from tests.certificates.factories import DAY

pytestmark = pytest.mark.django_db
TODAY = dt.datetime.now(dt.UTC).date()


def test_expire_due_expires_only_active_bundles_past_their_date(issued):
    # given three bundles due today: active, reserved (pending transfer), retired
    due, reserved, retired, later = issued.bundles[:4]
    transfer = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=reserved.pk,
        to_account_id=issued.buyer_account.pk,
        require_acceptance=True,
    )
    services.certificate_retire(
        actor=issued.producer,
        items=[(retired.pk, None)],
        beneficiary_name="B",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(hours=1),
        purpose="disclosure",
    )
    Bundle.objects.filter(pk__in=[due.pk, reserved.pk, retired.pk]).update(expires_on=TODAY)
    before = last_event_id()
    # when
    expired = services.certificate_expire_due()
    # then
    assert expired == [due.pk]
    statuses = dict(
        Bundle.objects.filter(pk__in=[due.pk, reserved.pk, retired.pk, later.pk]).values_list(
            "pk", "status"
        )
    )
    assert statuses == {
        due.pk: Bundle.Status.EXPIRED,
        reserved.pk: Bundle.Status.RESERVED,
        retired.pk: Bundle.Status.RETIRED,
        later.pk: Bundle.Status.ACTIVE,
    }
    assert new_events(before) == ["certificate.expired"]
    data = json.loads(bytes(PendingEvent.objects.get(pk__gt=before).event))["data"]
    assert data == {"on": TODAY.isoformat(), "bundle_ids": [due.pk]}
    # the reserved one cannot be accepted once past its date; the sender takes it back
    with pytest.raises(errors.BundleExpired):
        services.certificate_transfer_accept(actor=issued.buyer, transfer_id=transfer.pk)
    services.certificate_transfer_withdraw(actor=issued.producer, transfer_id=transfer.pk)
    # nothing due: no event
    services.certificate_expire_due()
    before = last_event_id()
    assert services.certificate_expire_due() == []
    assert new_events(before) == []


def test_expiry_task_runs_in_batches(issued, monkeypatch):
    monkeypatch.setattr(services, "EXPIRE_BATCH", 5)
    Bundle.objects.filter(account=issued.producer_account).update(expires_on=TODAY)
    assert certificates_expire_due_task() == len(issued.bundles)
    assert not Bundle.objects.filter(
        account=issued.producer_account, status=Bundle.Status.ACTIVE
    ).exists()


def test_withdrawal_reaches_every_piece_wherever_it_is_held(issued):
    # given a bundle split three ways: sold, retired by the buyer, pending to a third party
    parent = issued.bundles[5]
    sold = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=parent.pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=300,
    ).bundle
    services.certificate_retire(
        actor=issued.buyer,
        items=[(sold.pk, 100)],
        beneficiary_name="B",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(hours=1),
        purpose="disclosure",
    )
    rest = Bundle.objects.get(parent=parent, account=issued.producer_account)
    pending = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=rest.pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=50,
        require_acceptance=True,
    )
    before = last_event_id()
    # when the issuing body withdraws the original bundle
    withdrawal = services.certificate_withdraw(
        actor=issued.ib, reason="Meter read twice", bundle_ids=[parent.pk]
    )
    # then every live piece is withdrawn, the retired one flagged but left retired
    leaves = Bundle.objects.filter(pk__in=_leaves(parent.pk))
    by_status = {b.pk: b.status for b in leaves}
    retired = [pk for pk, st in by_status.items() if st == Bundle.Status.RETIRED]
    assert len(retired) == 1
    assert set(by_status.values()) == {Bundle.Status.RETIRED, Bundle.Status.WITHDRAWN}
    assert WithdrawalItem.objects.filter(withdrawal=withdrawal).count() == len(leaves)
    assert WithdrawalItem.objects.get(bundle_id=retired[0]).previous_status == Bundle.Status.RETIRED
    assert Transfer.objects.get(pk=pending.pk).status == Transfer.Status.CANCELLED
    assert withdrawal.volume_wh == parent.volume_wh
    assert new_events(before) == ["certificate.withdrawn"]
    data = json.loads(bytes(PendingEvent.objects.get(pk__gt=before).event))["data"]
    assert data["flagged_bundle_ids"] == retired and data["cancelled_transfer_ids"] == [pending.pk]
    # the hour's other owner still holds certificates: the period stays issued
    assert (
        IssuedPeriod.objects.get(
            device=issued.device, period_start=parent.period_start
        ).withdrawn_at
        is None
    )
    # withdrawing again changes nothing
    state = snapshot()
    with pytest.raises(errors.BundleNotActive):
        services.certificate_withdraw(actor=issued.ib, reason="again", bundle_ids=[parent.pk])
    assert snapshot() == state


def _leaves(root: int) -> list[int]:
    from certificates.storage import bundle_tree_ids as _descendants

    return [
        pk for pk in _descendants([root]) if Bundle.objects.get(pk=pk).status != Bundle.Status.SPLIT
    ]


def test_withdrawal_needs_the_issuing_body_and_a_reason(issued):
    before = snapshot()
    with pytest.raises(NotIssuingBody):
        services.certificate_withdraw(
            actor=issued.producer, reason="oops", bundle_ids=[issued.bundles[0].pk]
        )
    with pytest.raises(errors.ReasonRequired):
        services.certificate_withdraw(actor=issued.ib, reason="", bundle_ids=[issued.bundles[0].pk])
    with pytest.raises(errors.BundleNotFound):
        services.certificate_withdraw(actor=issued.ib, reason="x", bundle_ids=[10**9])
    assert snapshot() == before
