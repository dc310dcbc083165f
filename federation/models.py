"""Federation tables: peers, what we witnessed for them, our anchors, and their mirrors.

Rows that are evidence or copies of signed data are append-only (database triggers,
migrations 0002 and 0005): witnessed checkpoints, cosignatures, misbehaviour evidence,
mirrored entries (in chunks), mirror tree nodes and mirrored checkpoints. The progress rows
(WitnessProgress, MirrorHead) and Anchor.anchored_at change as work advances.
"""

from django.db import models
from django.utils import timezone

from ledger.merkle import EMPTY_ROOT


class Peer(models.Model):
    """A peer registry: its origin, address, verifier keys and the roles it plays for us."""

    ledger_subject_type = "peer"

    class Role(models.TextChoices):
        WITNESS = "witness", "Witness (cosigns our checkpoints)"
        MIRROR = "mirror", "Mirror (we replicate its log)"
        PARTNER = "partner", "Trading partner (certificate transfers)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended by the issuing body"
        FLAGGED = "flagged", "Flagged: misbehaviour evidence recorded"

    origin = models.CharField(
        max_length=255, unique=True, help_text="The peer's checkpoint origin line."
    )
    name = models.CharField(max_length=200, blank=True)
    base_url = models.URLField(max_length=500, help_text="Root of the peer's public API.")
    witness_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="tlog-witness submission prefix; empty means the base URL.",
    )
    log_vkey = models.CharField(
        max_length=300, help_text="Note verifier key of its checkpoints (named after its origin)."
    )
    witness_vkey = models.CharField(
        max_length=300, help_text="Its cosignature/v1 verifier key (type 0x04)."
    )
    is_witness = models.BooleanField(default=False)
    is_mirror = models.BooleanField(default=False)
    is_partner = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.origin

    @property
    def roles(self) -> list[str]:
        return [role.value for role in self.Role if getattr(self, f"is_{role.value}")]

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def submission_prefix(self) -> str:
        return (self.witness_url or self.base_url).rstrip("/")


class WitnessedCheckpoint(models.Model):
    """A peer's checkpoint that this registry verified and cosigned as its witness."""

    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="witnessed")
    size = models.BigIntegerField()
    root = models.BinaryField()
    note = models.TextField(help_text="The checkpoint as submitted, with the log's signatures.")
    cosigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["peer", "-size"]
        constraints = [
            models.UniqueConstraint(fields=["peer", "size"], name="federation_witnessed_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.peer} @ {self.size}"


class Evidence(models.Model):
    """Signed material showing that a peer's log misbehaved, kept exactly as received."""

    class Kind(models.TextChoices):
        EQUIVOCATION = "equivocation", "Two different signed checkpoints for one tree size"
        ROLLBACK = "rollback", "A signed checkpoint smaller than one already cosigned"
        UNPROVEN_CHECKPOINT = "unproven_checkpoint", "A consistency proof that does not verify"
        INCONSISTENT_CHECKPOINTS = "inconsistent_checkpoints", "Signed checkpoints that fork"
        FORGED_ENTRIES = "forged_entries", "Entries that do not hash to the signed checkpoint"
        WITNESS_CONFLICT = "witness_conflict", "A witness holds another checkpoint of ours"
        WRONG_INDEX_ROOT = "wrong_index_root", "A subject-map root its own entries contradict"

    # Kinds that prove misbehaviour by themselves and flag the peer. A rollback or a bad
    # proof may be a stale retry or a bug, so they are kept without flagging.
    FLAGGING = frozenset(
        {
            Kind.EQUIVOCATION,
            Kind.INCONSISTENT_CHECKPOINTS,
            Kind.FORGED_ENTRIES,
            Kind.WRONG_INDEX_ROOT,
        }
    )

    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    size = models.BigIntegerField(null=True, blank=True, help_text="The tree size concerned.")
    detail = models.TextField()
    first_note = models.TextField(blank=True, help_text="The signed checkpoint we held.")
    second_note = models.TextField(blank=True, help_text="The signed checkpoint that conflicts.")
    data = models.JSONField(default=dict, blank=True, help_text="Proofs, ranges, roots (base64).")
    payload = models.BinaryField(
        blank=True, default=b"", help_text="The offending response body (bounded)."
    )
    digest = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the evidence: recorded once."
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.kind} by {self.peer}"


class RetryState(models.Model):
    """Claim and back-off bookkeeping shared by the outgoing jobs (anchoring, replication).

    A job claims its row under a row lock (claimed_until), works without holding a
    transaction, then records the outcome and releases the claim. A worker that dies
    leaves a claim that expires, so the work is picked up again.
    """

    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Consecutive failures.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Anchor(models.Model):
    """One of our checkpoints sent to the witnesses, and when it reached the quorum."""

    size = models.BigIntegerField(unique=True)
    root = models.BinaryField()
    note = models.TextField(help_text="Our signed checkpoint note (without cosignatures).")
    checkpoint_created_at = models.DateTimeField(help_text="When the ledger signed it.")
    created_at = models.DateTimeField(default=timezone.now)
    anchored_at = models.DateTimeField(
        null=True, blank=True, help_text="When ANCHOR_QUORUM witnesses had cosigned it."
    )

    class Meta:
        ordering = ["-size"]

    def __str__(self) -> str:
        return f"anchor {self.size}"


class Cosignature(models.Model):
    """A witness's tlog-cosignature on one of our checkpoints."""

    anchor = models.ForeignKey(Anchor, on_delete=models.PROTECT, related_name="cosignatures")
    witness = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="cosignatures")
    line = models.TextField(help_text="The signature line, newline-terminated.")
    timestamp = models.BigIntegerField(help_text="The cosignature's own time (Unix seconds).")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["anchor", "witness"]
        constraints = [
            models.UniqueConstraint(
                fields=["anchor", "witness"], name="federation_cosignature_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.witness} on {self.anchor}"


class WitnessProgress(RetryState):
    """Anchoring with one witness: the size it holds for us and the retry state."""

    peer = models.OneToOneField(
        Peer, on_delete=models.PROTECT, primary_key=True, related_name="witness_progress"
    )
    size = models.BigIntegerField(
        default=0, help_text="The size of our log the witness last cosigned (or told us)."
    )

    class Meta:
        verbose_name_plural = "witness progress"

    def __str__(self) -> str:
        return f"{self.peer} holds {self.size}"


class MirrorHead(RetryState):
    """How far our mirror of a peer's log is verified and stored; the tree's right edge."""

    peer = models.OneToOneField(
        Peer, on_delete=models.PROTECT, primary_key=True, related_name="mirror_head"
    )
    size = models.BigIntegerField(default=0)
    root = models.BinaryField(default=EMPTY_ROOT)
    frontier = models.BinaryField(
        default=b"", help_text="Hashes of the complete subtrees of [0, size), 32 bytes each."
    )
    seen_size = models.BigIntegerField(
        default=0, help_text="The largest size of a valid checkpoint the peer has served."
    )
    seen_at = models.DateTimeField(null=True, blank=True)
    behind_since = models.DateTimeField(
        null=True, blank=True, help_text="Since when the peer has entries we do not have."
    )

    def __str__(self) -> str:
        return f"mirror of {self.peer} at {self.size}"


class MirrorCheckpoint(models.Model):
    """A peer's signed checkpoint whose root we recomputed from the mirrored entries."""

    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="mirror_checkpoints")
    size = models.BigIntegerField()
    root = models.BinaryField()
    note = models.TextField()
    verified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["peer", "-size"]
        constraints = [
            models.UniqueConstraint(fields=["peer", "size"], name="federation_mirror_cp_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.peer} checkpoint {self.size}"


def _bulk_peer() -> models.ForeignKey:
    """The peer of a bulk table's row. No database foreign key: the per-row check doubles
    the time of a COPY (measured), and peers are never deleted (PROTECT everywhere else,
    no service)."""
    return models.ForeignKey(
        Peer, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+"
    )


MIRROR_CHUNK_ENTRIES = 16
"""A mirror stores a peer's entries in chunks of up to this many consecutive entries, and no
chunk crosses a multiple of it. One row per entry cost the mirror's database twice the
CPU of a COPY of the same bytes in rows of 16 entries (2.16 against 1.04 us an entry,
measured), and the replication its storing thread."""


class MirroredChunk(models.Model):
    """Consecutive entries of a peer's log from `seq`, stored once their range verified
    against a signed checkpoint (federation.selectors reads them back entry by entry)."""

    pk = models.CompositePrimaryKey("peer_id", "seq")
    peer = _bulk_peer()
    seq = models.BigIntegerField(help_text="The sequence number of the chunk's first entry.")
    events = models.BinaryField(
        help_text="The entries' bytes as an entry bundle: each preceded by its length "
        "(4 bytes, big-endian), at most MIRROR_CHUNK_ENTRIES of them."
    )

    class Meta:
        ordering = ["peer", "seq"]

    def __str__(self) -> str:
        return f"{self.peer_id} #{self.seq}"


class MirrorNode(models.Model):
    """A complete subtree hash of a mirrored log, above the leaves (keyed like the ledger's).

    Leaf hashes are not stored: they are SHA-256(0x00 || entry), recomputed from the
    mirrored entries when a proof needs one. That saves a third of the rows to write.
    """

    pk = models.CompositePrimaryKey("peer_id", "node")
    peer = _bulk_peer()
    node = models.BigIntegerField(help_text="ledger.storage.node_id(level, index).")
    hash = models.BinaryField()

    class Meta:
        ordering = ["peer", "node"]

    def __str__(self) -> str:
        return f"{self.peer_id} node {self.node}"


class PeerRequestNonce(models.Model):
    """A signed peer request already accepted: a replay inside the clock window is refused."""

    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="+")
    nonce = models.CharField(max_length=64)
    signed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["peer", "nonce"], name="federation_nonce_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.peer_id} {self.nonce}"


class MirrorIndexState(models.Model):
    """How far a mirror has checked a peer's subject-map commitments (federation/index_check.py).

    With `MirrorIndexRecord` and `MirrorIndexBucket` it is the peer's map after its first
    `size` entries, so the next check reads only the entries mirrored since. `last_leaf`
    (the leaf hash of entry `size` - 1) ties it to the mirrored entries it was built from:
    if they no longer match, the map is rebuilt from the first entry.
    """

    peer = models.OneToOneField(
        Peer, on_delete=models.PROTECT, primary_key=True, related_name="index_state"
    )
    size = models.BigIntegerField(default=0)
    last_leaf = models.BinaryField(default=b"", blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.peer_id}: subject map checked to {self.size}"


class MirrorIndexRecord(models.Model):
    """A subject's record (count, chain) in a mirrored peer's subject map, as of the state."""

    pk = models.CompositePrimaryKey("peer_id", "key")
    peer = _bulk_peer()
    key = models.BinaryField()
    bucket = models.IntegerField()
    count = models.BigIntegerField()
    chain = models.BinaryField()

    class Meta:
        ordering = ["peer", "key"]
        indexes = [models.Index(fields=["peer", "bucket"], name="fed_mirror_index_bucket")]

    def __str__(self) -> str:
        return f"{self.peer_id} {bytes(self.key).hex()[:16]}…: {self.count}"


class MirrorIndexBucket(models.Model):
    """A bucket's hash in a mirrored peer's subject map, as of the state."""

    pk = models.CompositePrimaryKey("peer_id", "bucket")
    peer = _bulk_peer()
    bucket = models.IntegerField()
    hash = models.BinaryField()

    class Meta:
        ordering = ["peer", "bucket"]

    def __str__(self) -> str:
        return f"{self.peer_id} bucket {self.bucket}"
