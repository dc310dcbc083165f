"""The Merkle log's tables.

Entries, subject rows, tree nodes and checkpoints are append-only: database triggers
(migration 0003) reject UPDATE and DELETE on them. Only the integrator writes them, and
only it updates the tree head. Pending events are a queue: the integrator deletes them
once they are numbered.
"""

from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact
from django.utils import timezone

HASH_SIZE = 32


def hash_size_check(model: str, field: str) -> models.CheckConstraint:
    """Hash columns hold exactly 32 bytes."""
    return models.CheckConstraint(
        condition=Exact(Length(field), HASH_SIZE), name=f"ledger_{model}_{field}_32_bytes"
    )


class PendingEvent(models.Model):
    """An event committed with its domain change, waiting for the integrator to number it.

    The write transaction only inserts here (no global lock); the integrator
    moves committed rows into the Merkle log in batches, one writer to the tree.
    """

    kind = models.CharField(max_length=64)
    subjects = models.JSONField(default=list, help_text='Subject keys such as "bundle:12".')
    actor = models.CharField(max_length=128)
    event = models.BinaryField(help_text="RFC 8785 canonical event bytes.")
    created_at = models.DateTimeField(
        default=timezone.now, help_text="The event's time (its `at` field)."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"pending #{self.pk} {self.kind}"


class LedgerEntry(models.Model):
    """One numbered event of the log: its canonical bytes, RFC 9162 leaf hash and chain hash."""

    seq = models.BigIntegerField(primary_key=True, help_text="0, 1, 2, … without gaps.")
    kind = models.CharField(max_length=64)
    actor = models.CharField(max_length=128)
    event = models.BinaryField(help_text="RFC 8785 canonical event bytes (the leaf data).")
    leaf_hash = models.BinaryField(help_text="SHA-256(0x00 || event).")
    chain = models.BinaryField(
        help_text="SHA-256(previous chain || leaf hash); 32 zero bytes precede entry 0."
    )
    event_at = models.DateTimeField(help_text="When the event happened (its `at` field).")
    integrated_at = models.DateTimeField(help_text="When the integrator numbered it.")
    pending_id = models.BigIntegerField(
        unique=True, help_text="The PendingEvent it came from: integrated once."
    )

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=0), name="ledger_entry_seq_gte_0"),
            hash_size_check("entry", "leaf_hash"),
            hash_size_check("entry", "chain"),
        ]
        indexes = [
            # The log key's history (ledger.keys.log_key_rotations): a handful of rows, found
            # without a scan, and no cost to the integrator for the other entries.
            models.Index(
                fields=["seq"],
                condition=models.Q(kind="ledger.key_rotated"),
                name="ledger_entry_key_rotations",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"


class EntrySubject(models.Model):
    """The subject index: entry `seq` is about `key` ("bundle:12"), for histories.

    Derived from the events' `subject` lists by the integrator, in the transaction that
    writes the entries; no database foreign key (its per-row check cost the integrator
    about a tenth of its throughput).
    """

    pk = models.CompositePrimaryKey("key", "entry_id")
    key = models.CharField(max_length=128)
    entry = models.ForeignKey(
        LedgerEntry,
        on_delete=models.DO_NOTHING,
        db_column="seq",
        db_index=False,
        db_constraint=False,
        related_name="subject_rows",
    )

    class Meta:
        ordering = ["key", "entry"]

    def __str__(self) -> str:
        return f"{self.key} #{self.entry_id}"


class TreeNode(models.Model):
    """The hash of one complete subtree (level 0 = a leaf), stored once it is complete.

    The key is the node's position in completion order (see `ledger.storage.node_id`),
    so the integrator only ever appends at the right end of the index.
    """

    id = models.BigIntegerField(primary_key=True, help_text="Completion-order position.")
    hash = models.BinaryField()

    class Meta:
        ordering = ["id"]
        constraints = [hash_size_check("treenode", "hash")]

    def __str__(self) -> str:
        level, index = self.key
        return f"node ({level}, {index})"

    @property
    def key(self) -> tuple[int, int]:
        from ledger.storage import node_key

        return node_key(self.id)

    @property
    def level(self) -> int:
        return self.key[0]

    @property
    def index(self) -> int:
        return self.key[1]


class TreeHead(models.Model):
    """The tree as integrated so far (one row): size, root and chain head."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    root = models.BinaryField()
    chain = models.BinaryField(help_text="The chain hash of the last entry.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="ledger_treehead_singleton"),
            hash_size_check("treehead", "root"),
            hash_size_check("treehead", "chain"),
        ]

    def __str__(self) -> str:
        return f"tree head, size {self.size}"


class Checkpoint(models.Model):
    """A signed tree head in the C2SP tlog-checkpoint signed-note format."""

    origin = models.CharField(max_length=255)
    size = models.BigIntegerField(unique=True)
    root = models.BinaryField()
    note = models.TextField(help_text="The signed note text, as served.")
    key_id = models.CharField(
        max_length=8,
        null=True,
        blank=True,
        help_text="Hex key ID of the log key that signed it (the key current at its size); "
        "empty on checkpoints signed before key rotation existed, whose note names it.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-size"]
        get_latest_by = "size"
        constraints = [hash_size_check("checkpoint", "root")]

    def __str__(self) -> str:
        return f"checkpoint {self.size}"


class SigningFence(models.Model):
    """Which database this log's checkpoints are signed from (one row; ledger/fence.py).

    A restored backup carries this row with the identity of the database it was taken
    from, so a registry running on a restore finds it differs from its own and signs no
    checkpoint until peers' copies of the log confirm that nothing it published is lost.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    database = models.CharField(max_length=200, help_text="The database signing is allowed from.")
    recorded_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True, help_text="How it came to be recorded or lifted.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="ledger_signingfence_singleton")
        ]

    def __str__(self) -> str:
        return f"signing fence: {self.database}"


class SubjectIndexRecord(models.Model):
    """A subject's record in the subject map (ledger/verify/subject_map.py) from index
    size `version` on. Append-only: a later index size adds a row, so a proof at any
    committed size reads the newest row at or below it.

    Keyed by (key, version) alone: a key's first two bytes are its bucket, so one index
    serves uniqueness, a bucket's records in key order (a key range) and the newest
    version of each. A second index (by subject, or by bucket) would double what every
    checkpoint writes at random places (docs/ledger-index.md, "Storage").
    """

    pk = models.CompositePrimaryKey("key", "version")
    key = models.BinaryField(help_text="SHA-256 of the subject: its place in the map.")
    version = models.BigIntegerField(help_text="The index size this record holds from.")
    subject = models.CharField(max_length=128, help_text="The subject, for people reading.")
    count = models.BigIntegerField(help_text="Entries about the subject before `version`.")
    chain = models.BinaryField(help_text="The running hash over those entries' leaf hashes.")

    class Meta:
        ordering = ["key", "version"]
        constraints = [
            models.CheckConstraint(condition=models.Q(count__gt=0), name="ledger_sirecord_count"),
            hash_size_check("subjectindexrecord", "key"),
            hash_size_check("subjectindexrecord", "chain"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at index size {self.version}: {self.count} entries"


class SubjectIndexLatest(models.Model):
    """Each subject's newest record: what the next update reads and rewrites.

    A copy of the newest `SubjectIndexRecord` rows, kept so that an update reads a
    bucket's records (a key range of the primary key, in key order) without picking the
    newest of every record's versions, which grow with every checkpoint. Proofs never
    read it: a proof at a committed size reads the versioned rows, which a concurrent
    update cannot move. Only `count` and `chain` change, and no index holds them, so on
    PostgreSQL an update stays on its page (a HOT update; the table's fillfactor leaves
    the room, migration 0007) and touches no index.
    """

    key = models.BinaryField(primary_key=True)
    count = models.BigIntegerField()
    chain = models.BinaryField()

    class Meta:
        ordering = ["key"]
        constraints = [
            hash_size_check("subjectindexlatest", "key"),
            hash_size_check("subjectindexlatest", "chain"),
        ]

    def __str__(self) -> str:
        return f"{bytes(self.key).hex()[:16]}…: {self.count} entries"


class SubjectIndexNode(models.Model):
    """A node of the subject map's bucket tree (level 0: a bucket, 16: the root) from
    index size `version` on; append-only like the leaves."""

    pk = models.CompositePrimaryKey("level", "position", "version")
    level = models.SmallIntegerField()
    position = models.IntegerField()
    version = models.BigIntegerField()
    hash = models.BinaryField()

    class Meta:
        ordering = ["level", "position", "version"]
        constraints = [hash_size_check("subjectindexnode", "hash")]

    def __str__(self) -> str:
        return f"map node ({self.level}, {self.position}) at index size {self.version}"


class SubjectIndexCommit(models.Model):
    """The subject map root at index size `size`, committed to the log as entry `size`
    (`ledger.subject_index_committed`) just before the checkpoint of size `size` + 1."""

    size = models.BigIntegerField(primary_key=True)
    root = models.BinaryField()
    subjects = models.BigIntegerField(help_text="Subjects with at least one entry.")
    committed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-size"]
        constraints = [hash_size_check("subjectindexcommit", "root")]

    def __str__(self) -> str:
        return f"subject index at size {self.size}"
