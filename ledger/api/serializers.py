import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ledger.models import Checkpoint, LedgerEntry
from ledger.verify.note import Note
from registry.api.fields import Base64Field
from registry.api.serializers import SEQ_MAX, StrictInputSerializer


class LedgerEntryOutputSerializer(serializers.ModelSerializer):
    event_b64 = Base64Field(source="event", help_text="The canonical event bytes (the leaf).")
    event = serializers.SerializerMethodField(help_text="The same event, decoded.")
    leaf_hash = Base64Field(help_text="SHA-256(0x00 || event bytes).")
    chain = Base64Field(help_text="SHA-256(previous chain || leaf hash).")

    class Meta:
        model = LedgerEntry
        fields = [
            "seq",
            "kind",
            "actor",
            "event_at",
            "integrated_at",
            "event_b64",
            "event",
            "leaf_hash",
            "chain",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_event(self, entry: LedgerEntry) -> dict:
        return json.loads(bytes(entry.event))


class LedgerEntryPageOutputSerializer(serializers.Serializer):
    start = serializers.IntegerField()
    limit = serializers.IntegerField()
    next = serializers.URLField(allow_null=True, help_text="The following range, if this is full.")
    entries = LedgerEntryOutputSerializer(many=True)


class LedgerEntryRangeInputSerializer(StrictInputSerializer):
    start = serializers.IntegerField(
        min_value=0, max_value=SEQ_MAX, default=0, help_text="First sequence number."
    )
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class CheckpointOutputSerializer(serializers.ModelSerializer):
    root = Base64Field()
    note = serializers.CharField(help_text="The signed note (C2SP tlog-checkpoint).")
    key_id = serializers.SerializerMethodField(
        help_text="Hex key ID of the log key that signed it: the key current at its size "
        "(`GET /api/v1/ledger/keys/`); the note's signature line starts with the same 4 bytes."
    )

    class Meta:
        model = Checkpoint
        fields = ["origin", "size", "root", "note", "key_id", "created_at"]

    def get_key_id(self, checkpoint: Checkpoint) -> str:
        if checkpoint.key_id:
            return checkpoint.key_id
        # Signed before key IDs were stored: the first signature line is the log's.
        return Note.parse(checkpoint.note).signatures[0].key_id.hex()


class LogKeyRotationOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The announcing entry: the new key signs sizes > seq.")
    old_vkey = serializers.CharField()
    new_vkey = serializers.CharField()
    note = serializers.CharField(help_text="The statement, signed by the old key (signed note).")
    event_b64 = Base64Field(help_text="The entry's canonical event bytes.")
    proof = serializers.ListField(
        child=Base64Field(), help_text="Inclusion path of the entry in the checkpoint's tree."
    )


class LogKeyHistoryOutputSerializer(serializers.Serializer):
    origin = serializers.CharField()
    first_vkey = serializers.CharField(help_text="The key the log was first signed with.")
    current_vkey = serializers.CharField(help_text="The key that signs the next checkpoints.")
    size = serializers.IntegerField(
        allow_null=True, help_text="The checkpoint the proofs are for (null: none yet)."
    )
    checkpoint = serializers.CharField(allow_null=True, help_text="Its signed note.")
    rotations = LogKeyRotationOutputSerializer(many=True)


class InclusionProofInputSerializer(StrictInputSerializer):
    seq = serializers.IntegerField(min_value=0, max_value=SEQ_MAX, help_text="The entry.")
    size = serializers.IntegerField(
        min_value=1, max_value=SEQ_MAX, help_text="The tree size (> seq)."
    )


class InclusionProofOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    size = serializers.IntegerField()
    leaf_hash = Base64Field()
    root = Base64Field(help_text="The root of the tree of `size` entries.")
    proof = serializers.ListField(child=Base64Field(), help_text="RFC 9162 inclusion path.")


class ConsistencyProofInputSerializer(StrictInputSerializer):
    first = serializers.IntegerField(
        min_value=1, max_value=SEQ_MAX, help_text="The older tree size."
    )
    second = serializers.IntegerField(
        min_value=1, max_value=SEQ_MAX, help_text="The newer tree size (>= first)."
    )


class ConsistencyProofOutputSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    proof = serializers.ListField(child=Base64Field(), help_text="RFC 9162 consistency proof.")


class SubjectHistoryInputSerializer(StrictInputSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=1000)
    after = serializers.IntegerField(
        min_value=0,
        max_value=SEQ_MAX,
        required=False,
        help_text="Only entries with a larger seq: the previous page's `next_after`.",
    )
    size = serializers.IntegerField(
        min_value=1,
        max_value=SEQ_MAX,
        required=False,
        help_text="Prove against the checkpoint of this size (default: the latest); give "
        "the first page's `size` with every next page.",
    )


class SubjectHistoryEntryOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField(source="entry.seq")
    kind = serializers.CharField(source="entry.kind")
    event_at = serializers.DateTimeField(source="entry.event_at")
    event_b64 = Base64Field(source="entry.event")
    leaf_hash = Base64Field(source="entry.leaf_hash")
    proof = serializers.ListField(
        child=Base64Field(), help_text="Inclusion path in the checkpoint's tree."
    )


class IndexEntryOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The last entry of the checkpoint's tree.")
    event_b64 = serializers.CharField(help_text="Its canonical event bytes, base64.")
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="Its inclusion path in the checkpoint's tree."
    )


class MapRecordOutputSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="SHA-256 of the subject key, base64.")
    count = serializers.IntegerField(help_text="Entries about that subject.")
    chain = serializers.CharField(help_text="Running hash over their leaf hashes, base64.")


class MapProofOutputSerializer(serializers.Serializer):
    map = serializers.CharField(help_text="`gridproof-subject-map/v1`.")
    bucket = serializers.IntegerField(help_text="The subject's bucket, 0 to 65,535.")
    records = MapRecordOutputSerializer(many=True, help_text="Every record of the bucket.")
    siblings = serializers.ListField(
        child=serializers.CharField(), help_text="16 sibling hashes, bucket to root, base64."
    )


class CompletenessOutputSerializer(serializers.Serializer):
    index_entry = IndexEntryOutputSerializer(
        help_text="The `ledger.subject_index_committed` entry that ends the checkpoint's tree."
    )
    subjects = serializers.DictField(
        child=MapProofOutputSerializer(),
        help_text="Per subject key, the map proof of its entry count and running hash "
        "(or, when its bucket holds no record of it, of its absence).",
    )


class SubjectHistoryOutputSerializer(serializers.Serializer):
    subject = serializers.CharField(source="key")
    size = serializers.IntegerField(source="checkpoint.size", help_text="The checkpoint's size.")
    checkpoint = serializers.CharField(source="checkpoint.note", help_text="Signed note text.")
    entries = SubjectHistoryEntryOutputSerializer(many=True)
    partial = serializers.BooleanField(
        help_text="More entries follow this page: ask again with after=next_after and size."
    )
    next_after = serializers.IntegerField(
        allow_null=True, help_text="The last seq of this page when it is partial, else null."
    )
    completeness = CompletenessOutputSerializer(
        allow_null=True,
        help_text="Proof that no entry about the subject was left out (docs/ledger-index.md); "
        "null for a checkpoint signed without a subject map.",
    )


class VerifierKeyOutputSerializer(serializers.Serializer):
    origin = serializers.CharField(help_text="The checkpoint origin line (= the key name).")
    vkey = serializers.CharField(help_text="Note verifier key: <name>+<key id>+<base64 key>.")
    key_id = serializers.CharField(help_text="The 4-byte key id, hex.")
    algorithm = serializers.CharField()
