from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from contracts.api.terms_schema import TERMS_SCHEMAS
from contracts.kinds import KINDS
from contracts.models import (
    Agreement,
    Contract,
    ContractExecution,
    ContractParty,
    OrganisationKey,
    SettlementObligation,
)
from registry.api.fields import BoundedDateTimeField
from registry.api.serializers import InputSerializer


@extend_schema_field({"anyOf": [TERMS_SCHEMAS[kind] for kind in sorted(TERMS_SCHEMAS)]})
class TermsField(serializers.JSONField):
    """A kind's terms (contracts.api.terms_schema), checked by the kind: invalid_terms for
    their shape, terms_unmet for the registry's data."""


class ContractCreateInputSerializer(InputSerializer):
    kind = serializers.ChoiceField(choices=sorted(KINDS))
    terms = TermsField(help_text="The kind's terms (see docs/contracts.md).")
    start_at = BoundedDateTimeField()
    end_at = BoundedDateTimeField(help_text="After start_at.")
    on_failure = serializers.ChoiceField(
        choices=Contract.OnFailure.choices, default=Contract.OnFailure.PARK
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, default=3)


def _create_input_of(kind: str) -> type[ContractCreateInputSerializer]:
    """The create body of one kind (for the schema): its `kind` and its terms."""
    terms = extend_schema_field(TERMS_SCHEMAS[kind])(type("Terms", (serializers.JSONField,), {}))
    name = "".join(part.title() for part in kind.split("_"))
    return type(
        f"ContractCreate{name}InputSerializer",
        (ContractCreateInputSerializer,),
        {
            "kind": serializers.ChoiceField(choices=[kind]),
            "terms": terms(help_text="The kind's terms (see docs/contracts.md)."),
            "__module__": __name__,
        },
    )


# The create body as the schema shows it: one shape per kind, told apart by `kind`.
CONTRACT_CREATE_SCHEMA = PolymorphicProxySerializer(
    component_name="ContractCreateInput",
    serializers={kind: _create_input_of(kind) for kind in sorted(KINDS)},
    resource_type_field_name="kind",
)


class ContractAgreeInputSerializer(InputSerializer):
    organisation = serializers.IntegerField(
        required=False, help_text="The party you agree for (only if you act for several)."
    )
    key = serializers.IntegerField(required=False, help_text="Your organisation's key id.")
    signature = serializers.RegexField(
        r"^[0-9a-fA-F]{128}$",
        required=False,
        help_text="Ed25519 signature (hex) over the bytes of GET …/document/.",
    )


class ContractAmendInputSerializer(InputSerializer):
    terms = TermsField()
    end_at = BoundedDateTimeField(required=False)


class ContractPartyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContractParty
        fields = ["organisation", "role"]


class AgreementOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agreement
        fields = [
            "version",
            "action",
            "organisation",
            "agreed_by",
            "agreed_at",
            "document_sha256",
            "key",
            "signature",
        ]


class ContractOutputSerializer(serializers.ModelSerializer):
    parties = ContractPartyOutputSerializer(many=True, read_only=True)
    agreements = AgreementOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "kind",
            "status",
            "version",
            "terms",
            "terms_sha256",
            "start_at",
            "end_at",
            "on_failure",
            "max_attempts",
            "proposal",
            "parties",
            "agreements",
            "created_at",
            "activated_at",
            "ended_at",
        ]


class ObligationOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = SettlementObligation
        fields = [
            "id",
            "payer",
            "payee",
            "amount_minor",
            "currency",
            "volume_wh",
            "status",
            "reference",
            "reason_code",
            "settled_at",
            "created_at",
        ]


class ExecutionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContractExecution
        fields = [
            "id",
            "contract",
            "trigger",
            "version",
            "status",
            "reason_code",
            "reason_detail",
            "result",
            "attempts",
            "created_at",
            "updated_at",
        ]


class DryRunOutputSerializer(serializers.Serializer):
    trigger = serializers.CharField()
    would_do = serializers.JSONField()
    would_fail = serializers.JSONField(allow_null=True)
    executed = serializers.CharField(allow_null=True, help_text="Status if already executed.")


class OrganisationKeyInputSerializer(InputSerializer):
    organisation = serializers.IntegerField()
    name = serializers.CharField(max_length=100)
    public_key = serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text="32 bytes, hex.")


class OrganisationKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrganisationKey
        fields = ["id", "organisation", "name", "public_key", "created_at", "revoked_at"]
