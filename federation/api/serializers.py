import base64

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from federation.models import Evidence, Peer
from federation.protocol import BUNDLE_MAX_ENTRIES, KEY_NAME, LOG_VKEY, PEER_URL, WITNESS_VKEY
from ledger.merkle import leaf_hash
from registry.api.fields import Base64Field
from registry.api.serializers import SEQ_MAX, StrictInputSerializer


class PeerOutputSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Peer
        fields = [
            "id",
            "origin",
            "name",
            "base_url",
            "witness_url",
            "log_vkey",
            "witness_vkey",
            "roles",
            "status",
            "status_reason",
            "created_at",
            "updated_at",
        ]


class PeerRegisterInputSerializer(StrictInputSerializer):
    origin = serializers.CharField(
        max_length=255,
        validators=[RegexValidator(KEY_NAME)],
        help_text="The peer's checkpoint origin (a note key name: no '+', no spaces).",
    )
    base_url = serializers.CharField(
        max_length=500,
        validators=[RegexValidator(PEER_URL)],
        help_text="Root of the peer's public API (http or https, no query or fragment).",
    )
    log_vkey = serializers.CharField(
        max_length=300,
        validators=[RegexValidator(LOG_VKEY)],
        help_text="Note verifier key of its checkpoints (named after its origin): "
        "`<name>+<key id, 8 hex digits>+<base64 of 0x01 and the 32-byte Ed25519 key>`.",
    )
    witness_vkey = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        validators=[RegexValidator(WITNESS_VKEY)],
        help_text="Its cosignature/v1 key (base64 of 0x04 and the key); empty: the log key's "
        "public key as type 0x04.",
    )
    witness_url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        validators=[RegexValidator(PEER_URL)],
        help_text="tlog-witness submission prefix; empty: the base URL.",
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Peer.Role.choices), allow_empty=True
    )


class PeerUpdateInputSerializer(StrictInputSerializer):
    base_url = serializers.CharField(
        max_length=500, required=False, validators=[RegexValidator(PEER_URL)]
    )
    log_vkey = serializers.CharField(
        max_length=300, required=False, validators=[RegexValidator(LOG_VKEY)]
    )
    witness_vkey = serializers.CharField(
        max_length=300, required=False, allow_blank=True, validators=[RegexValidator(WITNESS_VKEY)]
    )
    witness_url = serializers.CharField(
        max_length=500, required=False, allow_blank=True, validators=[RegexValidator(PEER_URL)]
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Peer.Role.choices), allow_empty=True, required=False
    )


class PeerReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=2000)


class EvidenceOutputSerializer(serializers.ModelSerializer):
    origin = serializers.CharField(source="peer.origin", read_only=True)

    class Meta:
        model = Evidence
        fields = ["id", "peer", "origin", "kind", "size", "detail", "digest", "recorded_at"]


class EvidenceDetailOutputSerializer(EvidenceOutputSerializer):
    payload_b64 = Base64Field(source="payload", help_text="The offending response (bounded).")

    class Meta(EvidenceOutputSerializer.Meta):
        fields = [
            *EvidenceOutputSerializer.Meta.fields,
            "first_note",
            "second_note",
            "data",
            "payload_b64",
        ]


class DelayStatsOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Checkpoints measured.")
    pending = serializers.IntegerField(help_text="Checkpoints not anchored yet.")
    median = serializers.FloatField(allow_null=True, help_text="Seconds.")
    p99 = serializers.FloatField(allow_null=True, help_text="Seconds (nearest rank).")
    max = serializers.FloatField(allow_null=True, help_text="Seconds.")


class CosignatureOutputSerializer(serializers.Serializer):
    witness = serializers.CharField(source="witness.origin")
    line = serializers.CharField(help_text="The cosignature/v1 signature line.")
    timestamp = serializers.IntegerField(help_text="The cosignature's time (Unix seconds).")
    received_at = serializers.DateTimeField()


class AnchoredCheckpointOutputSerializer(serializers.Serializer):
    origin = serializers.CharField()
    size = serializers.IntegerField()
    root = Base64Field()
    note = serializers.CharField(help_text="Signed note with every cosignature appended.")
    created_at = serializers.DateTimeField(help_text="When the checkpoint was signed.")
    anchored_at = serializers.DateTimeField(help_text="When it reached the quorum.")
    quorum = serializers.IntegerField()
    cosignatures = CosignatureOutputSerializer(many=True)
    witness_keys = serializers.ListField(
        child=serializers.CharField(), help_text="Verifier keys of the cosigning witnesses."
    )
    anchoring_delay = DelayStatsOutputSerializer()


class PeerStatusOutputSerializer(serializers.Serializer):
    peer = PeerOutputSerializer()
    evidence_count = serializers.IntegerField()
    mirror_size = serializers.IntegerField(help_text="Entries of its log we mirror.")
    mirror_checkpoint_size = serializers.IntegerField(allow_null=True)
    mirror_checkpoint_at = serializers.DateTimeField(allow_null=True)
    seen_size = serializers.IntegerField(help_text="Largest size of its checkpoints we saw.")
    seen_at = serializers.DateTimeField(allow_null=True)
    lag_entries = serializers.IntegerField(help_text="seen_size - mirror_size.")
    lag_seconds = serializers.FloatField(help_text="How long the mirror has been behind.")
    mirror_last_success_at = serializers.DateTimeField(allow_null=True)
    mirror_last_error = serializers.CharField()
    mirror_last_error_at = serializers.DateTimeField(allow_null=True)
    mirror_next_attempt_at = serializers.DateTimeField(allow_null=True)
    witness_size = serializers.IntegerField(help_text="Our size this witness last cosigned.")
    witness_lag_entries = serializers.IntegerField()
    witness_last_success_at = serializers.DateTimeField(allow_null=True)
    witness_last_error = serializers.CharField()
    witness_last_error_at = serializers.DateTimeField(allow_null=True)
    witness_next_attempt_at = serializers.DateTimeField(allow_null=True)
    witness_delay = DelayStatsOutputSerializer(allow_null=True)
    witnessed_size = serializers.IntegerField(
        allow_null=True, help_text="Largest checkpoint of its log we cosigned."
    )
    witnessed_at = serializers.DateTimeField(allow_null=True)
    exports_pending = serializers.IntegerField(help_text="Exports to it not settled yet.")
    exports_imported = serializers.IntegerField()
    exports_returned = serializers.IntegerField(help_text="Exports it refused.")
    export_last_error = serializers.CharField(help_text="Why a pending export is not delivered.")
    imports_received = serializers.IntegerField(help_text="Its exports we imported or refused.")


class FederationStatusOutputSerializer(serializers.Serializer):
    origin = serializers.CharField()
    checkpoint_size = serializers.IntegerField(help_text="Our latest checkpoint.")
    anchored_size = serializers.IntegerField(allow_null=True)
    anchored_at = serializers.DateTimeField(allow_null=True)
    quorum = serializers.IntegerField()
    anchoring_delay = DelayStatsOutputSerializer()
    peers = PeerStatusOutputSerializer(many=True)


class FederationIdentityOutputSerializer(serializers.Serializer):
    origin = serializers.CharField()
    base_url = serializers.CharField()
    log_vkey = serializers.CharField(help_text="Verifier key of our checkpoints.")
    witness_vkey = serializers.CharField(help_text="Our cosignature/v1 key as a witness.")
    witness_url = serializers.CharField(help_text="Our tlog-witness submission prefix.")


class PeerNotifyInputSerializer(StrictInputSerializer):
    checkpoint = serializers.CharField(
        max_length=60000, trim_whitespace=False, help_text="The sender's signed note."
    )


class PeerNotifyOutputSerializer(serializers.Serializer):
    scheduled = serializers.BooleanField(help_text="Whether a replication was scheduled.")


class TransferEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=0)
    event_b64 = serializers.CharField(help_text="The entry's bytes, base64.")
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="RFC 9162 inclusion proof, base64 hashes."
    )


class TransferHopSerializer(serializers.Serializer):
    origin = serializers.CharField()
    checkpoint = serializers.CharField(help_text="Signed note with its cosignatures.")
    entries = TransferEntrySerializer(many=True)


class TransferPackageSerializer(serializers.Serializer):
    """Documents the package (docs/federation.md); the view verifies the raw body itself."""

    version = serializers.IntegerField()
    export_seq = serializers.IntegerField(help_text="The certificate.exported entry.")
    hop = TransferHopSerializer(help_text="The sender's anchored checkpoint and entries.")
    prior = TransferHopSerializer(many=True, required=False, help_text="Earlier registries.")


class TransferReceiptSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(source="status", choices=["imported", "rejected"])
    reason = serializers.CharField(help_text="Refusal code; empty when imported.")
    import_id = serializers.UUIDField(source="public_id")
    bundle_id = serializers.IntegerField(allow_null=True)
    receipt = serializers.CharField(help_text="The receipt, a note signed by this registry.")


class MirrorOutputSerializer(serializers.Serializer):
    origin = serializers.CharField(source="peer.origin")
    size = serializers.IntegerField()
    root = Base64Field()
    updated_at = serializers.DateTimeField(source="last_success_at", allow_null=True)


@extend_schema_field(OpenApiTypes.BYTE)
class LeafHashField(serializers.Field):
    """The RFC 9162 leaf hash of the event bytes, computed (mirrors store only the bytes)."""

    def __init__(self, **kwargs) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value) -> str:
        return base64.b64encode(leaf_hash(bytes(value))).decode("ascii")


class MirroredEntryOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    event_b64 = Base64Field(source="event", help_text="The entry's bytes (the leaf).")
    leaf_hash = LeafHashField(source="event", help_text="SHA-256(0x00 || event bytes).")


class MirroredEntryPageOutputSerializer(serializers.Serializer):
    start = serializers.IntegerField()
    limit = serializers.IntegerField()
    next = serializers.CharField(allow_null=True, help_text="The following range, if full.")
    entries = MirroredEntryOutputSerializer(many=True)


class LogEntryBundleInputSerializer(StrictInputSerializer):
    start = serializers.IntegerField(
        min_value=0, max_value=SEQ_MAX, default=0, help_text="First sequence number."
    )
    limit = serializers.IntegerField(min_value=1, max_value=BUNDLE_MAX_ENTRIES, default=1000)


class MirrorEntryRangeInputSerializer(StrictInputSerializer):
    start = serializers.IntegerField(min_value=0, max_value=SEQ_MAX, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class MirrorInclusionProofInputSerializer(StrictInputSerializer):
    seq = serializers.IntegerField(min_value=0, max_value=SEQ_MAX)
    size = serializers.IntegerField(min_value=1, max_value=SEQ_MAX)


class MirrorInclusionProofOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    size = serializers.IntegerField()
    leaf_hash = Base64Field()
    root = Base64Field()
    proof = serializers.ListField(child=Base64Field())


class MirrorConsistencyProofInputSerializer(StrictInputSerializer):
    first = serializers.IntegerField(min_value=1, max_value=SEQ_MAX)
    second = serializers.IntegerField(min_value=1, max_value=SEQ_MAX)


class MirrorConsistencyProofOutputSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    proof = serializers.ListField(child=Base64Field())
