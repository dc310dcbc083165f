"""Permission matrix rows for the notifications and webhooks endpoints (tests/registry/matrix.py).

Notifications are the reader's own: anyone signed in lists theirs; one of them is visible
to its user only. Marking read and e-mail preferences are the reader's state and record no
ledger event. Webhook endpoints belong to an organisation: its members read them and their
delivery log, its admins register and delete them (one ledger event each).
"""

from notifications.models import Notification, Topic, WebhookDelivery, WebhookEndpoint
from tests.registry.matrix import Case, expect

OWN_STATE = "the reader's own notifications or preferences, not registry state"


def setup_world(world) -> None:
    world.notification = Notification.objects.create(
        user=world.users["producer_admin"],
        organisation=world.orgs["producer"],
        topic=Topic.ORGANISATION_APPROVED,
        params={"organisation_id": world.orgs["producer"].pk},
        subject=f"organisation:{world.orgs['producer'].pk}",
        key="matrix",
    )
    world.webhook = WebhookEndpoint.objects.create(
        organisation=world.orgs["producer"],
        url="https://hooks.example.org/gridproof",
        kinds=["certificate.transferred"],
        secret="whsec_matrix",
        created_by=world.users["producer_admin"],
    )
    WebhookDelivery.objects.create(
        endpoint=world.webhook, entry_seq=0, kind="organisation.approved"
    )


def _webhook_body(world, role):
    return {
        "organisation": world.own_org[role].pk,
        "url": "https://hooks.example.org/new",
        "kinds": ["certificate.transferred"],
    }


CASES = [
    Case("GET", "/api/v1/notifications/", expect(200, anonymous=401)),
    Case(
        "GET",
        "/api/v1/notifications/{pk}/",
        expect(404, anonymous=401, producer_admin=200),
        name="the producer admin's notification",
        args=lambda w: {"pk": w.notification.pk},
    ),
    Case(
        "POST",
        "/api/v1/notifications/{pk}/read/",
        expect(404, anonymous=401, producer_admin=200),
        name="the producer admin's notification",
        args=lambda w: {"pk": w.notification.pk},
        body=lambda w, role: {},
        events=0,
        auditor_exempt=OWN_STATE,
    ),
    Case(
        "POST",
        "/api/v1/notifications/read-all/",
        expect(200, anonymous=401),
        body=lambda w, role: {},
        events=0,
        auditor_exempt=OWN_STATE,
    ),
    Case("GET", "/api/v1/notifications/unread-count/", expect(200, anonymous=401)),
    Case("GET", "/api/v1/notifications/preferences/", expect(200, anonymous=401)),
    Case(
        "PUT",
        "/api/v1/notifications/preferences/",
        expect(200, anonymous=401),
        body=lambda w, role: {"email_enabled": False},
        events=0,
        auditor_exempt=OWN_STATE,
    ),
    Case("GET", "/api/v1/webhooks/", expect(200, anonymous=401)),
    Case(
        "POST",
        "/api/v1/webhooks/",
        expect(403, anonymous=401, producer_admin=201, other_admin=201, issuing_body=201),
        name="for your own organisation",
        body=_webhook_body,
        codes={
            "pending_member": "organisation_not_approved",
            "producer_operator": "webhook_admin_required",
            "no_org": "webhook_admin_required",
        },
    ),
    Case(
        "GET",
        "/api/v1/webhooks/{pk}/",
        expect(404, anonymous=401, producer_admin=200, producer_operator=200, producer_viewer=200),
        name="the producer's endpoint",
        args=lambda w: {"pk": w.webhook.pk},
    ),
    Case(
        "DELETE",
        "/api/v1/webhooks/{pk}/",
        expect(403, anonymous=401, producer_admin=204),
        name="the producer's endpoint",
        args=lambda w: {"pk": w.webhook.pk},
    ),
    Case(
        "GET",
        "/api/v1/webhooks/{pk}/deliveries/",
        expect(404, anonymous=401, producer_admin=200, producer_operator=200, producer_viewer=200),
        name="the producer's endpoint",
        args=lambda w: {"pk": w.webhook.pk},
    ),
]
