"""Each rule: which ledger event tells whom, and that an entry is never notified twice."""

import pytest
from django.db import transaction

from accounts import services as account_services
from accounts.models import Membership
from assets import services as asset_services
from assets.readings_io import iter_mapping_rows
from certificates import services as certificate_services
from certificates.models import TransferPolicy
from ledger.models import LedgerEntry
from ledger.services import ledger_append
from notifications.models import DerivationCursor, Notification, Topic
from notifications.rules import RULES, Notice
from notifications.services import notifications_derive
from tests.assets.factories import hours_ago, interval_row
from tests.factories import OrganisationFactory, member_of
from tests.ledger.factories import integrate_all
from tests.notifications.conftest import derive

pytestmark = pytest.mark.django_db


def topics_of(user) -> list[tuple[str, bool]]:
    return list(
        Notification.objects.filter(user=user)
        .order_by("id")
        .values_list("topic", "action_required")
    )


def pending_transfer(issued, index: int = 0, **kwargs):
    return certificate_services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[index].pk,
        to_account_id=issued.buyer_account.pk,
        require_acceptance=True,
        **kwargs,
    )


def test_an_incoming_pending_transfer_asks_the_receivers_who_can_act(issued):
    # given a viewer of the buyer besides its operator
    viewer = member_of(issued.buyer_account.organisation, role=Membership.Role.VIEWER)
    derive()
    # when the producer sends a transfer that waits for acceptance
    transfer = pending_transfer(issued)
    derive()
    # then the buyer's operator must act; the viewer (who cannot) and the sender hear nothing
    notification = Notification.objects.get(user=issued.buyer)
    assert notification.topic == Topic.TRANSFER_INCOMING and notification.action_required
    assert notification.subject == f"transfer:{transfer.pk}"
    assert notification.params["to_account"] == issued.buyer_account.number
    assert notification.params["volume_wh"] == issued.bundles[0].volume_wh
    assert notification.organisation_id == issued.buyer_account.organisation_id
    assert topics_of(viewer) == []
    assert topics_of(issued.producer) == []


def test_a_completed_transfer_notifies_nobody(issued):
    # when a transfer completes at once (no acceptance needed)
    certificate_services.certificate_transfer(
        actor=issued.producer, bundle_id=issued.bundles[0].pk, to_account_id=issued.buyer_account.pk
    )
    derive()
    # then nobody must act on it
    assert not Notification.objects.filter(topic=Topic.TRANSFER_INCOMING).exists()


@pytest.mark.parametrize(
    ("answer", "topic"),
    [
        (certificate_services.certificate_transfer_accept, Topic.TRANSFER_ACCEPTED),
        (certificate_services.certificate_transfer_reject, Topic.TRANSFER_REJECTED),
    ],
)
def test_the_sender_is_told_when_the_receiver_answers(issued, answer, topic):
    # given a pending transfer
    transfer = pending_transfer(issued)
    # when the buyer answers it
    answer(actor=issued.buyer, transfer_id=transfer.pk)
    derive()
    # then the producer is told (no action), and the buyer's own answer tells the buyer nothing
    assert topics_of(issued.producer) == [(topic, False)]
    assert topics_of(issued.buyer) == [(Topic.TRANSFER_INCOMING, True)]


def test_a_held_reading_batch_asks_the_issuing_body_and_tells_the_producer(
    producer, issuer, meter, key
):
    # given a batch with a reading far over the device's capacity
    rows = [interval_row(meter, hours_ago(h), 1000, key=key) for h in range(3, 0, -1)]
    rows[1] = interval_row(meter, hours_ago(2), 500_000, key=key)
    # when it is submitted and held
    result = asset_services.readings_submit(actor=producer, rows=iter_mapping_rows(rows))
    assert result.status == "held"
    derive()
    # then the issuing body must review it and the producer is told why
    assert topics_of(issuer) == [(Topic.BATCH_HELD, True)]
    assert topics_of(producer) == [(Topic.BATCH_HELD, False)]
    told = Notification.objects.get(user=producer)
    assert told.subject == f"reading_batch:{result.batch.pk}"
    assert told.params["reasons"] == ["over_capacity"]


def test_an_approved_organisation_tells_all_its_members(issuer):
    # given a pending organisation with an admin and a viewer
    organisation = OrganisationFactory(status="pending")
    admin = member_of(organisation)
    viewer = member_of(organisation, role=Membership.Role.VIEWER)
    # when the issuing body approves it
    account_services.organisation_approve(actor=issuer, organisation_id=organisation.pk)
    derive()
    # then both are told
    assert topics_of(admin) == [(Topic.ORGANISATION_APPROVED, False)]
    assert topics_of(viewer) == [(Topic.ORGANISATION_APPROVED, False)]


def test_a_rule_registered_for_a_new_kind_applies(db):
    # given a rule for a kind no app has yet, registered as another app's ready() would
    organisation = OrganisationFactory()
    member = member_of(organisation)

    def trade_filled(event):
        return [Notice(event["data"]["organisation_id"], Topic.TRANSFER_ACCEPTED, "trade:1")]

    RULES.register("trade.filled")(trade_filled)
    try:
        # when an event of that kind is integrated
        with transaction.atomic():
            ledger_append(
                kind="trade.filled",
                actor="system:test",
                subject=("trade", 1),
                data={"organisation_id": organisation.pk},
            )
        derive()
    finally:
        del RULES["trade.filled"]
    # then its organisation's member is told
    assert topics_of(member) == [(Topic.TRANSFER_ACCEPTED, False)]


def test_the_same_entry_is_never_notified_twice(issued):
    # given a pending transfer, notified
    pending_transfer(issued)
    derive()
    assert Notification.objects.count() == 1
    # when the cursor is wound back (a restored backup) and the log is read again
    DerivationCursor.objects.update(next_seq=0)
    read = notifications_derive()
    # then every entry was read again but the unique key kept one notification
    assert read > 0
    assert Notification.objects.count() == 1


def test_derivation_reads_in_batches_and_stops_at_the_head(issued):
    # given several entries
    pending_transfer(issued, 0)
    pending_transfer(issued, 1)
    integrate_all()
    # when derived two entries at a time
    reads = []
    while done := notifications_derive(max_entries=2):
        reads.append(done)
    # then each batch read at most two, and both transfers were notified once
    assert max(reads) <= 2 and len(reads) >= 2
    assert Notification.objects.filter(topic=Topic.TRANSFER_INCOMING).count() == 2
    assert notifications_derive() == 0


def test_a_registry_installing_notifications_starts_at_the_head(issued):
    # given a registry with history and no cursor yet
    import importlib

    from django.apps import apps

    migration = importlib.import_module("notifications.migrations.0002_cursor_at_the_head")
    pending_transfer(issued)
    integrate_all()
    DerivationCursor.objects.all().delete()
    # when the migration runs
    migration.cursor_at_head(apps, None)
    # then the cursor is at the head and the history is not notified
    assert DerivationCursor.objects.get().next_seq == LedgerEntry.objects.count()
    assert notifications_derive() == 0
    assert not Notification.objects.exists()


def test_a_pending_part_of_a_cut_asks_the_receiver_as_a_transfer_does(issued):
    # given: the buyer's policy holds incoming units for acceptance, and a contract group's
    # cut whose mandate the buyer did not agree to
    TransferPolicy.objects.create(
        organisation=issued.buyer_account.organisation, require_acceptance=True
    )
    mandate = certificate_services.Mandate(
        holder_account_id=issued.producer_account.pk,
        reference={"contract_id": 1, "execution_id": 1, "trigger": "test"},
    )
    derive()
    # when: one bundle is cut, 100 Wh to the buyer
    [[transfer]] = certificate_services.certificate_transfer_cut(
        actor="system:test",
        receivers=[(issued.buyer_account.number, mandate)],
        cuts=[(issued.bundles[0].pk, [(0, 100)])],
    )
    derive()
    # then: the buyer's operator must act on that transfer
    assert transfer.status == "pending"
    notification = Notification.objects.get(user=issued.buyer)
    assert (notification.topic, notification.subject) == (
        Topic.TRANSFER_INCOMING,
        f"transfer:{transfer.pk}",
    )
    assert notification.params["volume_wh"] == 100
    assert notification.params["from_account"] == issued.producer_account.number
