from django.contrib import admin

from registry.models import IdempotencyRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write: the admin shows them and changes nothing."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "key",
        "user",
        "request_method",
        "request_path",
        "response_status",
        "created_at",
        "expires_at",
    ]
    list_filter = ["request_method", "response_status"]
    search_fields = ["key", "request_path", "user__username"]
    date_hierarchy = "created_at"
