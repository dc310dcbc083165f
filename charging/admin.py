"""Read-only admin views of the charging rows (every write goes through charging.services)."""

from django.contrib import admin

from charging.models import Bill, ChargingSession, ChargingStation, DriverToken, Receipt, Tariff


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for model in (ChargingStation, Tariff, DriverToken, ChargingSession, Bill, Receipt):
    admin.site.register(model, ReadOnlyAdmin)
