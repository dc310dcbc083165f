"""Notifications for people and signed webhooks for integrators.

Notifications and webhook deliveries are derived from integrated ledger entries (see
`notifications.derive`): the cursor row remembers how far the log has been read, and the
unique `(user, key)` and `(endpoint, entry_seq)` constraints mean an entry is never turned
into the same notification or delivery twice, whoever runs the derivation.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Topic(models.TextChoices):
    """What a notification is about (its text is rendered from the topic and its params)."""

    TRANSFER_INCOMING = "transfer_incoming", "Incoming transfer to accept"
    TRANSFER_ACCEPTED = "transfer_accepted", "Transfer accepted"
    TRANSFER_REJECTED = "transfer_rejected", "Transfer rejected"
    BATCH_HELD = "batch_held", "Reading batch held for review"
    CERTIFICATES_EXPIRING = "certificates_expiring", "Certificates about to expire"
    ORGANISATION_APPROVED = "organisation_approved", "Organisation approved"
    TRADE_FILLED = "trade_filled", "Trade filled"
    CONSENT_GRANTED = "consent_granted", "Consent granted"
    CONSENT_REVOKED = "consent_revoked", "Consent revoked"


class Notification(models.Model):
    """One thing a user is told about, or must act on, for one of their organisations."""

    class EmailStatus(models.TextChoices):
        PENDING = "pending", "To send"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent (opted out or no address)"
        FAILED = "failed", "Sending failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, null=True, related_name="+"
    )
    topic = models.CharField(max_length=32, choices=Topic.choices)
    action_required = models.BooleanField(default=False)
    params = models.JSONField(default=dict, help_text="Facts the text is rendered from.")
    subject = models.CharField(max_length=128, help_text='Ledger subject key, "transfer:12".')
    entry_seq = models.BigIntegerField(
        null=True, blank=True, help_text="The ledger entry it was derived from (none: scheduled)."
    )
    key = models.CharField(
        max_length=160, help_text="Unique per user: the same fact is never notified twice."
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_status = models.CharField(
        max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="notification_user_key_unique"),
        ]
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_recent"),
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_user_unread"
            ),
            models.Index(
                fields=["id"],
                condition=Q(email_status="pending"),
                name="notification_email_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} for user {self.user_id}"


class NotificationPreference(models.Model):
    """A user's choice of how to be told (no row: the defaults)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"


class DerivationCursor(models.Model):
    """How far the ledger has been read for notifications (one row, locked by the deriver)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    next_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="notification_cursor_singleton"),
        ]

    def __str__(self) -> str:
        return f"notifications derived up to entry {self.next_seq}"


class WebhookEndpoint(models.Model):
    """An organisation's URL that receives signed POSTs of the ledger events it chose."""

    ledger_subject_type = "webhook_endpoint"

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    kinds = models.JSONField(default=list, help_text="Ledger event kinds it receives.")
    # HMAC needs the secret itself, so it cannot be stored as a hash like API tokens; it is
    # shown once, at registration, and never served again.
    secret = models.CharField(max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of organisation {self.organisation_id}"

    @property
    def is_active(self) -> bool:
        return self.deleted_at is None


class WebhookDelivery(models.Model):
    """One ledger entry to POST to one endpoint: its attempts and their outcome (job state)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Given up"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    entry_seq = models.BigIntegerField()
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "entry_seq"], name="webhook_delivery_once_per_entry"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery of entry {self.entry_seq} to webhook {self.endpoint_id}"
