from django.conf import settings
from django.db import models
from rest_framework.utils.encoders import JSONEncoder


class IdempotencyRecord(models.Model):
    """A POST's Idempotency-Key and the response it produced, replayed on a retry."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255, help_text="The client's Idempotency-Key header.")
    request_method = models.CharField(max_length=10)
    request_path = models.TextField()
    request_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the method, path and parsed body."
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=JSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_path} [{self.key}]"
