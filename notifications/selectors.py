"""Reads of notifications and webhooks. The web pages use the first two: one query each."""

from datetime import date

from django.db.models import Count, F, Min, QuerySet, Sum

from accounts.models import User
from accounts.permissions import user_organisation_ids
from certificates.models import Bundle
from notifications.models import Notification, NotificationPreference, WebhookEndpoint


def notification_list_for_user(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first (one query, with the organisation)."""
    qs = Notification.objects.filter(user=user).select_related("organisation")
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return qs.order_by("-id")


def notification_unread_count(*, user: User) -> int:
    """How many of the user's notifications are unread (one COUNT on a partial index)."""
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_preference_for(*, user: User) -> NotificationPreference:
    """The user's preferences (an unsaved default row when they never chose)."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found or NotificationPreference(user=user)


def webhook_endpoint_list(*, user: User) -> QuerySet[WebhookEndpoint]:
    """Active endpoints of the user's organisations."""
    return WebhookEndpoint.objects.filter(
        organisation_id__in=user_organisation_ids(user), deleted_at__isnull=True
    )


def bundles_expiring_by_account(*, start: date, end: date) -> list[dict]:
    """Active bundles with start <= expires_on <= end, summed per account."""
    return list(
        Bundle.objects.filter(
            status=Bundle.Status.ACTIVE, expires_on__gte=start, expires_on__lte=end
        )
        .values("account_id", "account__number", "account__organisation_id")
        .annotate(
            bundles=Count("id"),
            volume_wh=Sum(F("unit_end") - F("unit_start")),
            first_expiry=Min("expires_on"),
        )
        .order_by("account_id")
    )
