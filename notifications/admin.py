"""Read-only admin views: notifications and webhook rows are written by services only."""

from django.contrib import admin

from notifications.models import Notification, WebhookDelivery, WebhookEndpoint


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "topic", "subject", "created_at", "read_at", "email_status")
    list_filter = ("topic", "email_status")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "organisation", "url", "created_at", "deleted_at")
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "endpoint", "entry_seq", "kind", "status", "attempts", "next_attempt_at")
    list_filter = ("status",)
