from django.contrib import admin

from ledger.models import PendingEvent
from registry.admin import ReadOnlyAdmin


@admin.register(PendingEvent)
class PendingEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "actor", "subjects", "created_at"]
    list_filter = ["kind"]
