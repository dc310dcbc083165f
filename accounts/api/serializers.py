from django.core.validators import RegexValidator
from rest_framework import serializers

from accounts.models import Account, ApiToken, Membership, Organisation, User
from registry.api.serializers import CountryField, StrictInputSerializer

# A username: Django's `\w` class (UnicodeUsernameValidator) narrowed to what an ECMA-262
# pattern (the schema's) says the same way: ASCII letters and digits, Latin letters with
# diacritics and Cyrillic; `\w` in ECMA-262 is ASCII only, in Python any script's.
USERNAME = r"^[A-Za-z0-9_.@+\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0400-\u04ff]{3,150}$"


# An e-mail address as the schema can say it and Django's EmailValidator takes it: a
# dot-atom local part and a domain of labels with a top-level domain of two or more
# letters ("a@b.c" is a valid `format: email` that Django refuses).
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = rf"^[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"


class UserOutputSerializer(serializers.ModelSerializer):
    # declared, so the schema does not copy the model validator's Python-only `\w` pattern
    username = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]


class UserRegisterInputSerializer(StrictInputSerializer):
    username = serializers.RegexField(USERNAME)
    # As typed: a password's spaces are part of it (Django's login form keeps them too).
    password = serializers.CharField(
        write_only=True, min_length=8, max_length=128, trim_whitespace=False
    )
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        default="",
        max_length=254,
        validators=[RegexValidator(EMAIL, "Enter a valid email address.")],
    )


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
