from rest_framework import serializers

from accounts.models import Account, ApiToken, Membership, Organisation, User
from registry.api.serializers import CountryField, StrictInputSerializer


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]


class UserRegisterInputSerializer(StrictInputSerializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
    # As typed: a password's spaces are part of it (Django's login form keeps them too).
    password = serializers.CharField(
        write_only=True, min_length=8, max_length=128, trim_whitespace=False
    )
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class MembershipOutputSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    organisation_name = serializers.CharField(source="organisation.legal_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "organisation", "organisation_name", "role"]


class MeOutputSerializer(serializers.Serializer):
    user = UserOutputSerializer()
    memberships = MembershipOutputSerializer(many=True)
    is_issuing_body = serializers.BooleanField()
    is_auditor = serializers.BooleanField()


class ApiTokenCreateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=36500,
        help_text="Days until the token stops working (0: never). "
        "Default: the registry's API_TOKEN_DEFAULT_TTL_DAYS.",
    )
    username = serializers.CharField(required=False, help_text="Only when not logged in.")
    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False)


class ApiTokenOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]


class ApiTokenCreatedOutputSerializer(ApiTokenOutputSerializer):
    token = serializers.CharField(help_text="The secret token. Shown once; store it now.")

    class Meta(ApiTokenOutputSerializer.Meta):
        fields = [*ApiTokenOutputSerializer.Meta.fields, "token"]


class OrganisationOutputSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Organisation
        fields = [
            "id",
            "legal_name",
            "country",
            "registration_id",
            "roles",
            "status",
            "status_reason",
            "created_at",
            "approved_at",
        ]


class OrganisationRegisterInputSerializer(StrictInputSerializer):
    legal_name = serializers.CharField(max_length=200)
    country = CountryField()
    registration_id = serializers.CharField(max_length=64)
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Organisation.Role.choices), min_length=1
    )


class ReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class SuspendInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000, help_text="Required: why.")


class MembershipAddInputSerializer(StrictInputSerializer):
    user = serializers.IntegerField(min_value=1)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default="operator")


class AccountOutputSerializer(serializers.ModelSerializer):
    organisation_name = serializers.CharField(source="organisation.legal_name", read_only=True)

    class Meta:
        model = Account
        fields = [
            "id",
            "number",
            "name",
            "kind",
            "status",
            "organisation",
            "organisation_name",
            "created_at",
            "closed_at",
        ]


class AccountOpenInputSerializer(StrictInputSerializer):
    organisation = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(
        choices=Account.Kind.choices,
        help_text=(
            "trading: receives issuance and transfers, sends, retires. issuance: receives "
            "issuance, sends, retires, receives no transfers. retirement: final; receives "
            "no issuance or transfers, nothing leaves it, certificates in it can be retired."
        ),
    )
    name = serializers.CharField(max_length=200)
