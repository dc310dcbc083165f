"""The notifications API end to end, and the selectors the web pages use (one query each)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services as account_services
from notifications import selectors
from notifications.models import Notification, Topic
from tests.conftest import client_for
from tests.factories import OrganisationFactory, member_of
from tests.notifications.conftest import derive

pytestmark = pytest.mark.django_db


def notify(user, n: int) -> None:
    Notification.objects.bulk_create(
        Notification(
            user=user,
            organisation=user.memberships.first().organisation,
            topic=Topic.ORGANISATION_APPROVED,
            subject=f"organisation:{i}",
            key=f"test:{i}",
        )
        for i in range(n)
    )


def test_a_member_reads_and_marks_their_notifications(issuer):
    # given an organisation approved by the issuing body, its member notified
    organisation = OrganisationFactory(status="pending")
    member = member_of(organisation)
    account_services.organisation_approve(actor=issuer, organisation_id=organisation.pk)
    derive()
    client = client_for(member)
    # when the member lists them
    listing = client.get("/api/v1/notifications/").json()
    # then the text is rendered and it is unread
    (row,) = listing["results"]
    assert row["topic"] == "organisation_approved" and row["title"] == "Organisation approved"
    assert "approved" in row["body"] and row["is_read"] is False
    assert row["organisation_name"] == organisation.legal_name
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 1}
    # when it is marked read
    marked = client.post(f"/api/v1/notifications/{row['id']}/read/")
    # then
    assert marked.status_code == 200 and marked.json()["is_read"] is True
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 0}
    assert client.get("/api/v1/notifications/?unread=true").json()["results"] == []
    assert len(client.get("/api/v1/notifications/").json()["results"]) == 1


def test_read_all_and_preferences(db):
    # given
    member = member_of(OrganisationFactory())
    notify(member, 3)
    client = client_for(member)
    # when / then
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 3}
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 0}
    assert client.get("/api/v1/notifications/preferences/").json() == {"email_enabled": True}
    changed = client.put("/api/v1/notifications/preferences/", {"email_enabled": False})
    assert changed.json() == {"email_enabled": False}
    assert client.get("/api/v1/notifications/preferences/").json() == {"email_enabled": False}
    bad = client.put("/api/v1/notifications/preferences/", {"email_enabled": "maybe"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_someone_elses_notification_is_not_found(db):
    # given
    owner, stranger = member_of(OrganisationFactory()), member_of(OrganisationFactory())
    notify(owner, 1)
    pk = Notification.objects.get().pk
    # when / then
    response = client_for(stranger).post(f"/api/v1/notifications/{pk}/read/")
    assert response.status_code == 404
    assert Notification.objects.get().read_at is None


@pytest.mark.parametrize("count", [1, 40])
def test_the_web_selectors_cost_one_query_whatever_the_count(db, count):
    # given
    member = member_of(OrganisationFactory())
    notify(member, count)
    # when / then
    with CaptureQueriesContext(connection) as listed:
        rows = list(selectors.notification_list_for_user(user=member)[:20])
        [row.organisation.legal_name for row in rows]
    with CaptureQueriesContext(connection) as counted:
        unread = selectors.notification_unread_count(user=member)
    assert len(listed) == 1 and len(counted) == 1
    assert unread == count and len(rows) == min(count, 20)


def test_the_webhook_api_shows_the_secret_once_and_keeps_a_log(receiver):
    # given an admin
    organisation = OrganisationFactory()
    admin = member_of(organisation)
    client = client_for(admin)
    # when an endpoint is registered
    created = client.post(
        "/api/v1/webhooks/",
        {"organisation": organisation.pk, "url": receiver.url, "kinds": ["organisation.approved"]},
    )
    # then the secret is in the answer and nowhere after
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    shown = client.get(f"/api/v1/webhooks/{body['id']}/").json()
    assert "secret" not in shown and shown["url"] == receiver.url
    assert "secret" not in client.get("/api/v1/webhooks/").json()["results"][0]
    log = client.get(f"/api/v1/webhooks/{body['id']}/deliveries/")
    assert log.status_code == 200 and log.json()["results"] == []
    # and a bad kind lists the choices
    refused = client.post(
        "/api/v1/webhooks/",
        {"organisation": organisation.pk, "url": receiver.url, "kinds": ["nope"]},
    )
    assert refused.status_code == 400 and refused.json()["code"] == "webhook_kinds_invalid"
    assert "certificate.transferred" in refused.json()["extra"]["choices"]
