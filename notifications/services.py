"""Writes of notifications: derive them from the ledger, mark them read, send the e-mail.

Derivation (`notifications_derive`) reads integrated ledger entries after the cursor,
applies `rules.RULES`, and inserts notifications and webhook deliveries in one
transaction with the cursor's advance. The cursor row is locked (`FOR UPDATE`) first and
only, so two derivers queue; the unique constraints are the backstop should the same
entries ever be read twice (a reset cursor, a restored backup): the insert ignores what
exists. Nothing here appends a ledger event (see events.py). E-mail and webhook sending
start on commit through hooks `NotificationsConfig.ready()` fills, and do their network
I/O outside any transaction.
"""

import json
import logging
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, User
from ledger.selectors import ledger_entries
from notifications import selectors
from notifications.errors import NotificationNotFound
from notifications.models import (
    DerivationCursor,
    Notification,
    NotificationPreference,
    Topic,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.rules import RULES, Notice
from notifications.texts import notification_body, notification_title
from registry.hooks import Hook
from registry.public_url import registry_base_url

log = logging.getLogger(__name__)

EMAIL_TASK = Hook("notifications.email_task")
"""The task that sends pending notification e-mail (notifications.tasks)."""
WEBHOOK_TASK = Hook("notifications.webhook_task")
"""The task that attempts due webhook deliveries (notifications.tasks)."""

_ACTING_ROLES = {Membership.Role.ADMIN, Membership.Role.OPERATOR}


def _start_on_commit(hook: Hook) -> None:
    task = hook.one()
    transaction.on_commit(lambda: task.delay(), robust=True)


def _recipients(notices: list[Notice]) -> dict[int, list[tuple[int, str]]]:
    """Organisation id -> its members (user id, role), in one query."""
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    organisation_ids = {notice.organisation_id for notice in notices}
    rows = Membership.objects.filter(organisation_id__in=organisation_ids, user__is_active=True)
    for organisation_id, user_id, role in rows.values_list("organisation_id", "user_id", "role"):
        members[organisation_id].append((user_id, role))
    return members


def _notification_rows(
    notice: Notice, members: dict[int, list[tuple[int, str]]], key: str, entry_seq: int | None
) -> list[Notification]:
    # Who must act: those who can (operators, admins). Who is told: every member.
    return [
        Notification(
            user_id=user_id,
            organisation_id=notice.organisation_id,
            topic=notice.topic,
            action_required=notice.action_required,
            params=notice.params,
            subject=notice.subject,
            entry_seq=entry_seq,
            key=key,
        )
        for user_id, role in members.get(notice.organisation_id, ())
        if not notice.action_required or role in _ACTING_ROLES
    ]


def _locked_cursor() -> DerivationCursor:
    DerivationCursor.objects.get_or_create(pk=1)
    return DerivationCursor.objects.select_for_update().get(pk=1)


@transaction.atomic
def notifications_derive(*, max_entries: int = 1000) -> int:
    """Turn the next integrated ledger entries into notifications and webhook deliveries.

    Returns how many entries were read (0: the cursor is at the head).
    """
    cursor = _locked_cursor()
    entries = list(
        ledger_entries(start=cursor.next_seq, end=cursor.next_seq + max_entries).values_list(
            "seq", "kind", "event", "event_at"
        )
    )
    if not entries:
        return 0
    per_entry: list[tuple[int, str, Any, list[Notice]]] = []
    for seq, kind, event, event_at in entries:
        if kind in RULES:
            notices = RULES.notices(json.loads(bytes(event)))
            if notices:
                per_entry.append((seq, kind, event_at, notices))
    notifications: list[Notification] = []
    deliveries: list[WebhookDelivery] = []
    if per_entry:
        members = _recipients([n for *_entry, notices in per_entry for n in notices])
        endpoints = list(
            WebhookEndpoint.objects.filter(deleted_at__isnull=True).values_list(
                "id", "organisation_id", "kinds", "created_at"
            )
        )
        for seq, kind, event_at, notices in per_entry:
            for notice in notices:
                key = f"entry:{seq}:{notice.topic}:{notice.subject}"
                notifications += _notification_rows(notice, members, key, seq)
            organisations = {notice.organisation_id for notice in notices}
            deliveries += [
                WebhookDelivery(endpoint_id=endpoint_id, entry_seq=seq, kind=kind)
                for endpoint_id, organisation_id, kinds, created_at in endpoints
                # An endpoint receives what happens from its registration on.
                if organisation_id in organisations and kind in kinds and event_at >= created_at
            ]
    _insert(notifications, deliveries)
    cursor.next_seq = entries[-1][0] + 1
    cursor.updated_at = timezone.now()
    cursor.save(update_fields=["next_seq", "updated_at"])
    return len(entries)


def _insert(notifications: list[Notification], deliveries: list[WebhookDelivery]) -> None:
    if notifications:
        Notification.objects.bulk_create(notifications, ignore_conflicts=True)
        _start_on_commit(EMAIL_TASK)
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        _start_on_commit(WEBHOOK_TASK)


def notifications_derive_pending(*, max_entries: int = 1000) -> int:
    """Derive until the cursor reaches the head of the log (the periodic task)."""
    total = 0
    while done := notifications_derive(max_entries=max_entries):
        total += done
    return total


@transaction.atomic
def certificates_expiring_notify(
    *, today: date | None = None, within_days: int | None = None
) -> int:
    """Tell each account's organisation about its bundles expiring within N days.

    One notification per account and day (the key holds the date), whoever runs it how
    often. Returns how many notifications were created.
    """
    today = today or timezone.now().date()
    within = settings.NOTIFICATIONS_EXPIRY_WARNING_DAYS if within_days is None else within_days
    until = today + timedelta(days=within)
    rows = selectors.bundles_expiring_by_account(start=today, end=until)
    notices = [
        (
            Notice(
                row["account__organisation_id"],
                Topic.CERTIFICATES_EXPIRING,
                f"account:{row['account_id']}",
                {
                    "account": row["account__number"],
                    "bundles": row["bundles"],
                    "volume_wh": row["volume_wh"],
                    "first_expiry": row["first_expiry"].isoformat(),
                    "until": until.isoformat(),
                },
                action_required=True,
            ),
            f"expiring:{row['account_id']}:{today.isoformat()}",
        )
        for row in rows
    ]
    if not notices:
        return 0
    members = _recipients([notice for notice, _key in notices])
    notifications = [
        row
        for notice, key in notices
        for row in _notification_rows(notice, members, key, entry_seq=None)
    ]
    before = Notification.objects.count()
    _insert(notifications, [])
    return Notification.objects.count() - before


def notification_mark_read(*, notification_id: int, user: User) -> Notification:
    """Mark one of the user's notifications read (no ledger event: the reader's own state)."""
    with transaction.atomic():
        notification = Notification.objects.filter(pk=notification_id, user=user).first()
        if notification is None:
            raise NotificationNotFound(notification_id=notification_id)
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user: User) -> int:
    """Mark every unread notification of the user read; return how many."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


@transaction.atomic
def notification_preference_set(*, user: User, email_enabled: bool) -> NotificationPreference:
    """Set how the user is told (no ledger event: a personal setting, not registry state)."""
    preference, _created = NotificationPreference.objects.select_for_update().get_or_create(
        user=user
    )
    preference.email_enabled = email_enabled
    preference.updated_at = timezone.now()
    preference.save(update_fields=["email_enabled", "updated_at"])
    return preference


def _claim_pending_email(limit: int) -> list[int]:
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(email_status=Notification.EmailStatus.PENDING)
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        Notification.objects.filter(pk__in=ids).update(
            email_status=Notification.EmailStatus.SENDING
        )
    return ids


def notification_emails_send_pending(*, limit: int = 200) -> int:
    """Send every pending e-mail, `limit` at a time; return how many were sent."""
    sent = 0
    while True:
        claimed, done = _emails_send(limit)
        sent += done
        if claimed < limit:
            return sent


def notification_emails_send(*, limit: int = 200) -> int:
    """Send the e-mail of up to `limit` pending notifications; return how many were sent."""
    return _emails_send(limit)[1]


def _emails_send(limit: int) -> tuple[int, int]:
    """Send up to `limit` pending e-mails; (how many were claimed, how many were sent).

    Claimed rows are marked `sending` in a short transaction first, so two workers never
    send the same one (at most once: a worker that dies mid-way leaves `sending` rows).
    """
    ids = _claim_pending_email(limit)
    rows = Notification.objects.filter(pk__in=ids).select_related(
        "user", "user__notification_preference"
    )
    outcome: dict[str, list[int]] = defaultdict(list)
    for notification in rows:
        user = notification.user
        preference = getattr(user, "notification_preference", None)
        if not user.email or (preference is not None and not preference.email_enabled):
            outcome[Notification.EmailStatus.SKIPPED].append(notification.pk)
            continue
        try:
            send_mail(
                subject=f"[GridProof] {notification_title(notification.topic)}",
                message=notification_body(notification.topic, notification.params)
                + f"\n\n{registry_base_url()}/\n",
                from_email=None,
                recipient_list=[user.email],
            )
        except Exception:  # any transport failure marks this one failed
            log.exception("notification %s: e-mail failed", notification.pk)
            outcome[Notification.EmailStatus.FAILED].append(notification.pk)
        else:
            outcome[Notification.EmailStatus.SENT].append(notification.pk)
    for status, done in outcome.items():
        Notification.objects.filter(pk__in=done).update(email_status=status)
    return len(ids), len(outcome[Notification.EmailStatus.SENT])
