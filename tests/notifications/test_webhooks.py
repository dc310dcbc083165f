"""Signed webhooks against a real local HTTP server: signature, retries, back-off, log."""

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership
from assets import services as asset_services
from assets.readings_io import iter_mapping_rows
from ledger.models import LedgerEntry
from notifications import webhooks
from notifications.errors import WebhookAdminRequired, WebhookKindsInvalid, WebhookUrlRefused
from notifications.models import WebhookDelivery, WebhookEndpoint
from registry.errors import DomainError
from tests.assets.factories import hours_ago, interval_row
from tests.factories import member_of
from tests.notifications.conftest import derive
from tests.registry.support import events_since, last_event_id, row_counts

pytestmark = pytest.mark.django_db

KINDS = ["reading_batch.held"]


@pytest.fixture
def admin(producer_org):
    return member_of(producer_org, role=Membership.Role.ADMIN)


@pytest.fixture
def endpoint(admin, producer_org, receiver):
    endpoint, secret = webhooks.webhook_endpoint_register(
        organisation=producer_org, url=receiver.url, kinds=KINDS, actor=admin
    )
    endpoint.shown_secret = secret
    return endpoint


def hold_a_batch(producer, meter, key):
    rows = [interval_row(meter, hours_ago(h), 1000, key=key) for h in range(3, 0, -1)]
    rows[1] = interval_row(meter, hours_ago(2), 500_000, key=key)
    result = asset_services.readings_submit(actor=producer, rows=iter_mapping_rows(rows))
    assert result.status == "held"
    derive()
    return WebhookDelivery.objects.get()


def make_due(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
        next_attempt_at=timezone.now()
    )


def test_registering_an_endpoint_records_an_event_and_shows_the_secret_once(
    admin, producer_org, receiver
):
    # given
    before = last_event_id()
    # when
    endpoint, secret = webhooks.webhook_endpoint_register(
        organisation=producer_org, url=receiver.url, kinds=KINDS, actor=admin
    )
    # then
    assert secret.startswith("whsec_") and endpoint.secret == secret
    (event,) = events_since(before)
    assert event["type"] == "webhook_endpoint.registered"
    assert event["subject"] == [
        f"webhook_endpoint:{endpoint.pk}",
        f"organisation:{producer_org.pk}",
    ]
    assert event["data"] == {
        "endpoint_id": endpoint.pk,
        "organisation_id": producer_org.pk,
        "host": "127.0.0.1",
        "kinds": KINDS,
    }
    assert secret not in str(event)


@pytest.mark.parametrize(
    ("url", "kinds", "who", "error"),
    [
        ("ftp://127.0.0.1/hook", KINDS, "admin", WebhookUrlRefused),
        ("http://user:pw@127.0.0.1/hook", KINDS, "admin", WebhookUrlRefused),
        ("http://127.0.0.1/hook", ["certificate.retired"], "admin", WebhookKindsInvalid),
        ("http://127.0.0.1/hook", KINDS, "producer", WebhookAdminRequired),
    ],
)
def test_registration_refusals_change_nothing(
    admin, producer, producer_org, url, kinds, who, error
):
    # given
    actor = {"admin": admin, "producer": producer}[who]
    before, counts = last_event_id(), row_counts(WebhookEndpoint)
    # when / then
    with pytest.raises(error) as refused:
        webhooks.webhook_endpoint_register(
            organisation=producer_org, url=url, kinds=kinds, actor=actor
        )
    assert refused.value.status in {400, 403}
    assert events_since(before) == [] and row_counts(WebhookEndpoint) == counts


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/",
    ],
)
def test_private_and_loopback_addresses_are_refused_unless_allowed(settings, url):
    # given production's default
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    # when / then
    with pytest.raises(WebhookUrlRefused):
        webhooks.webhook_url_check(url)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    webhooks.webhook_url_check(url)


def test_a_delivery_posts_the_ledger_event_signed(endpoint, producer, meter, key, receiver):
    # given a held batch the producer's endpoint subscribed to
    delivery = hold_a_batch(producer, meter, key)
    # when the due deliveries are sent
    assert webhooks.webhook_deliveries_send() == 1
    # then the receiver got the entry's canonical bytes, signed with the endpoint's secret
    (request,) = receiver.requests
    entry = LedgerEntry.objects.get(seq=delivery.entry_seq)
    body = request["body"]
    assert body == bytes(entry.event)
    assert hashlib.sha256(b"\x00" + body).digest() == bytes(entry.leaf_hash)
    headers = request["headers"]
    assert headers["GridProof-Event"] == "reading_batch.held"
    assert headers["GridProof-Event-Seq"] == str(entry.seq)
    signature = headers["GridProof-Signature"]
    t, v1 = (part.split("=", 1)[1] for part in signature.split(","))
    expected = hmac.new(endpoint.shown_secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(v1, expected.hexdigest())
    assert webhooks.webhook_signature_verify(
        secret=endpoint.shown_secret, header=signature, body=body
    )
    assert not webhooks.webhook_signature_verify(
        secret=endpoint.shown_secret, header=signature, body=body + b" "
    )
    assert not webhooks.webhook_signature_verify(
        secret=endpoint.shown_secret, header=signature, body=body, now=int(t) + 301
    )
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None


def test_a_500_is_retried_after_the_back_off(endpoint, producer, meter, key, receiver, settings):
    # given a receiver that fails once
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    receiver.statuses = [500]
    delivery = hold_a_batch(producer, meter, key)
    # when the delivery is attempted
    webhooks.webhook_deliveries_send()
    # then it waits the base back-off, and is not attempted again before then
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert (delivery.attempts, delivery.last_status_code) == (1, 500)
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at - delivery.last_attempt_at >= timedelta(seconds=10)
    assert webhooks.webhook_deliveries_send() == 0
    assert len(receiver.requests) == 1
    # when it is due again, the second attempt succeeds
    make_due(delivery)
    assert webhooks.webhook_deliveries_send() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempts == 2
    assert len(receiver.requests) == 2


def test_back_off_doubles_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_SECONDS = 60
    waits = [webhooks.webhook_backoff(n).total_seconds() for n in range(1, 6)]
    assert waits == [10, 20, 40, 60, 60]


def test_it_gives_up_after_the_last_attempt(endpoint, producer, meter, key, receiver, settings):
    # given a receiver that always fails, and three attempts allowed
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    receiver.statuses = [500] * 10
    delivery = hold_a_batch(producer, meter, key)
    waits = []
    # when it is attempted each time it is due
    for _attempt in range(5):
        make_due(delivery)
        webhooks.webhook_deliveries_send()
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
    # then it waited 10 s then 20 s, and gave up after the third attempt
    assert len(receiver.requests) == 3
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts == 3
    assert delivery.next_attempt_at is None and delivery.last_status_code == 500
    # The wait runs from the attempt's end, the attempt's time from its start: the POST's
    # own duration (seconds on a loaded machine) lies between them.
    assert len(waits) == 2
    assert 10 <= waits[0] < 15 and 20 <= waits[1] < 25


def test_redirects_are_not_followed(endpoint, producer, meter, key, receiver):
    # given a receiver that redirects
    receiver.statuses = [302]
    delivery = hold_a_batch(producer, meter, key)
    # when
    webhooks.webhook_deliveries_send()
    # then the 302 is a failure to retry, and nothing was requested at the new location
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302 and delivery.status == WebhookDelivery.Status.PENDING
    assert [r["path"] for r in receiver.requests] == ["/hook/"]


def test_an_unreachable_endpoint_records_the_error(
    admin, producer_org, producer, meter, key, receiver
):
    # given an endpoint on a port nobody listens on
    webhooks.webhook_endpoint_register(
        organisation=producer_org, url="http://127.0.0.1:9/hook", kinds=KINDS, actor=admin
    )
    delivery = hold_a_batch(producer, meter, key)
    # when
    webhooks.webhook_deliveries_send()
    # then
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and "Error" in delivery.last_error
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1


def test_deleting_an_endpoint_gives_up_its_pending_deliveries(
    endpoint, admin, producer, meter, key, receiver
):
    # given a pending delivery
    delivery = hold_a_batch(producer, meter, key)
    before = last_event_id()
    # when the admin deletes the endpoint
    webhooks.webhook_endpoint_delete(endpoint_id=endpoint.pk, actor=admin)
    # then nothing is sent, the log row stays, and the deletion is in the ledger
    assert webhooks.webhook_deliveries_send() == 0
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.last_error == "endpoint deleted"
    assert receiver.requests == []
    (event,) = events_since(before)
    assert event["type"] == "webhook_endpoint.deleted"
    # and a second delete is refused without an event
    with pytest.raises(DomainError) as refused:
        webhooks.webhook_endpoint_delete(endpoint_id=endpoint.pk, actor=admin)
    assert refused.value.status == 404 and len(events_since(before)) == 1


def test_an_endpoint_gets_only_its_kinds_and_its_organisation(
    endpoint, issuer, producer, meter, key
):
    # given an issuing body endpoint for organisation approvals only
    from tests.factories import OrganisationFactory

    other = OrganisationFactory()
    other_admin = member_of(other)
    webhooks.webhook_endpoint_register(
        organisation=other, url="http://127.0.0.1:9/x", kinds=KINDS, actor=other_admin
    )
    # when the producer's batch is held
    hold_a_batch(producer, meter, key)
    # then only the producer's endpoint has a delivery
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [endpoint.pk]
