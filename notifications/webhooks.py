"""Signed webhooks: endpoints (registry state, with ledger events) and deliveries (job state).

A delivery POSTs the integrated event's canonical bytes (RFC 8785, the leaf data of the
Merkle log: SHA-256(0x00 || body) is its leaf hash) with

    GridProof-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

(docs/notifications.md shows how to verify it). An attempt claims the delivery in a short
transaction (attempts + 1, next attempt pushed past the request's time-out), POSTs with no
transaction open, then records the outcome: 2xx succeeds; otherwise it is retried after
WEBHOOK_RETRY_BASE_SECONDS x 2^(attempts - 1) (at most WEBHOOK_RETRY_MAX_SECONDS) until
WEBHOOK_MAX_ATTEMPTS, then given up. The URL is checked when it is registered and again
before every attempt (a host may resolve elsewhere later): http(s) only and, unless
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES, only public addresses. Redirects are not followed.
"""

import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from accounts.permissions import user_role_in
from ledger.selectors import ledger_entry
from ledger.services import ledger_append
from notifications import events
from notifications.errors import (
    WebhookAdminRequired,
    WebhookEndpointNotFound,
    WebhookKindsInvalid,
    WebhookUrlRefused,
)
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.rules import RULES
from registry.errors import OrganisationNotApproved

SIGNATURE_HEADER = "GridProof-Signature"
RESPONSE_READ_LIMIT = 64 * 1024


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def webhook_signature_verify(
    *, secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute the HMAC, compare in constant time, bound the age."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body).split("v1=")[1]
    fresh = abs((now if now is not None else time.time()) - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


def webhook_url_check(url: str) -> None:
    """Refuse what is not http(s) or, unless allowed, resolves to a non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WebhookUrlRefused("Use an http:// or https:// URL with a host.", url=url)
    if parts.username or parts.password:
        raise WebhookUrlRefused("Credentials in the URL are not allowed.", url=url)
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookUrlRefused("The host does not resolve.", url=url) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise WebhookUrlRefused(
                "The host resolves to a private, loopback or reserved address.",
                url=url,
                address=str(address),
            )


def _check_admin(actor: User, organisation: Organisation) -> None:
    role = user_role_in(actor, organisation)
    if role is not None and organisation.status != Organisation.Status.APPROVED:
        raise OrganisationNotApproved(organisation_id=organisation.pk)
    if role != Membership.Role.ADMIN:
        raise WebhookAdminRequired(organisation_id=organisation.pk)


def webhook_endpoint_register(
    *, organisation: Organisation, url: str, kinds: list[str], actor: User
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it and its secret (shown this once)."""
    kinds = sorted(set(kinds))
    unknown = sorted(set(kinds) - set(RULES))
    if not kinds or unknown:
        raise WebhookKindsInvalid(unknown=unknown, choices=sorted(RULES))
    _check_admin(actor, organisation)
    webhook_url_check(url)  # DNS: before the transaction
    secret = "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            organisation=organisation, url=url, kinds=kinds, secret=secret, created_by=actor
        )
        ledger_append(
            kind=events.ENDPOINT_REGISTERED,
            actor=actor,
            subject=[endpoint, organisation],
            data=events.endpoint_registered(endpoint),
        )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: int, actor: User) -> WebhookEndpoint:
    """Stop deliveries to an endpoint: pending ones are given up, the log is kept."""
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .select_related("organisation")
        .filter(pk=endpoint_id, deleted_at__isnull=True)
        .first()
    )
    if endpoint is None:
        raise WebhookEndpointNotFound(endpoint_id=endpoint_id)
    _check_admin(actor, endpoint.organisation)
    endpoint.deleted_at = timezone.now()
    endpoint.save(update_fields=["deleted_at"])
    endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_error="endpoint deleted"
    )
    ledger_append(
        kind=events.ENDPOINT_DELETED,
        actor=actor,
        subject=[endpoint, endpoint.organisation],
        data=events.endpoint_deleted(endpoint),
    )
    return endpoint


def webhook_backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base x 2^(attempts - 1), capped."""
    seconds = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_SECONDS))


def _claim(delivery_id: int) -> tuple[WebhookDelivery, bytes] | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(
                pk=delivery_id,
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at__lte=now,
            )
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        # While this attempt is in flight no other runner may take it.
        delivery.next_attempt_at = now + timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 5)
        delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
    return delivery, bytes(ledger_entry(seq=delivery.entry_seq).event)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is answered as the 3xx it is: not followed, not a success


_opener = urllib.request.build_opener(_NoRedirect)


def _post(delivery: WebhookDelivery, body: bytes) -> tuple[int | None, str]:
    """POST the body; (status code or None, error text or "")."""
    endpoint = delivery.endpoint
    try:
        webhook_url_check(endpoint.url)
    except WebhookUrlRefused as exc:
        return None, f"refused: {exc.detail}"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GridProof-Webhooks/1",
        "GridProof-Event": delivery.kind,
        "GridProof-Event-Seq": str(delivery.entry_seq),
        "GridProof-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: webhook_signature(
            secret=endpoint.secret, timestamp=int(time.time()), body=body
        ),
    }
    # webhook_url_check above admits http(s) only.
    request = urllib.request.Request(endpoint.url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(RESPONSE_READ_LIMIT)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Try one due delivery once; None when it is not due or another runner has it."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    delivery, body = claimed
    if delivery.endpoint.deleted_at is not None:
        status_code, error = None, "endpoint deleted"
    else:
        status_code, error = _post(delivery, body)
    now = timezone.now()
    delivery.last_status_code = status_code
    delivery.last_error = error
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS or error == "endpoint deleted":
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + webhook_backoff(delivery.attempts)
    delivery.save(
        update_fields=[
            "status",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
        ]
    )
    return delivery


def webhook_deliveries_send(*, limit: int = 100) -> int:
    """Attempt every due delivery once (the periodic task, and kicked on commit)."""
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(webhook_delivery_attempt(delivery_id=pk) is not None for pk in due)
