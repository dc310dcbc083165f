import zoneinfo
from decimal import ROUND_HALF_EVEN, Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from assets import codes
from assets.models import Device, DeviceOwner, GridArea, Meter, MeterKey
from assets.services.common import MAX_SAFE_INTEGER
from assets.validation import EIC_FORMAT, SERIAL_FORMAT, SHARE_FORMAT
from registry.api.fields import BoundedDateTimeField
from registry.api.serializers import CountryField, StrictInputSerializer
from registry.text_patterns import SPACE

# Energy and counters are below 2**53 (exact in JSON numbers everywhere).
ENERGY_MAX = MAX_SAFE_INTEGER - 1

# -- grid areas ----------------------------------------------------------------------------


class GridAreaOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = GridArea
        fields = [
            "id",
            "code",
            "name",
            "country",
            "time_zone",
            "emission_factor_g_per_kwh",
            "expiry_months",
            "created_at",
            "updated_at",
        ]


def _time_zone(**kwargs) -> serializers.ChoiceField:
    """An IANA time zone the server knows (an enum in the schema)."""
    return serializers.ChoiceField(
        choices=sorted(zoneinfo.available_timezones()),
        help_text="IANA, e.g. Europe/Berlin.",
        **kwargs,
    )


class GridAreaCreateInputSerializer(StrictInputSerializer):
    code = serializers.RegexField(
        EIC_FORMAT.pattern, help_text="EIC code (check character verified: eic_check_invalid)."
    )
    name = serializers.CharField(max_length=200)
    country = CountryField()
    time_zone = _time_zone()
    emission_factor_g_per_kwh = serializers.DecimalField(
        max_digits=9, decimal_places=3, min_value=0
    )
    expiry_months = serializers.IntegerField(min_value=1, max_value=600, default=12)


class GridAreaUpdateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    time_zone = _time_zone(required=False)
    emission_factor_g_per_kwh = serializers.DecimalField(
        max_digits=9, decimal_places=3, min_value=0, required=False
    )
    expiry_months = serializers.IntegerField(min_value=1, max_value=600, required=False)


# -- devices -------------------------------------------------------------------------------


class DeviceOwnerOutputSerializer(serializers.ModelSerializer):
    organisation_name = serializers.CharField(source="organisation.legal_name", read_only=True)
    account_number = serializers.CharField(source="account.number", read_only=True)
    share = serializers.SerializerMethodField(help_text='Exact fraction, e.g. "1/3".')

    class Meta:
        model = DeviceOwner
        fields = [
            "organisation",
            "organisation_name",
            "account",
            "account_number",
            "share",
            "share_numerator",
            "share_denominator",
        ]

    def get_share(self, owner: DeviceOwner) -> str:
        return f"{owner.share_numerator}/{owner.share_denominator}"


_DEVICE_FIELDS = [
    "id",
    "name",
    "organisation",
    "organisation_name",
    "grid_area",
    "grid_area_code",
    "country",
    "technology_code",
    "technology_label",
    "energy_source_code",
    "energy_source_label",
    "capacity_w",
    "commissioning_date",
    "latitude",
    "longitude",
    "location_precision",
    "support",
    "is_storage",
    "storage_capacity_wh",
    "round_trip_efficiency",
    "interval_minutes",
    "require_signed_readings",
    "issuance_policy",
    "issuance_requires_approval",
    "status",
    "status_reason",
    "status_changed_at",
    "approved_at",
    "created_at",
    "can_issue",
    "owners",
]

_PUBLIC_PLACES = Decimal("0.01")


# Coordinates are decimal strings like every other decimal in the API (exact, no float).
_COORDINATE_SCHEMA = {
    "type": "string",
    "format": "decimal",
    "pattern": r"^-?\d{1,3}\.\d{1,6}$",
    "example": "52.520008",
}


class DeviceOutputSerializer(serializers.ModelSerializer):
    """A device. Without full access, owners are hidden and the location is rounded (~1 km)."""

    organisation_name = serializers.CharField(source="organisation.legal_name", read_only=True)
    grid_area_code = serializers.CharField(source="grid_area.code", read_only=True)
    country = serializers.CharField(source="grid_area.country", read_only=True)
    technology_label = serializers.SerializerMethodField()
    energy_source_label = serializers.SerializerMethodField()
    can_issue = serializers.BooleanField(read_only=True)
    latitude = serializers.SerializerMethodField()
    longitude = serializers.SerializerMethodField()
    location_precision = serializers.SerializerMethodField(help_text='"exact" or "rounded".')
    owners = serializers.SerializerMethodField(help_text="Null unless you may see co-owners.")

    class Meta:
        model = Device
        fields = _DEVICE_FIELDS

    def _full(self, device: Device) -> bool:
        full = self.context.get("full_access")
        return bool(full is None or device.pk in full)

    def get_technology_label(self, device: Device) -> str:
        return codes.technologies().get(device.technology_code, "")

    def get_energy_source_label(self, device: Device) -> str:
        return codes.energy_sources().get(device.energy_source_code, "")

    def _coordinate(self, device: Device, value: Decimal) -> str:
        if not self._full(device):
            value = value.quantize(_PUBLIC_PLACES, rounding=ROUND_HALF_EVEN)
        return format(value, "f")

    @extend_schema_field(_COORDINATE_SCHEMA)
    def get_latitude(self, device: Device) -> str:
        return self._coordinate(device, device.latitude)

    @extend_schema_field(_COORDINATE_SCHEMA)
    def get_longitude(self, device: Device) -> str:
        return self._coordinate(device, device.longitude)

    def get_location_precision(self, device: Device) -> str:
        return "exact" if self._full(device) else "rounded"

    @extend_schema_field(DeviceOwnerOutputSerializer(many=True, allow_null=True))
    def get_owners(self, device: Device) -> list | None:
        if not self._full(device):
            return None
        return DeviceOwnerOutputSerializer(device.owners.all(), many=True).data


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": SHARE_FORMAT.pattern, "maxLength": 32},
            {"type": "integer", "minimum": 1, "maximum": 1},
        ]
    }
)
class ShareField(serializers.CharField):
    """A co-owner's share as the service parses it (assets.validation.parse_share): a text
    such as "1/3" or "0.25", or the integer 1."""

    accepts_integers = True


class DeviceOwnerInputSerializer(StrictInputSerializer):
    organisation = serializers.IntegerField(min_value=1)
    account = serializers.IntegerField(
        min_value=1, help_text="An open account of that organisation; receives its certificates."
    )
    share = ShareField(
        max_length=32, help_text='Exact share as a string: "1/3", "0.25" or "1". Shares sum to 1.'
    )


# What device_problems (assets.services.devices) takes, said where a schema can say it:
# EECS codes from their lists, coordinates and an efficiency in range, energy below 2**53.
# tests/assets/test_device_input_schema.py holds each pattern to the field's own check.
LATITUDE_PATTERN = r"^-?(?:90(?:\.0{0,6})?|[1-8]?[0-9](?:\.[0-9]{0,6})?|\.[0-9]{1,6})$"
LONGITUDE_PATTERN = (
    r"^-?(?:180(?:\.0{0,6})?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]{0,6})?|\.[0-9]{1,6})$"
)
EFFICIENCY_PATTERN = (
    r"^(?:1(?:\.0{0,4})?|0?\.(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$"
)


class RangedDecimalField(serializers.DecimalField):
    """A DecimalField whose bounds the schema states as `schema_pattern` (a decimal given
    as a string has no JSON Schema minimum or maximum)."""

    def __init__(self, *, schema_pattern: str, **kwargs):
        self.schema_pattern = schema_pattern
        super().__init__(**kwargs)


def _coordinate(limit: int, pattern: str, **kwargs) -> RangedDecimalField:
    """A latitude (limit 90) or longitude (180) in degrees, to 6 places."""
    bound = Decimal(limit)
    return RangedDecimalField(
        max_digits=9,
        decimal_places=6,
        min_value=-bound,
        max_value=bound,
        schema_pattern=pattern,
        **kwargs,
    )


def _efficiency() -> RangedDecimalField:
    return RangedDecimalField(
        max_digits=5,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        max_value=Decimal(1),
        required=False,
        allow_null=True,
        schema_pattern=EFFICIENCY_PATTERN,
        help_text="Storage only: above 0, up to 1.",
    )


def _code_schema(codes_: dict[str, str], example: str) -> dict:
    return {"type": "string", "enum": sorted(codes_), "description": f"EECS, e.g. {example}."}


@extend_schema_field(_code_schema(codes.technologies(), "T010101"))
class TechnologyCodeField(serializers.CharField):
    """An EECS technology code; the service checks it against the list (with `extra.choices`)."""


@extend_schema_field(_code_schema(codes.energy_sources(), "F01040100"))
class EnergySourceCodeField(serializers.CharField):
    """An EECS energy-source code; the service checks it, and that EECS allows it with the
    technology."""


class DeviceRegisterInputSerializer(StrictInputSerializer):
    organisation = serializers.IntegerField(min_value=1, help_text="Registering organisation.")
    name = serializers.CharField(max_length=200)
    grid_area = serializers.IntegerField(min_value=1)
    technology_code = TechnologyCodeField(max_length=7)
    energy_source_code = EnergySourceCodeField(max_length=9)
    capacity_w = serializers.IntegerField(min_value=1, max_value=ENERGY_MAX)
    commissioning_date = serializers.DateField()
    latitude = _coordinate(90, LATITUDE_PATTERN)
    longitude = _coordinate(180, LONGITUDE_PATTERN)
    support = serializers.ChoiceField(choices=Device.Support.choices, default="none")
    is_storage = serializers.BooleanField(default=False)
    storage_capacity_wh = serializers.IntegerField(
        min_value=1, max_value=ENERGY_MAX, required=False, allow_null=True
    )
    round_trip_efficiency = _efficiency()
    interval_minutes = serializers.ChoiceField(choices=Device.Interval.choices, default=60)
    require_signed_readings = serializers.BooleanField(default=False)
    issuance_policy = serializers.ChoiceField(
        choices=Device.IssuancePolicy.choices, default="manual"
    )
    issuance_requires_approval = serializers.BooleanField(default=False)
    owners = DeviceOwnerInputSerializer(many=True, min_length=1)


class DeviceUpdateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    grid_area = serializers.IntegerField(min_value=1, required=False)
    technology_code = TechnologyCodeField(max_length=7, required=False)
    energy_source_code = EnergySourceCodeField(max_length=9, required=False)
    capacity_w = serializers.IntegerField(min_value=1, max_value=ENERGY_MAX, required=False)
    commissioning_date = serializers.DateField(required=False)
    latitude = _coordinate(90, LATITUDE_PATTERN, required=False)
    longitude = _coordinate(180, LONGITUDE_PATTERN, required=False)
    support = serializers.ChoiceField(choices=Device.Support.choices, required=False)
    is_storage = serializers.BooleanField(required=False)
    storage_capacity_wh = serializers.IntegerField(
        min_value=1, max_value=ENERGY_MAX, required=False, allow_null=True
    )
    round_trip_efficiency = _efficiency()
    interval_minutes = serializers.ChoiceField(choices=Device.Interval.choices, required=False)
    require_signed_readings = serializers.BooleanField(required=False)
    issuance_policy = serializers.ChoiceField(choices=Device.IssuancePolicy.choices, required=False)
    issuance_requires_approval = serializers.BooleanField(required=False)


class DeviceOwnersInputSerializer(StrictInputSerializer):
    owners = DeviceOwnerInputSerializer(many=True, min_length=1)


class DevicePolicyInputSerializer(StrictInputSerializer):
    require_signed_readings = serializers.BooleanField(required=False)
    issuance_policy = serializers.ChoiceField(choices=Device.IssuancePolicy.choices, required=False)
    issuance_requires_approval = serializers.BooleanField(required=False)
    reason = serializers.CharField(max_length=2000)


class DeviceReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class DeviceReasonRequiredInputSerializer(StrictInputSerializer):
    """Reject, suspend, reinstate, decommission: the reason is recorded and required."""

    reason = serializers.CharField(max_length=2000)


class DeviceOnboardInputSerializer(StrictInputSerializer):
    csv = serializers.CharField(
        max_length=1_000_000,
        trim_whitespace=False,
        help_text="The CSV text: a header row naming the columns (docs/web.md lists them), "
        "one device with one meter per row, at most 1,000 rows.",
    )
    dry_run = serializers.BooleanField(
        default=True, help_text="Check every row and write nothing (the default)."
    )


class OnboardingRowOutputSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line in the file (the header is line 1).")
    name = serializers.CharField()
    serial = serializers.CharField()
    device = serializers.IntegerField(
        source="device.pk", allow_null=True, default=None, help_text="null in a dry run"
    )
    meter = serializers.IntegerField(
        source="meter.pk", allow_null=True, default=None, help_text="null in a dry run"
    )
    code = serializers.CharField(help_text="The refusal's error code; empty if the row is good.")
    detail = serializers.CharField()
    problems = serializers.DictField(source="fields", help_text="The refused cells and why.")


class OnboardingOutputSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    rows = OnboardingRowOutputSerializer(many=True)


# -- meters --------------------------------------------------------------------------------


class MeterKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = MeterKey
        fields = ["public_key", "valid_from", "valid_to", "created_at"]


class MeterOutputSerializer(serializers.ModelSerializer):
    replaced_by = serializers.SlugRelatedField(
        slug_field="serial", read_only=True, allow_null=True, help_text="Null until replaced."
    )
    public_key = serializers.SerializerMethodField(help_text="The key valid now, if any.")
    keys = MeterKeyOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Meter
        fields = [
            "id",
            "serial",
            "kind",
            "device",
            "status",
            "installed_at",
            "removed_at",
            "replaced_by",
            "counter_wh",
            "counter_at",
            "public_key",
            "keys",
            "created_at",
        ]

    def get_public_key(self, meter: Meter) -> str | None:
        current = [key for key in meter.keys.all() if key.valid_to is None]
        return current[-1].public_key if current else None


# What assets.validation.decode_public_key takes: 32 bytes as 64 hex digits or as padded
# base64 (the service answers meter_key_invalid otherwise; the schema says so up front).
PUBLIC_KEY_PATTERN = f"^[{SPACE}]*(?:[0-9A-Fa-f]{{64}}|[A-Za-z0-9+/]{{43}}=)[{SPACE}]*$"


@extend_schema_field({"type": "string", "pattern": SERIAL_FORMAT.pattern})
class MeterSerialField(serializers.CharField):
    """A meter serial (assets.validation.SERIAL_FORMAT)."""


@extend_schema_field({"type": "string", "pattern": PUBLIC_KEY_PATTERN})
class PublicKeyField(serializers.CharField):
    """An Ed25519 public key, base64 or hex."""


class MeterRegisterInputSerializer(StrictInputSerializer):
    device = serializers.IntegerField(min_value=1)
    serial = MeterSerialField(max_length=64)
    kind = serializers.ChoiceField(choices=Meter.Kind.choices, default="generation")
    public_key = PublicKeyField(
        max_length=100, required=False, help_text="Ed25519 public key, base64 or hex."
    )
    key_valid_from = BoundedDateTimeField(required=False)
    installed_at = BoundedDateTimeField(required=False)


class MeterKeyRotateInputSerializer(StrictInputSerializer):
    public_key = PublicKeyField(max_length=100, help_text="Base64 or hex, 32 bytes.")
    valid_from = BoundedDateTimeField(required=False, help_text="Default: now.")


class MeterCounterResetInputSerializer(StrictInputSerializer):
    time = BoundedDateTimeField(help_text="The new baseline's time (interval-aligned).")
    counter_wh = serializers.IntegerField(min_value=0, max_value=ENERGY_MAX)
    reason = serializers.CharField(max_length=2000)


class MeterReplaceInputSerializer(StrictInputSerializer):
    time = BoundedDateTimeField(help_text="When the old meter stopped and the new started.")
    new_serial = MeterSerialField(max_length=64)
    public_key = PublicKeyField(max_length=100, required=False)
    counter_wh = serializers.IntegerField(
        min_value=0,
        max_value=ENERGY_MAX,
        required=False,
        help_text="The new meter's counter at `time`.",
    )
    reason = serializers.CharField(max_length=2000)


class MeterRemoveInputSerializer(StrictInputSerializer):
    time = BoundedDateTimeField()
    reason = serializers.CharField(max_length=2000)


class EecsCodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()


class EecsCodesOutputSerializer(serializers.Serializer):
    technologies = EecsCodeSerializer(many=True)
    energy_sources = EecsCodeSerializer(many=True)
