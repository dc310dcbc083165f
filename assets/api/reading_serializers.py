"""The readings API's serializers: signed interval and counter rows, the CSV upload, batches,
their review, readings and their ledger proofs."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from assets.api.serializers import ENERGY_MAX, MeterSerialField
from assets.models import Reading, ReadingBatch
from assets.validation import SERIAL_FORMAT, b64
from registry.api.fields import BoundedDateTimeField
from registry.api.serializers import InputSerializer, StrictInputSerializer
from registry.datetimes import DATE_TIME
from registry.text_patterns import SPACE

# assets.validation.decode_signature: 64 bytes as 128 hex digits or as padded base64.
SIGNATURE_PATTERN = f"^[{SPACE}]*(?:[0-9A-Fa-f]{{128}}|[A-Za-z0-9+/]{{86}}==)[{SPACE}]*$"


@extend_schema_field({"type": "string", "pattern": SIGNATURE_PATTERN})
class SignatureField(serializers.CharField):
    """An Ed25519 signature, base64 or hex."""


class ReadingIntervalInputSerializer(StrictInputSerializer):
    """One row of a JSON upload (the streaming parser's rules, assets.readings_io): the
    energy of one interval."""

    meter = MeterSerialField(help_text="Meter serial.")
    start = BoundedDateTimeField(help_text="Interval start (with offset).")
    end = BoundedDateTimeField(help_text="Interval end = start + interval.")
    wh = serializers.IntegerField(min_value=0, max_value=ENERGY_MAX, help_text="Energy in Wh.")
    signature = SignatureField(
        required=False, help_text="Ed25519 over the canonical bytes, base64 or hex."
    )


class ReadingCounterInputSerializer(StrictInputSerializer):
    """One row of a JSON upload: a cumulative counter reading."""

    meter = MeterSerialField(help_text="Meter serial.")
    time = BoundedDateTimeField(help_text="Counter reading time (with offset).")
    counter_wh = serializers.IntegerField(
        min_value=0, max_value=ENERGY_MAX, help_text="Counter in Wh."
    )
    signature = SignatureField(
        required=False, help_text="Ed25519 over the canonical bytes, base64 or hex."
    )


def _csv_pattern() -> str:
    """A CSV upload (assets.readings_io): a header, then at least one row of that shape.

    Narrower than the parser (which also takes quoting, blank lines, a byte-order mark and
    a last line without its newline): every text matching it has a well-formed shape."""
    serial = SERIAL_FORMAT.pattern.strip("^$")
    time = DATE_TIME.removeprefix("^").removesuffix("$")
    wh = r"(?:0|[1-9][0-9]{0,14})"
    signature = SIGNATURE_PATTERN.removeprefix(f"^[{SPACE}]*").removesuffix(f"[{SPACE}]*$")
    shapes = []
    for header, row in (
        ("meter,start,end,wh", f"{serial},{time},{time},{wh}"),
        ("meter,time,counter_wh", f"{serial},{time},{wh}"),
    ):
        shapes.append(f"{header}\\r?\\n(?:{row}\\r?\\n)+")
        shapes.append(f"{header},signature\\r?\\n(?:{row},{signature}\\r?\\n)+")
    return "^(?:" + "|".join(shapes) + ")$"


READINGS_CSV_SCHEMA = {"type": "string", "minLength": 20, "pattern": _csv_pattern()}

# A JSON upload is a list of rows, each an interval reading or a counter reading.
ReadingInputSerializer = PolymorphicProxySerializer(
    component_name="ReadingInput",
    serializers=[ReadingIntervalInputSerializer, ReadingCounterInputSerializer],
    resource_type_field_name=None,
    many=True,
    allow_empty=False,
)


class ReadingUploadInputSerializer(InputSerializer):
    file = serializers.FileField(help_text="CSV (or .json) file of readings.")


class ReadingRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based data row (CSV header not counted).")
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ReadingBatchOutputSerializer(serializers.ModelSerializer):
    meter = serializers.SlugRelatedField(
        slug_field="serial",
        read_only=True,
        allow_null=True,
        help_text="Meter serial; null when the batch holds readings of several meters.",
    )
    ledger_subject = serializers.CharField(read_only=True)

    class Meta:
        model = ReadingBatch
        fields = [
            "id",
            "organisation",
            "device",
            "meter",
            "status",
            "size",
            "total_wh",
            "first_start",
            "last_end",
            "merkle_root",
            "review_reasons",
            "counter_updates",
            "review_note",
            "reviewed_at",
            "created_at",
            "ledger_subject",
        ]


class ReadingSubmissionOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["accepted", "held", "unchanged"],
        help_text="unchanged: every row was a reading recorded already (no new batch).",
    )
    rows = serializers.IntegerField()
    stored = serializers.IntegerField(help_text="Readings in the new batch.")
    duplicates = serializers.IntegerField(help_text="Identical to recorded readings; skipped.")
    baselines = serializers.IntegerField(help_text="First counter values (no interval yet).")
    error_count = serializers.IntegerField(help_text="Rows left out (accept_valid only).")
    errors = ReadingRowErrorSerializer(many=True)
    batch = ReadingBatchOutputSerializer(allow_null=True)


class ReadingOutputSerializer(serializers.ModelSerializer):
    meter = serializers.SlugRelatedField(slug_field="serial", read_only=True)
    signature = serializers.SerializerMethodField(help_text="Base64, or null when unsigned.")

    class Meta:
        model = Reading
        fields = [
            "id",
            "device",
            "meter",
            "batch",
            "start",
            "end",
            "wh",
            "signature",
            "is_signed",
            "index_in_batch",
            "counter_wh",
            "issued_at",
        ]

    def get_signature(self, reading: Reading) -> str | None:
        return b64(reading.signature) if reading.signature is not None else None


class ReadingLedgerRefSerializer(serializers.Serializer):
    subject = serializers.CharField(help_text='"reading_batch:<id>"')
    kind = serializers.CharField()
    pending_event_id = serializers.IntegerField(allow_null=True)


class ReadingProofOutputSerializer(serializers.Serializer):
    reading_id = serializers.IntegerField()
    canonical = serializers.CharField(help_text="The leaf data: RFC 8785 JSON of the reading.")
    leaf_hash = serializers.CharField(help_text="SHA-256(0x00 || canonical), hex.")
    index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162, hex.")
    merkle_root = serializers.CharField()
    batch_id = serializers.IntegerField()
    ledger = ReadingLedgerRefSerializer()


class BatchReviewInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class BatchRejectInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Required: why it is rejected.")
