"""Refusals of the notifications app."""

from registry.errors import DomainError, InvalidInput, NotFound, PermissionDenied


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    default_detail = "No such notification for this user."


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    default_detail = "No such webhook endpoint visible to this user."


class WebhookUrlRefused(InvalidInput):
    code = "webhook_url_refused"
    default_detail = "The webhook URL is not allowed."


class WebhookKindsInvalid(InvalidInput):
    code = "webhook_kinds_invalid"
    default_detail = "Choose one or more of the event kinds that notify."


class WebhookAdminRequired(PermissionDenied):
    code = "webhook_admin_required"
    default_detail = "Only an administrator of the organisation manages its webhooks."


__all__ = [
    "DomainError",
    "NotificationNotFound",
    "WebhookAdminRequired",
    "WebhookEndpointNotFound",
    "WebhookKindsInvalid",
    "WebhookUrlRefused",
]
