from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from certificates.crossregistry.common import ACCOUNT_NUMBER
from certificates.models import (
    Bundle,
    CertificateExport,
    CertificateImport,
    IssuanceRequest,
    Retirement,
    StorageOrigin,
    Transfer,
    Withdrawal,
)
from certificates.selectors import bundle_storage_origin
from certificates.services.common import MAX_BATCH_ITEMS, MAX_SAFE_WH
from ledger.api.serializers import CompletenessOutputSerializer
from registry.api.fields import BoundedDateTimeField
from registry.api.serializers import CountryField, FieldsBuiltOnce, StrictInputSerializer

STATUS_NAMES = [label for _value, label in Bundle.Status.choices]


class BundleStatusField(serializers.Field):
    """The bundle status by name ("active", "retired", …); stored as a small integer."""

    def to_representation(self, value: int) -> str:
        return Bundle.Status(value).label

    def to_internal_value(self, data):  # pragma: no cover - output only
        raise NotImplementedError


extend_schema_field({"type": "string", "enum": STATUS_NAMES})(BundleStatusField)


class StorageOriginOutputSerializer(serializers.ModelSerializer):
    """Where a storage certificate's energy came from (EnergyTag storage rules)."""

    class Meta:
        model = StorageOrigin
        fields = [
            "charged_bundle",
            "origin_device",
            "origin_technology_code",
            "origin_energy_source_code",
            "origin_period_start",
            "origin_period_end",
            "charged_at",
            "efficiency_ppm",
        ]


# The output formats of BundleOutputSerializer's fields, for its hand-written representation.
_DATETIME = serializers.DateTimeField()
_DATE = serializers.DateField()
_EMISSION_FACTOR = serializers.DecimalField(max_digits=10, decimal_places=3)


def _date(value) -> str | None:
    return None if value is None else _DATE.to_representation(value)


def _emission_factor(value) -> str | None:
    return None if value is None else _EMISSION_FACTOR.to_representation(value)


class BundleOutputSerializer(serializers.ModelSerializer):
    """A certificate bundle with the attributes EECS, I-REC and EnergyTag carry."""

    status = BundleStatusField(read_only=True)
    volume_wh = serializers.IntegerField(read_only=True)
    account_number = serializers.CharField(source="account.number", read_only=True)
    organisation = serializers.IntegerField(source="account.organisation_id", read_only=True)
    organisation_name = serializers.CharField(
        source="account.organisation.legal_name", read_only=True
    )
    device_name = serializers.CharField(source="issuance.device_name", read_only=True)
    technology_code = serializers.CharField(source="issuance.technology_code", read_only=True)
    energy_source_code = serializers.CharField(source="issuance.energy_source_code", read_only=True)
    grid_area = serializers.CharField(source="issuance.grid_area_code", read_only=True)
    country = serializers.CharField(source="issuance.country", read_only=True)
    capacity_w = serializers.IntegerField(source="issuance.capacity_w", read_only=True)
    commissioning_date = serializers.DateField(source="issuance.commissioning_date", read_only=True)
    support = serializers.CharField(source="issuance.support", read_only=True)
    emission_factor_g_per_kwh = serializers.DecimalField(
        source="issuance.emission_factor_g_per_kwh",
        max_digits=10,
        decimal_places=3,
        read_only=True,
        allow_null=True,
    )
    is_storage = serializers.BooleanField(source="issuance.is_storage", read_only=True)
    issued_at = serializers.DateTimeField(source="issuance.issued_at", read_only=True)
    issuing_body = serializers.IntegerField(source="issuance.issuing_body_id", read_only=True)
    registry_origin = serializers.SerializerMethodField()
    storage_origin = serializers.SerializerMethodField(
        help_text="For a storage certificate (is_storage): what charged the battery."
    )

    class Meta:
        model = Bundle
        fields = [
            "id",
            "registry_origin",
            "device",
            "device_name",
            "unit_start",
            "unit_end",
            "volume_wh",
            "period_start",
            "period_end",
            "status",
            "account",
            "account_number",
            "organisation",
            "organisation_name",
            "issuance",
            "issued_at",
            "issuing_body",
            "technology_code",
            "energy_source_code",
            "grid_area",
            "country",
            "capacity_w",
            "commissioning_date",
            "support",
            "emission_factor_g_per_kwh",
            "is_storage",
            "storage_origin",
            "expires_on",
            "parent",
        ]

    def to_representation(self, bundle: Bundle) -> dict:
        """The fields above, written out: building this ModelSerializer's 27 fields cost
        about 0.9 ms a read, more than the rest of the serialisation (measured, benchmarks/
        README.md "One-bundle read"). The declared fields still describe the body to the
        schema; tests/certificates/test_bundle_read.py checks both give the same body."""
        issuance = bundle.issuance
        account = bundle.account
        origin = self.get_storage_origin(bundle) if issuance.is_storage else None
        return {
            "id": bundle.id,
            "registry_origin": settings.REGISTRY_ORIGIN,
            "device": bundle.device_id,
            "device_name": issuance.device_name,
            "unit_start": bundle.unit_start,
            "unit_end": bundle.unit_end,
            "volume_wh": bundle.unit_end - bundle.unit_start,
            "period_start": _DATETIME.to_representation(bundle.period_start),
            "period_end": _DATETIME.to_representation(bundle.period_end),
            "status": Bundle.Status(bundle.status).label,
            "account": bundle.account_id,
            "account_number": account.number,
            "organisation": account.organisation_id,
            "organisation_name": account.organisation.legal_name,
            "issuance": bundle.issuance_id,
            "issued_at": _DATETIME.to_representation(issuance.issued_at),
            "issuing_body": issuance.issuing_body_id,
            "technology_code": issuance.technology_code,
            "energy_source_code": issuance.energy_source_code,
            "grid_area": issuance.grid_area_code,
            "country": issuance.country,
            "capacity_w": issuance.capacity_w,
            "commissioning_date": _date(issuance.commissioning_date),
            "support": issuance.support,
            "emission_factor_g_per_kwh": _emission_factor(issuance.emission_factor_g_per_kwh),
            "is_storage": issuance.is_storage,
            "storage_origin": origin,
            "expires_on": _date(bundle.expires_on),
            "parent": bundle.parent_id,
        }

    def get_registry_origin(self, bundle: Bundle) -> str:
        return settings.REGISTRY_ORIGIN

    @extend_schema_field(StorageOriginOutputSerializer(allow_null=True))
    def get_storage_origin(self, bundle: Bundle) -> dict | None:
        origin = bundle_storage_origin(bundle=bundle)
        return None if origin is None else StorageOriginOutputSerializer(origin).data


def _volume_wh(help_text: str) -> serializers.IntegerField:
    """An optional positive volume; none (or null) means the whole bundle."""
    return serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=MAX_SAFE_WH,
        help_text=help_text,
    )


class TransferCreateInputSerializer(FieldsBuiltOnce, StrictInputSerializer):
    to_account = serializers.CharField(max_length=32, help_text="The receiving account number.")
    volume_wh = _volume_wh("Wh to move (a positive integer); leave out to move the whole bundle.")
    require_acceptance = serializers.BooleanField(
        default=False,
        help_text="Across organisations: wait for the receiver to accept (units are reserved).",
    )


class BatchItemInputSerializer(StrictInputSerializer):
    bundle = serializers.IntegerField()
    volume_wh = _volume_wh("Wh to move (a positive integer); leave out for the whole bundle.")


class TransferBatchInputSerializer(StrictInputSerializer):
    to_account = serializers.CharField(max_length=32, help_text="The receiving account number.")
    items = BatchItemInputSerializer(
        many=True,
        allow_empty=False,
        max_length=MAX_BATCH_ITEMS,
        help_text="Bundles (and volumes) to move.",
    )
    require_acceptance = serializers.BooleanField(default=False)


class TransferOutputSerializer(FieldsBuiltOnce, serializers.Serializer):
    """A transfer. A plain Serializer: on the transfer path a ModelSerializer's per-call field
    introspection cost about a millisecond (measured)."""

    id = serializers.IntegerField(read_only=True)
    bundle = serializers.IntegerField(source="bundle_id", help_text="The bundle that moved.")
    source_bundle = serializers.IntegerField(
        source="source_id",
        help_text="The bundle the units were taken from (the split parent, or `bundle` itself).",
    )
    volume_wh = serializers.IntegerField()
    from_account = serializers.IntegerField(source="from_account_id")
    from_account_number = serializers.CharField(source="from_account.number")
    to_account = serializers.IntegerField(source="to_account_id")
    to_account_number = serializers.CharField(source="to_account.number")
    status = serializers.ChoiceField(choices=Transfer.Status.choices)
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class ClaimInputMixin(serializers.Serializer):
    # Every retirement names its beneficiary (the service refuses one without).
    beneficiary_name = serializers.CharField(max_length=200)
    beneficiary_country = CountryField()
    consumption_start = BoundedDateTimeField()
    consumption_end = BoundedDateTimeField()
    location = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    purpose = serializers.ChoiceField(choices=Retirement.Purpose.choices)


class RetireBundleInputSerializer(FieldsBuiltOnce, ClaimInputMixin, StrictInputSerializer):
    volume_wh = _volume_wh(
        "Wh to retire (a positive integer); leave out to retire the whole bundle."
    )


class RetireBatchInputSerializer(ClaimInputMixin, StrictInputSerializer):
    items = BatchItemInputSerializer(many=True, allow_empty=False, max_length=MAX_BATCH_ITEMS)


class RetirementOutputSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    account_number = serializers.CharField(source="account.number", read_only=True)
    organisation_name = serializers.CharField(
        source="account.organisation.legal_name", read_only=True
    )
    bundles = serializers.SerializerMethodField()
    statement_url = serializers.SerializerMethodField()
    statement_api_url = serializers.SerializerMethodField()

    class Meta:
        model = Retirement
        fields = [
            "public_id",
            "account",
            "account_number",
            "organisation_name",
            "retired_at",
            "volume_wh",
            "beneficiary_name",
            "beneficiary_country",
            "consumption_start",
            "consumption_end",
            "location",
            "purpose",
            "claim_salt",
            "claim_commitment",
            "bundles",
            "statement_url",
            "statement_api_url",
        ]

    def get_bundles(self, retirement: Retirement) -> list[int]:
        return [item.bundle_id for item in retirement.items.all()]

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_statement_url(self, retirement: Retirement) -> str:
        return self._absolute(reverse("certificates:statement", args=[retirement.public_id]))

    def get_statement_api_url(self, retirement: Retirement) -> str:
        return self._absolute(reverse("statement-detail", args=[retirement.public_id]))


class IssuanceRequestInputSerializer(StrictInputSerializer):
    device = serializers.IntegerField()
    period_start = BoundedDateTimeField(help_text="UTC; whole hours for hourly issuance.")
    period_end = BoundedDateTimeField()
    granularity = serializers.ChoiceField(
        choices=IssuanceRequest.Granularity.choices, default=IssuanceRequest.Granularity.HOUR
    )


class IssuanceRequestOutputSerializer(serializers.ModelSerializer):
    issuance = serializers.SerializerMethodField()
    issued_wh = serializers.SerializerMethodField()

    class Meta:
        model = IssuanceRequest
        fields = [
            "id",
            "device",
            "organisation",
            "period_start",
            "period_end",
            "granularity",
            "status",
            "created_at",
            "decided_at",
            "reason",
            "issuance",
            "issued_wh",
        ]

    def _issuance(self, req: IssuanceRequest):
        try:
            return req.issuance
        except IssuanceRequest.issuance.RelatedObjectDoesNotExist:
            return None

    def get_issuance(self, req: IssuanceRequest) -> int | None:
        issuance = self._issuance(req)
        return issuance.pk if issuance is not None else None

    def get_issued_wh(self, req: IssuanceRequest) -> int | None:
        issuance = self._issuance(req)
        return issuance.volume_wh if issuance is not None else None


class RejectInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Required: why.")


class WithdrawalInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Required: why.")
    bundles = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    device = serializers.IntegerField(required=False, allow_null=True, default=None)
    period_start = BoundedDateTimeField(required=False, allow_null=True, default=None)
    period_end = BoundedDateTimeField(required=False, allow_null=True, default=None)


class WithdrawalItemOutputSerializer(serializers.Serializer):
    bundle = serializers.IntegerField(source="bundle_id")
    previous_status = BundleStatusField()


class WithdrawalOutputSerializer(serializers.ModelSerializer):
    items = WithdrawalItemOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Withdrawal
        fields = ["id", "reason", "withdrawn_at", "volume_wh", "items"]


class DeviceWithdrawalInputSerializer(StrictInputSerializer):
    device = serializers.IntegerField(help_text="The device whose certificates are withdrawn.")
    period_start = BoundedDateTimeField(help_text="Production from (inclusive).")
    period_end = BoundedDateTimeField(help_text="Production until (exclusive).")
    reason = serializers.CharField(max_length=2000, help_text="Required: why.")
    dry_run = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Check and list what would be withdrawn, flagged and skipped; write nothing.",
    )


class WithdrawnBundleOutputSerializer(serializers.Serializer):
    bundle = serializers.IntegerField(source="pk")
    account = serializers.CharField(source="account.number", help_text="The holder's account.")
    status = BundleStatusField(help_text="Before the withdrawal.")
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    volume_wh = serializers.IntegerField()


class DeviceWithdrawalOutputSerializer(serializers.Serializer):
    device = serializers.IntegerField(source="device_id")
    device_name = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    withdrawal = serializers.IntegerField(
        source="withdrawal.pk", allow_null=True, help_text="The withdrawal; null on a dry run."
    )
    volume_wh = serializers.IntegerField(help_text="Withdrawn plus flagged.")
    withdrawn = WithdrawnBundleOutputSerializer(
        many=True, help_text="Active, reserved or expired: now withdrawn."
    )
    flagged = WithdrawnBundleOutputSerializer(
        many=True, help_text="Retired or exported: status kept, flagged by the withdrawal."
    )
    skipped = WithdrawnBundleOutputSerializer(many=True, help_text="Withdrawn already.")


class TransferPolicyInputSerializer(StrictInputSerializer):
    require_acceptance = serializers.BooleanField()


class TransferPolicyOutputSerializer(serializers.Serializer):
    organisation = serializers.IntegerField(source="organisation_id")
    require_acceptance = serializers.BooleanField()


class HistoryStepOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    at = serializers.CharField()
    actor = serializers.CharField()
    data = serializers.DictField()
    event_b64 = serializers.CharField(help_text="The canonical event bytes (the Merkle leaf).")
    proof = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="Inclusion proof in the checkpoint's tree; null until a checkpoint covers it.",
    )


class VerifyBundleOutputSerializer(serializers.Serializer):
    checkpoint = serializers.CharField(allow_null=True)
    entries = serializers.ListField(child=serializers.DictField())
    completeness = CompletenessOutputSerializer(
        allow_null=True, help_text="Proof that no entry of these subjects was left out."
    )


class ExportCreateInputSerializer(StrictInputSerializer):
    destination = serializers.CharField(
        max_length=255, help_text="The partner registry's origin (see /api/v1/federation/peers/)."
    )
    destination_account = serializers.RegexField(
        ACCOUNT_NUMBER.pattern,
        max_length=64,
        help_text="The receiving account's number at that registry.",
    )
    volume_wh = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=MAX_SAFE_WH,
        help_text="Wh to export (a positive integer); leave out to export the whole bundle.",
    )


class ExportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.UUIDField()
    bundle = serializers.IntegerField(source="bundle_id", help_text="The exported units.")
    source_bundle = serializers.IntegerField(source="source_id")
    from_account = serializers.IntegerField(source="from_account_id")
    destination = serializers.CharField(source="destination.origin")
    destination_account = serializers.CharField()
    volume_wh = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CertificateExport.Status.choices)
    export_seq = serializers.IntegerField(
        allow_null=True, help_text="The certificate.exported ledger entry, once numbered."
    )
    created_at = serializers.DateTimeField()
    delivery_attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    settled_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(help_text="The destination's refusal code, if returned.")
    destination_reference = serializers.DictField(
        help_text="The import at the destination: its id, bundle and history URL."
    )
    receipt = serializers.CharField(help_text="The destination's signed receipt (a note).")


class ImportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.UUIDField()
    origin = serializers.CharField(help_text="The exporting registry.")
    export_seq = serializers.IntegerField()
    export_leaf_hash = serializers.CharField()
    status = serializers.ChoiceField(choices=CertificateImport.Status.choices)
    reason = serializers.CharField()
    detail = serializers.CharField()
    bundle = serializers.IntegerField(source="bundle_id", allow_null=True)
    account = serializers.CharField(source="account.number", allow_null=True, default=None)
    export_data = serializers.DictField(help_text="The exporter's certificate.exported event.")
    checkpoint = serializers.CharField(help_text="The exporter's anchored checkpoint.")
    provenance = serializers.ListField(
        child=serializers.DictField(),
        help_text="Entries of each registry the units came through, with inclusion proofs.",
    )
    receipt = serializers.CharField()
    created_at = serializers.DateTimeField()


class CrossRegistryOutputSerializer(serializers.Serializer):
    imported = ImportOutputSerializer(
        allow_null=True, help_text="How the units of the chain's root arrived here."
    )
    exported = ExportOutputSerializer(allow_null=True, help_text="Where this bundle went.")


class HistoryOutputSerializer(serializers.Serializer):
    bundle_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="From the issued root down to this bundle."
    )
    children = serializers.ListField(child=serializers.IntegerField())
    checkpoint = serializers.CharField(source="checkpoint_note", allow_null=True)
    checkpoint_size = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Events not numbered yet (not listed).")
    steps = HistoryStepOutputSerializer(many=True)
    cross_registry = serializers.SerializerMethodField(
        help_text="The other registries' part of the history (import provenance, export)."
    )
    verify = serializers.SerializerMethodField(
        help_text="Save as a file for `python -m ledger.verify history --file`."
    )

    @extend_schema_field(CrossRegistryOutputSerializer)
    def get_cross_registry(self, history) -> dict:
        return CrossRegistryOutputSerializer(
            {"imported": history.imported, "exported": history.exported}
        ).data

    @extend_schema_field(VerifyBundleOutputSerializer)
    def get_verify(self, history) -> dict:
        return history.verify_bundle()


class UnitTraceOutputSerializer(serializers.Serializer):
    device = serializers.IntegerField()
    unit = serializers.IntegerField()
    bundle = BundleOutputSerializer()
    history = HistoryOutputSerializer()


class StatementOutputSerializer(serializers.Serializer):
    """A retirement statement; also a `ledger.verify history --file` bundle as it stands."""

    checkpoint = serializers.CharField(allow_null=True)
    entries = serializers.ListField(child=serializers.DictField())
    completeness = CompletenessOutputSerializer(
        allow_null=True, help_text="Proof that no entry of these subjects was left out."
    )
    retirement = RetirementOutputSerializer()
    certificates = BundleOutputSerializer(many=True)
    claim = serializers.DictField(help_text="The claim and salt: SHA-256 of it is the commitment.")
    withdrawn = serializers.BooleanField(
        help_text="True when the issuing body has since withdrawn any of these certificates."
    )
    history = HistoryStepOutputSerializer(many=True)
    verifier_key = serializers.CharField()
    verify_command = serializers.CharField()
