import functools
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from certificates.models import Retirement
from market.engine_io import MAX_AGE_DAYS
from market.models import (
    JournalLine,
    Market,
    Order,
    SettlementAccount,
    SlotClearing,
    SlotSettlement,
    SlotSettlementLine,
    Trade,
)
from market.services.money import MAX_AMOUNT
from market.services.orders import MAX_PRICE, MAX_QUANTITY_WH
from registry.api.fields import BoundedDateTimeField
from registry.api.query import ID_MAX
from registry.api.serializers import (
    CountryField,
    CurrencyField,
    FieldsBuiltOnce,
    StrictInputSerializer,
)
from registry.countries import COUNTRY_CHOICES


class MarketOutputSerializer(serializers.ModelSerializer):
    """A market: what it trades, its currency, price band (minor units per MWh) and fee."""

    class Meta:
        model = Market
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "matching",
            "currency",
            "operator",
            "fee_bps",
            "price_min",
            "price_max",
            "min_quantity_wh",
            "slot_minutes",
            "gate_closure_minutes",
            "grid_area",
            "fallback_buy_price",
            "fallback_sell_price",
            "grid_fee_per_mwh",
            "settlement_grace_minutes",
            "status",
            "created_at",
        ]


class PriceLevelSerializer(serializers.Serializer):
    price = serializers.IntegerField(help_text="Minor units per MWh.")
    quantity_wh = serializers.IntegerField()
    orders = serializers.IntegerField()


class BookOutputSerializer(serializers.Serializer):
    """The open orders aggregated by price, best first on each side."""

    market = serializers.IntegerField(source="market.pk")
    currency = serializers.CharField(source="market.currency")
    bids = PriceLevelSerializer(many=True)
    offers = PriceLevelSerializer(many=True)


class CriteriaInputSerializer(StrictInputSerializer):
    """What a bid accepts; leave a field out to accept any."""

    technology_code = serializers.CharField(required=False, max_length=32)
    energy_source_code = serializers.CharField(required=False, max_length=32)
    country = CountryField(required=False)
    grid_area_code = serializers.CharField(required=False, max_length=32)
    device = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX)
    period_from = BoundedDateTimeField(required=False)
    period_to = BoundedDateTimeField(required=False)
    production_hour = BoundedDateTimeField(
        required=False, help_text='"Same hour": only certificates of the hour starting here.'
    )
    max_age_days = serializers.IntegerField(required=False, min_value=0, max_value=MAX_AGE_DAYS)


class RetireOnDeliveryInputSerializer(StrictInputSerializer):
    """An energy bid's retirement claim: the certificates delivered with its energy are
    retired for the slot's consumption (the consumption period is the slot)."""

    beneficiary_name = serializers.CharField(max_length=200)
    beneficiary_country = serializers.ChoiceField(choices=COUNTRY_CHOICES)
    purpose = serializers.ChoiceField(choices=Retirement.Purpose.choices)


class RetireOnDeliveryOutputSerializer(serializers.Serializer):
    beneficiary_name = serializers.CharField(source="retire_beneficiary_name")
    beneficiary_country = serializers.CharField(source="retire_beneficiary_country")
    purpose = serializers.CharField(source="retire_purpose")


class OrderCreateInputSerializer(FieldsBuiltOnce, StrictInputSerializer):
    market = serializers.IntegerField()
    side = serializers.ChoiceField(choices=Order.Side.choices)
    limit_price = serializers.IntegerField(
        min_value=0, max_value=MAX_PRICE, help_text="Minor units of the currency per MWh."
    )
    quantity_wh = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_QUANTITY_WH,
        help_text="Bids: required. Offers: empty = the bundle.",
    )
    account = serializers.IntegerField(
        required=False,
        help_text="Bids: your trading account that receives the units. Energy orders (both "
        "sides): your trading account that receives or produced the energy's certificates.",
    )
    bundle = serializers.IntegerField(required=False, help_text="Offers: the bundle you sell.")
    time_in_force = serializers.ChoiceField(choices=Order.TimeInForce.choices, default="gtc")
    min_fill_wh = serializers.IntegerField(required=False, default=0)
    criteria = CriteriaInputSerializer(required=False)
    slot_start = BoundedDateTimeField(
        required=False,
        help_text="Energy markets: the delivery slot's start (a whole slot, before gate closure).",
    )
    retire_on_delivery = RetireOnDeliveryInputSerializer(
        required=False,
        help_text="Energy bids only: retire the certificates delivered with the energy for "
        "this beneficiary, the slot being the consumption period.",
    )


class OrderAmendInputSerializer(StrictInputSerializer):
    min_properties = 1  # the service refuses an amendment that changes nothing
    limit_price = serializers.IntegerField(required=False, min_value=0, max_value=MAX_PRICE)
    quantity_wh = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_QUANTITY_WH, help_text="The new total quantity."
    )


class OrderOutputSerializer(serializers.ModelSerializer):
    """An order, its fill and what it holds in escrow."""

    open_wh = serializers.IntegerField(read_only=True)
    criteria = serializers.SerializerMethodField()
    retire_on_delivery = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "market",
            "organisation",
            "side",
            "product",
            "slot_start",
            "clearing",
            "status",
            "time_in_force",
            "limit_price",
            "quantity_wh",
            "filled_wh",
            "open_wh",
            "min_fill_wh",
            "seq",
            "settlement_account",
            "certificate_account",
            "bundle",
            "reserved_minor",
            "cancel_reason",
            "technology_code",
            "energy_source_code",
            "country",
            "grid_area_code",
            "device",
            "period_start",
            "period_end",
            "criteria",
            "retire_on_delivery",
            "created_at",
            "updated_at",
            "closed_at",
        ]

    @extend_schema_field(RetireOnDeliveryOutputSerializer(allow_null=True))
    def get_retire_on_delivery(self, order: Order) -> dict | None:
        if not order.retire_on_delivery:
            return None
        return RetireOnDeliveryOutputSerializer(order).data

    def get_criteria(self, order: Order) -> dict | None:
        if order.side != Order.Side.BUY:
            return None
        return {
            "technology_code": order.accept_technology_code or None,
            "energy_source_code": order.accept_energy_source_code or None,
            "country": order.accept_country or None,
            "grid_area_code": order.accept_grid_area_code or None,
            "device": order.accept_device_id,
            "period_from": order.accept_period_from,
            "period_to": order.accept_period_to,
            "max_age_days": order.max_age_days,
        }


class TradeOutputSerializer(serializers.ModelSerializer):
    """A fill: price per MWh, Wh, what the buyer paid and the fee, the delivered bundle."""

    class Meta:
        model = Trade
        fields = [
            "id",
            "market",
            "buy_order",
            "sell_order",
            "aggressor",
            "price",
            "quantity_wh",
            "amount_minor",
            "fee_minor",
            "bundle",
            "created_at",
        ]


class PlacementOutputSerializer(serializers.Serializer):
    """The order after placement (or amendment) and the trades it made at once."""

    order = OrderOutputSerializer()
    trades = TradeOutputSerializer(many=True)


def placement_data(placement: Any) -> dict:
    """`PlacementOutputSerializer(placement).data`, with the fields built once per process.

    DRF builds a ModelSerializer's fields again for every serializer instance (model
    introspection): about 5 ms of each order placed over HTTP. These fields keep no
    per-call state (no request context, no hyperlinks), so one set serves every call and
    thread (tests/market/test_api.py checks the output is the serializer's)."""
    return _placement_serializer().to_representation(placement)


@functools.cache
def _placement_serializer() -> PlacementOutputSerializer:
    serializer = PlacementOutputSerializer()
    serializer.fields["order"].fields  # noqa: B018 - built and bound here, once
    serializer.fields["trades"].child.fields  # noqa: B018
    return serializer


class SettlementAccountOutputSerializer(serializers.ModelSerializer):
    """An organisation's money in one currency, in minor units."""

    class Meta:
        model = SettlementAccount
        fields = ["id", "organisation", "currency", "available", "reserved", "created_at"]


class JournalLineOutputSerializer(serializers.ModelSerializer):
    """One line of the account's journal; the entry's lines sum to zero."""

    entry = serializers.IntegerField(source="entry_id")
    kind = serializers.CharField(source="entry.kind")
    order = serializers.IntegerField(source="entry.order_id", allow_null=True)
    trade = serializers.IntegerField(source="entry.trade_id", allow_null=True)
    created_at = serializers.DateTimeField(source="entry.created_at")

    class Meta:
        model = JournalLine
        fields = ["id", "entry", "kind", "bucket", "amount", "order", "trade", "created_at"]


class MoneyMovementInputSerializer(StrictInputSerializer):
    organisation = serializers.IntegerField()
    currency = CurrencyField()
    amount_minor = serializers.IntegerField(
        min_value=1, max_value=MAX_AMOUNT, help_text="Positive, minor units (cents)."
    )
    reference = serializers.CharField(
        max_length=200, help_text="The bank transfer's reference (kept here, hashed in the ledger)."
    )


class MoneyMovementOutputSerializer(serializers.Serializer):
    """A recorded deposit or withdrawal and the organisation's balance after it."""

    journal_entry = serializers.IntegerField(source="entry.pk")
    kind = serializers.CharField(source="entry.kind")
    settlement_account = SettlementAccountOutputSerializer(source="account")


class ClearingAllocationSerializer(serializers.ModelSerializer):
    """One order of the slot: its limit, quantity and the Wh cleared (no party shown)."""

    order = serializers.IntegerField(source="pk")
    cleared_wh = serializers.IntegerField(source="filled_wh")

    class Meta:
        model = Order
        fields = ["order", "side", "limit_price", "quantity_wh", "cleared_wh", "status"]


class SlotClearingOutputSerializer(serializers.ModelSerializer):
    """A delivery slot cleared at one price (empty when nothing crossed), with every order
    that was in it and the Wh it cleared."""

    allocations = ClearingAllocationSerializer(source="orders", many=True, read_only=True)

    class Meta:
        model = SlotClearing
        fields = [
            "id",
            "market",
            "slot_start",
            "price",
            "volume_wh",
            "orders_count",
            "cleared_at",
            "allocations",
        ]


class SettlementLineOutputSerializer(serializers.ModelSerializer):
    """One cleared order's delivery (no party shown): its cleared Wh split into delivered,
    surplus and shortfall, and the money (minor units) it paid or received."""

    order = serializers.IntegerField(source="order_id")
    retirement = serializers.UUIDField(
        source="retirement.public_id",
        allow_null=True,
        read_only=True,
        help_text="A bid retiring on delivery: its retirement's statement id "
        "(/api/v1/statements/<id>/), null otherwise.",
    )

    class Meta:
        model = SlotSettlementLine
        fields = [
            "order",
            "side",
            "cleared_wh",
            "metered_wh",
            "delivered_wh",
            "surplus_wh",
            "shortfall_wh",
            "amount_minor",
            "released_minor",
            "charge_minor",
            "surplus_paid_minor",
            "uncollected_minor",
            "certificates_wh",
            "retirement",
        ]


class SlotSettlementOutputSerializer(serializers.ModelSerializer):
    """A cleared slot's delivery settlement: `waiting` for readings (with the organisations
    whose readings are missing) or `settled` (reason `fallback_missing_readings` when it
    settled after the grace period with missing readings counted 0 Wh)."""

    missing_organisations = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    lines = SettlementLineOutputSerializer(many=True, read_only=True)

    class Meta:
        model = SlotSettlement
        fields = [
            "id",
            "clearing",
            "market",
            "slot_start",
            "status",
            "reason",
            "missing_organisations",
            "cleared_wh",
            "delivered_wh",
            "buyers_paid_minor",
            "sellers_received_minor",
            "grid_fee_minor",
            "released_minor",
            "shortfall_charged_minor",
            "surplus_paid_minor",
            "uncollected_minor",
            "certificates_pending_wh",
            "created_at",
            "settled_at",
            "lines",
        ]
