"""Charging API serializers: inputs check shape, services check rules."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from charging.models import (
    Bill,
    ChargingSession,
    ChargingStation,
    DriverToken,
    Receipt,
    ReceiptHour,
    Tariff,
)
from charging.services.stations import ID_TOKEN_TYPES
from registry.api.serializers import StrictInputSerializer


class ChargingTariffInputSerializer(StrictInputSerializer):
    organisation = serializers.IntegerField(help_text="The charge point operator.")
    currency = serializers.CharField(max_length=3)
    elements = serializers.JSONField(help_text="OCPI 2.2.1 TariffElement list.")


class ChargingTariffOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tariff
        fields = ["id", "organisation", "currency", "elements", "created_at"]


class ChargingStationInputSerializer(StrictInputSerializer):
    device = serializers.IntegerField()
    meter_serial = serializers.CharField(max_length=64)
    evse_id = serializers.CharField(max_length=48)
    tariff = serializers.IntegerField()
    ocmf_public_key = serializers.CharField(max_length=400, required=False, default="")


class ChargingStationOutputSerializer(serializers.ModelSerializer):
    organisation = serializers.IntegerField(source="device.organisation_id", read_only=True)
    meter_serial = serializers.CharField(source="meter.serial", read_only=True)

    class Meta:
        model = ChargingStation
        fields = [
            "id",
            "device",
            "organisation",
            "meter_serial",
            "evse_id",
            "tariff",
            "ocmf_public_key",
            "created_at",
        ]


class ChargingTokenInputSerializer(StrictInputSerializer):
    organisation = serializers.IntegerField(help_text="The organisation the sessions bill to.")
    id_token = serializers.CharField(max_length=36)
    type = serializers.ChoiceField(choices=ID_TOKEN_TYPES, help_text="OCPP 2.0.1 IdTokenEnumType.")


class ChargingTokenOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = DriverToken
        fields = ["id", "organisation", "id_token", "type", "created_at"]


class OcmfUploadInputSerializer(StrictInputSerializer):
    ocmf = serializers.CharField(help_text="The signed record: OCMF|{payload}|{signature}.")


class ChargingBillOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bill
        fields = [
            "id",
            "session",
            "tariff",
            "billed_organisation",
            "currency",
            "energy_wh",
            "charging_seconds",
            "energy_minor",
            "time_minor",
            "flat_minor",
            "total_minor",
            "periods",
            "settlement",
            "settlement_reference",
            "settlement_reason",
            "settled_at",
            "billed_at",
        ]


class ChargingSessionOutputSerializer(serializers.ModelSerializer):
    bill = serializers.SerializerMethodField()

    class Meta:
        model = ChargingSession
        fields = [
            "id",
            "station",
            "transaction_id",
            "source",
            "driver_organisation",
            "status",
            "started_at",
            "ended_at",
            "meter_start_wh",
            "meter_last_wh",
            "last_seq_no",
            "bill",
        ]

    @extend_schema_field(OpenApiTypes.INT)
    def get_bill(self, session: ChargingSession) -> int | None:
        bill = getattr(session, "bill", None) if session.status == "billed" else None
        return bill.pk if bill else None


class ChargingReceiptInputSerializer(StrictInputSerializer):
    account = serializers.IntegerField(help_text="Account holding the certificates to retire.")


class ChargingReceiptHourSerializer(serializers.ModelSerializer):
    statement = serializers.SerializerMethodField()
    statement_json = serializers.SerializerMethodField()

    class Meta:
        model = ReceiptHour
        fields = ["hour_start", "energy_wh", "matched_wh", "statement", "statement_json"]

    def _link(self, hour: ReceiptHour, path: str) -> str | None:
        if hour.retirement is None:
            return None
        request = self.context.get("request")
        url = path.format(public_id=hour.retirement.public_id)
        return request.build_absolute_uri(url) if request else url

    @extend_schema_field(OpenApiTypes.URI)
    def get_statement(self, hour: ReceiptHour) -> str | None:
        """The retirement statement (API), with the ledger proofs of its events."""
        return self._link(hour, "/api/v1/statements/{public_id}/")

    @extend_schema_field(OpenApiTypes.URI)
    def get_statement_json(self, hour: ReceiptHour) -> str | None:
        """The statement file for offline verification (python -m ledger.verify)."""
        return self._link(hour, "/statements/{public_id}.json")


class ChargingReceiptOutputSerializer(serializers.ModelSerializer):
    hours = ChargingReceiptHourSerializer(many=True, read_only=True)
    currency = serializers.CharField(source="bill.currency", read_only=True)
    total_minor = serializers.IntegerField(source="bill.total_minor", read_only=True)
    renewable_share = serializers.SerializerMethodField()

    class Meta:
        model = Receipt
        fields = [
            "id",
            "session",
            "bill",
            "account",
            "energy_wh",
            "renewable_wh",
            "renewable_share",
            "currency",
            "total_minor",
            "hours",
            "created_at",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_renewable_share(self, receipt: Receipt) -> str:
        """renewable_wh / energy_wh as a decimal string with 4 places (0 for no energy)."""
        if not receipt.energy_wh:
            return "0.0000"
        return f"{receipt.renewable_wh / receipt.energy_wh:.4f}"
