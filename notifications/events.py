"""Ledger events of the notifications app: one builder per kind (ledger/EVENTS.md).

Only the webhook registry is registry state (who receives which events). Notifications,
read marks, e-mail preferences and delivery attempts are derived or operational and record
no event: they would feed the log to itself (every entry notified would add entries).
"""

from typing import Any
from urllib.parse import urlsplit

from notifications.models import WebhookEndpoint

ENDPOINT_REGISTERED = "webhook_endpoint.registered"
ENDPOINT_DELETED = "webhook_endpoint.deleted"


def endpoint_registered(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # The host only: a URL's path or query may carry the integrator's own credentials,
    # and the ledger is public.
    return {
        "endpoint_id": endpoint.pk,
        "organisation_id": endpoint.organisation_id,
        "host": urlsplit(endpoint.url).hostname or "",
        "kinds": sorted(endpoint.kinds),
    }


def endpoint_deleted(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"endpoint_id": endpoint.pk, "organisation_id": endpoint.organisation_id}
