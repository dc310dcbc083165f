"""Races on PostgreSQL: derivers and delivery workers running at the same time."""

import threading
from unittest import mock

import pytest
from django.db import connection

from accounts import services as account_services
from accounts.models import Membership
from notifications import services, webhooks
from notifications.models import DerivationCursor, Notification, WebhookDelivery
from notifications.tasks import webhook_deliveries_send_task
from tests.conftest import requires_postgres
from tests.factories import OrganisationFactory, issuing_body_user, member_of
from tests.ledger.factories import integrate_all

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def run_together(work) -> list:
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # the test asserts there are none
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def approvals():
    """Five organisations approved, two members each, integrated, not yet derived."""
    issuer = issuing_body_user()
    members = []
    for _ in range(5):
        organisation = OrganisationFactory(status="pending")
        members += [member_of(organisation), member_of(organisation, Membership.Role.VIEWER)]
        account_services.organisation_approve(actor=issuer, organisation_id=organisation.pk)
    integrate_all()
    return members


def test_racing_derivers_notify_each_entry_once(approvals):
    # when eight derivers run at once
    results = run_together(lambda i: services.notifications_derive_pending(max_entries=2))
    # then none failed, every entry was read by exactly one, each member told once
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == DerivationCursor.objects.get().next_seq
    assert Notification.objects.count() == len(approvals)
    assert set(Notification.objects.values_list("user_id", flat=True)) == {u.pk for u in approvals}


def test_racing_derivers_from_a_rewound_cursor_add_nothing(approvals):
    # given everything derived once, then the cursor rewound
    services.notifications_derive_pending()
    DerivationCursor.objects.update(next_seq=0)
    # when derivers race over the same entries again
    results = run_together(lambda i: services.notifications_derive_pending(max_entries=1))
    # then the unique key kept one notification per member and entry
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Notification.objects.count() == len(approvals)


def test_racing_delivery_workers_post_once(approvals, receiver):
    # given an endpoint of the first organisation and its approval to deliver
    organisation = approvals[0].memberships.get().organisation
    admin = member_of(organisation)
    endpoint, _secret = webhooks.webhook_endpoint_register(
        organisation=organisation, url=receiver.url, kinds=["organisation.approved"], actor=admin
    )
    endpoint.created_at = endpoint.created_at.replace(year=2000)
    endpoint.save(update_fields=["created_at"])
    integrate_all()
    # (on commit the derivation would start the delivery task, eagerly: not here)
    with mock.patch.object(webhook_deliveries_send_task, "delay"):
        services.notifications_derive_pending()
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 0
    # when eight workers attempt it at once
    results = run_together(lambda i: webhooks.webhook_delivery_attempt(delivery_id=delivery.pk))
    # then one claimed and posted it
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r is not None]) == 1
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempts == 1
