from django.contrib import admin

from contracts.models import Contract, ContractExecution, SettlementObligation


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    """Read-only: contracts change through their parties' agreements (services)."""

    list_display = ["id", "kind", "status", "version", "start_at", "end_at"]
    list_filter = ["status", "kind"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ContractExecution)
class ContractExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "contract", "trigger", "status", "reason_code", "attempts"]
    list_filter = ["status"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SettlementObligation)
class SettlementObligationAdmin(admin.ModelAdmin):
    list_display = ["id", "contract", "payer", "payee", "amount_minor", "currency", "status"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
