"""The person's notifications: unread first, mark one or all read (any signed-in person)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from notifications import selectors, services
from notifications.errors import NotificationNotFound
from notifications.models import Topic
from notifications.texts import notification_body, notification_title

SHOWN = 100  # newest unread ones, then as many of the newest read ones

# Where a person acts on what they are told about.
ACT_ON = {
    Topic.TRANSFER_INCOMING: "web:holdings",
    Topic.TRANSFER_ACCEPTED: "web:holdings",
    Topic.TRANSFER_REJECTED: "web:holdings",
    Topic.BATCH_HELD: "web:producer",
    Topic.CERTIFICATES_EXPIRING: "web:holdings",
    Topic.ORGANISATION_APPROVED: "web:dashboard",
    Topic.TRADE_FILLED: "web:market",
}
# A consent's household acts on it on its consents page; the grantee has no page for it.
ACT_ON_CONSENT = {"household": "web:household-consents"}


def _act_on(notification) -> str | None:
    if notification.topic in (Topic.CONSENT_GRANTED, Topic.CONSENT_REVOKED):
        return ACT_ON_CONSENT.get(notification.params.get("role"))
    return ACT_ON.get(notification.topic)


def _rows(notifications) -> list[dict]:
    return [
        {
            "notification": n,
            "title": notification_title(n.topic),
            "body": notification_body(n.topic, n.params),
            "act_on": _act_on(n),
        }
        for n in notifications
    ]


@require_GET
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """Unread notifications first (newest first), then the newest read ones: two queries."""
    user = request.user
    unread = list(selectors.notification_list_for_user(user=user, unread_only=True)[:SHOWN])
    read = list(
        selectors.notification_list_for_user(user=user).filter(read_at__isnull=False)[
            : max(SHOWN - len(unread), 10)
        ]
    )
    return render(
        request,
        "web/notifications.html",
        {"unread": _rows(unread), "read": _rows(read)},
    )


@require_POST
@login_required
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one of the person's notifications read (htmx swaps the list in place)."""
    try:
        services.notification_mark_read(notification_id=notification_id, user=request.user)
    except NotificationNotFound:
        raise Http404 from None
    return redirect("web:notifications")


@require_POST
@login_required
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    count = services.notifications_mark_all_read(user=request.user)
    messages.success(
        request, _("All notifications are marked read.") if count else _("Nothing unread.")
    )
    return redirect("web:notifications")
