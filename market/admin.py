"""Admin for the issuing body: market rows are read here and change only through the
services (the API, `seed_demo`, and the market_operator_grant service)."""

from django.contrib import admin

from market.models import (
    AgentDecision,
    JournalEntry,
    JournalLine,
    Market,
    MarketOperator,
    Order,
    SettlementAccount,
    SlotClearing,
    Trade,
    TradingAgent,
)
from registry.admin import ReadOnlyAdmin


@admin.register(Market)
class MarketAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "kind", "matching", "currency", "fee_bps", "status"]
    list_filter = ["kind", "status", "currency"]


@admin.register(SettlementAccount)
class SettlementAccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "organisation", "currency", "kind", "available", "reserved"]
    list_filter = ["currency", "kind"]
    search_fields = ["organisation__legal_name"]


class JournalLineInline(admin.TabularInline):
    model = JournalLine
    fields = ["account", "bucket", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "currency", "order", "trade", "created_at"]
    list_filter = ["kind", "currency"]
    raw_id_fields = ["order", "trade"]
    inlines = [JournalLineInline]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "market",
        "organisation",
        "side",
        "status",
        "limit_price",
        "quantity_wh",
        "filled_wh",
        "time_in_force",
        "slot_start",
    ]
    list_filter = ["market", "side", "status", "product"]
    raw_id_fields = ["bundle", "device", "accept_device", "certificate_account", "clearing"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = ["id", "market", "price", "quantity_wh", "amount_minor", "fee_minor"]
    list_filter = ["market"]
    raw_id_fields = ["buy_order", "sell_order", "bundle"]


@admin.register(MarketOperator)
class MarketOperatorAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "granted_at"]


@admin.register(SlotClearing)
class SlotClearingAdmin(ReadOnlyAdmin):
    list_display = ["id", "market", "slot_start", "price", "volume_wh", "orders_count"]
    list_filter = ["market"]


@admin.register(TradingAgent)
class TradingAgentAdmin(ReadOnlyAdmin):
    list_display = ["id", "organisation", "market", "status", "min_sell_price", "max_buy_price"]
    list_filter = ["status"]
    raw_id_fields = ["organisation", "market", "account", "delegated_by", "revoked_by"]


@admin.register(AgentDecision)
class AgentDecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "slot_start", "action", "side", "quantity_wh", "price"]
    list_filter = ["action"]
    raw_id_fields = ["agent", "order", "cancelled_order"]
