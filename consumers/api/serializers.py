"""Shapes of the consumers API. Input serializers check shape; services check rules."""

from rest_framework import serializers

from consumers.models import (
    Community,
    CommunityMember,
    Consent,
    DataAccess,
    Household,
    Site,
    SiteMeter,
)
from consumers.services.communities import PRICE_MAX
from registry.api.fields import BoundedDateTimeField
from registry.api.serializers import CountryField, CurrencyField, InputSerializer


class HouseholdRegisterInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=200)
    street = serializers.CharField(max_length=200)
    postcode = serializers.CharField(max_length=16)
    city = serializers.CharField(max_length=100)
    country = CountryField()


class HouseholdOutputSerializer(serializers.ModelSerializer):
    account_ids = serializers.SerializerMethodField()

    class Meta:
        model = Household
        fields = [
            "id",
            "organisation",
            "name",
            "street",
            "postcode",
            "city",
            "country",
            "account_ids",
            "created_at",
        ]

    def get_account_ids(self, household: Household) -> list[int]:
        return list(household.organisation.accounts.values_list("pk", flat=True))


class SiteMeterOutputSerializer(serializers.ModelSerializer):
    serial = serializers.CharField(source="meter.serial", read_only=True)

    class Meta:
        model = SiteMeter
        fields = ["id", "meter", "serial", "role", "linked_at"]


class SiteCreateInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=100)
    # The shape here; the GS1 check digit in the service (metering_point_invalid).
    metering_point_id = serializers.RegexField(
        r"^[0-9]{18}$",
        error_messages={"invalid": "18 digits (EAN-18 / GSRN)."},
        help_text="EAN-18 / GSRN: 18 digits, the last a GS1 check digit.",
    )
    grid_area_id = serializers.IntegerField()
    street = serializers.CharField(max_length=200)
    postcode = serializers.CharField(max_length=16)
    city = serializers.CharField(max_length=100)


class SiteOutputSerializer(serializers.ModelSerializer):
    meters = SiteMeterOutputSerializer(many=True, read_only=True)
    grid_area_code = serializers.CharField(source="grid_area.code", read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "household",
            "name",
            "metering_point_id",
            "grid_area",
            "grid_area_code",
            "street",
            "postcode",
            "city",
            "status",
            "status_reason",
            "decided_at",
            "meters",
            "created_at",
        ]


class SiteDecisionInputSerializer(InputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class SiteRejectInputSerializer(InputSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Required: why it is rejected.")


class SiteMeterLinkInputSerializer(InputSerializer):
    meter_id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=SiteMeter.Role.choices)


class SiteReadingsQuerySerializer(serializers.Serializer):
    start = BoundedDateTimeField(required=False)
    end = BoundedDateTimeField(required=False)
    resolution = serializers.ChoiceField(choices=Consent.Resolution.choices, default="hourly")


class PeriodQuerySerializer(serializers.Serializer):
    start = BoundedDateTimeField(required=False)
    end = BoundedDateTimeField(required=False)


class SiteReadingsUploadOutputSerializer(serializers.Serializer):
    status = serializers.CharField()
    batch_id = serializers.IntegerField(allow_null=True)
    rows = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class ConsentGrantInputSerializer(InputSerializer):
    site_id = serializers.IntegerField()
    grantee_id = serializers.IntegerField()
    purpose = serializers.ChoiceField(choices=Consent.Purpose.choices)
    site_meter_ids = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=50
    )
    resolution = serializers.ChoiceField(choices=Consent.Resolution.choices)
    valid_from = BoundedDateTimeField(required=False)
    valid_to = BoundedDateTimeField()


class ConsentOutputSerializer(serializers.ModelSerializer):
    site_meter_ids = serializers.SerializerMethodField()
    grantee_name = serializers.CharField(source="grantee.legal_name", read_only=True)
    in_force = serializers.SerializerMethodField()

    class Meta:
        model = Consent
        fields = [
            "id",
            "household",
            "site",
            "grantee",
            "grantee_name",
            "purpose",
            "site_meter_ids",
            "resolution",
            "valid_from",
            "valid_to",
            "created_at",
            "revoked_at",
            "in_force",
        ]

    def get_site_meter_ids(self, consent: Consent) -> list[int]:
        return sorted(m.pk for m in consent.meters.all())

    def get_in_force(self, consent: Consent) -> bool:
        from django.utils import timezone

        return consent.in_force(timezone.now())


class DataAccessOutputSerializer(serializers.ModelSerializer):
    reader_organisation_name = serializers.CharField(
        source="reader_organisation.legal_name", read_only=True, default=None
    )
    reader_username = serializers.CharField(source="reader.username", read_only=True, default=None)

    class Meta:
        model = DataAccess
        fields = [
            "id",
            "at",
            "reader_username",
            "reader_organisation",
            "reader_organisation_name",
            "site",
            "what",
            "meter_ids",
            "resolution",
            "period_start",
            "period_end",
            "consent",
            "outcome",
            "reason",
        ]


class CommunityCreateInputSerializer(InputSerializer):
    organisation_id = serializers.IntegerField()
    name = serializers.CharField(max_length=200)
    grid_area_id = serializers.IntegerField()
    key_kind = serializers.ChoiceField(choices=Community.KeyKind.choices)
    # The column is a PositiveIntegerField (32 bits on PostgreSQL): above it was a 500.
    internal_price_minor_per_kwh = serializers.IntegerField(min_value=0, max_value=PRICE_MAX)
    currency = CurrencyField(default="EUR")


class CommunityOutputSerializer(serializers.ModelSerializer):
    grid_area_code = serializers.CharField(source="grid_area.code", read_only=True)
    device_ids = serializers.SerializerMethodField()

    class Meta:
        model = Community
        fields = [
            "id",
            "organisation",
            "name",
            "grid_area",
            "grid_area_code",
            "key_kind",
            "internal_price_minor_per_kwh",
            "currency",
            "device_ids",
            "created_at",
        ]

    def get_device_ids(self, community: Community) -> list[int]:
        return list(community.devices.values_list("device_id", flat=True))


class CommunityJoinInputSerializer(InputSerializer):
    organisation_id = serializers.IntegerField()
    consumption_meter_id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    site_id = serializers.IntegerField(required=False, allow_null=True)
    joined_at = BoundedDateTimeField(required=False)


class CommunityMemberOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommunityMember
        fields = [
            "id",
            "community",
            "organisation",
            "site",
            "consumption_meter",
            "account",
            "share_numerator",
            "share_denominator",
            "joined_at",
            "left_at",
        ]


class CommunityLeaveInputSerializer(InputSerializer):
    left_at = BoundedDateTimeField(required=False)


class CommunityKeyInputSerializer(InputSerializer):
    key_kind = serializers.ChoiceField(choices=Community.KeyKind.choices)
    shares = serializers.DictField(
        child=serializers.CharField(max_length=32),
        required=False,
        help_text='Static key: {"<member id>": "1/3", …}, adding up to exactly 1.',
    )


class CommunityDeviceInputSerializer(InputSerializer):
    device_id = serializers.IntegerField()


class CommunityDistributionInputSerializer(InputSerializer):
    start = BoundedDateTimeField(help_text="On the hour.")
    end = BoundedDateTimeField(help_text="On the hour, not in the future; ≤ 31 days.")
