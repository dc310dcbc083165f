"""E-mail of notifications (Django's locmem outbox) and the daily expiry warning."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts import services as account_services
from certificates.models import Bundle
from notifications import services
from notifications.models import Notification, Topic
from tests.factories import OrganisationFactory, member_of
from tests.ledger.factories import integrate_all
from tests.notifications.conftest import derive

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(issuer):
    """A pending organisation with two members, approved by the issuing body."""
    organisation = OrganisationFactory(status="pending")
    first, second = member_of(organisation), member_of(organisation)
    account_services.organisation_approve(actor=issuer, organisation_id=organisation.pk)
    return first, second


def test_new_notifications_are_mailed_on_commit(
    approved, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    first, second = approved
    integrate_all()
    # when notifications are derived and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        services.notifications_derive_pending()
    # then the e-mail task ran: one message per member, marked sent
    assert sorted(m.to[0] for m in mailoutbox) == sorted([first.email, second.email])
    assert mailoutbox[0].subject == "[GridProof] Organisation approved"
    assert "approved" in mailoutbox[0].body
    assert set(Notification.objects.values_list("email_status", flat=True)) == {"sent"}


def test_a_user_who_opted_out_gets_no_mail(approved, mailoutbox):
    # given the first member turned e-mail off, the second has no address
    first, second = approved
    services.notification_preference_set(user=first, email_enabled=False)
    second.email = ""
    second.save(update_fields=["email"])
    derive()
    # when
    sent = services.notification_emails_send()
    # then nothing is mailed, both stay in the app
    assert sent == 0 and mailoutbox == []
    assert set(Notification.objects.values_list("email_status", flat=True)) == {"skipped"}
    assert Notification.objects.filter(read_at__isnull=True).count() == 2


def test_each_notification_is_mailed_once(approved, mailoutbox):
    # given
    derive()
    # when the sender runs twice
    services.notification_emails_send()
    services.notification_emails_send()
    # then
    assert len(mailoutbox) == 2


def test_a_failing_mail_server_marks_the_notification_failed(approved, mailoutbox, monkeypatch):
    # given a transport that fails
    derive()

    def broken(**kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(services, "send_mail", broken)
    # when
    sent = services.notification_emails_send()
    # then
    assert sent == 0
    assert set(Notification.objects.values_list("email_status", flat=True)) == {"failed"}


def test_expiring_bundles_warn_once_per_account_and_day(issued):
    # given five of the producer's bundles expire within ten days, one in sixty
    today = timezone.now().date()
    soon = [b.pk for b in issued.bundles[:5]]
    Bundle.objects.filter(pk__in=soon).update(expires_on=today + dt.timedelta(days=10))
    Bundle.objects.filter(pk=issued.bundles[5].pk).update(expires_on=today + dt.timedelta(days=60))
    # when the daily warning runs twice today with a 30-day window
    created = services.certificates_expiring_notify(today=today, within_days=30)
    again = services.certificates_expiring_notify(today=today, within_days=30)
    # then the producer's operator has one notification for the account, none twice
    assert (created, again) == (1, 0)
    notification = Notification.objects.get(user=issued.producer)
    assert notification.topic == Topic.CERTIFICATES_EXPIRING and notification.action_required
    assert notification.subject == f"account:{issued.producer_account.pk}"
    assert notification.params["bundles"] == 5
    assert notification.params["volume_wh"] == sum(b.volume_wh for b in issued.bundles[:5])
    assert notification.params["first_expiry"] == (today + dt.timedelta(days=10)).isoformat()
    # and the next day warns again
    assert (
        services.certificates_expiring_notify(today=today + dt.timedelta(days=1), within_days=30)
        == 1
    )


def test_bundles_that_are_not_active_or_not_soon_do_not_warn(issued):
    # given one bundle retired-like (not active) and one far from expiry
    today = timezone.now().date()
    Bundle.objects.filter(pk=issued.bundles[0].pk).update(
        expires_on=today + dt.timedelta(days=3), status=Bundle.Status.RETIRED
    )
    Bundle.objects.exclude(pk=issued.bundles[0].pk).update(expires_on=today + dt.timedelta(days=90))
    # when / then
    assert services.certificates_expiring_notify(today=today, within_days=30) == 0


def test_the_pending_sender_sends_every_batch(approved, mailoutbox):
    # given two pending e-mails
    derive()
    # when sent one at a time until none is left
    sent = services.notification_emails_send_pending(limit=1)
    # then both went
    assert sent == 2 and len(mailoutbox) == 2
