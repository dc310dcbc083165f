"""Reads of the log: entries, roots, proofs and subject histories.

Every root and proof is assembled from stored complete-subtree hashes fetched in one
query (`storage.fetch_nodes`): O(log n) rows whatever the size of the log.
"""

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from ledger import storage
from ledger.errors import (
    CheckpointNotFound,
    InvalidProofRequest,
    LedgerCorrupted,
    LedgerEntryNotFound,
    TreeSizeExceeded,
    UnknownSubjectKind,
)
from ledger.index import subject_map_proof
from ledger.keys import log_key_history
from ledger.merkle import (
    EMPTY_ROOT,
    NodeKey,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    nodes_needed,
    range_hashes,
    subtree_nodes,
)
from ledger.models import Checkpoint, LedgerEntry, PendingEvent, TreeHead
from ledger.subjects import subject_kind_known
from ledger.verify.note import NoteError
from ledger.verify.subject_map import MapProofError, index_commit


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    proof: list[bytes]


@dataclass(frozen=True)
class HistoryEntry:
    entry: LedgerEntry
    proof: list[bytes]


@dataclass(frozen=True)
class SubjectHistory:
    key: str
    checkpoint: Checkpoint
    entries: list[HistoryEntry]
    partial: bool = False  # more entries follow: ask again with after=next_after
    next_after: int | None = None
    completeness: dict[str, Any] | None = None


def ledger_tree_size() -> int:
    """How many entries the log holds."""
    size = TreeHead.objects.filter(pk=1).values_list("size", flat=True).first()
    return size or 0


def ledger_queue_length() -> int:
    """How many committed events wait for the integrator."""
    return PendingEvent.objects.count()


def _fetch(keys: set[NodeKey], size: int) -> dict[NodeKey, bytes]:
    """The nodes for `keys` plus the last node of [0, size), which exists iff size fits."""
    last = subtree_nodes(0, size)[-1]
    nodes = storage.fetch_nodes(keys | {last})
    if last not in nodes:
        tree_size = ledger_tree_size()
        raise TreeSizeExceeded(
            f"Tree size {size} is larger than the ledger ({tree_size} entries).",
            size=size,
            tree_size=tree_size,
        )
    return nodes


def _hashes(ranges: list[tuple[int, int]], nodes: dict[NodeKey, bytes]) -> list[bytes]:
    try:
        return range_hashes(ranges, nodes)
    except KeyError as exc:
        raise LedgerCorrupted(str(exc.args[0])) from None


def ledger_root(*, size: int) -> bytes:
    """The root hash of the tree of the first `size` entries."""
    if size < 0:
        raise InvalidProofRequest("The tree size must be >= 0.", size=size)
    if size == 0:
        return EMPTY_ROOT
    nodes = _fetch(set(subtree_nodes(0, size)), size)
    return _hashes([(0, size)], nodes)[0]


def ledger_inclusion_proof(*, seq: int, size: int) -> InclusionProof:
    """RFC 9162 inclusion proof of entry `seq` in the tree of `size` entries."""
    if not 0 <= seq < size:
        raise InvalidProofRequest(
            f"Entry {seq} is not in a tree of size {size} (need 0 <= seq < size).",
            seq=seq,
            size=size,
        )
    ranges = inclusion_proof_ranges(seq, size)
    nodes = _fetch(nodes_needed([*ranges, (0, size)]) | {(0, seq)}, size)
    *proof, root = _hashes([*ranges, (0, size)], nodes)
    return InclusionProof(seq=seq, size=size, leaf_hash=nodes[0, seq], root=root, proof=proof)


def ledger_consistency_proof(*, first: int, second: int) -> ConsistencyProof:
    """RFC 9162 consistency proof that the tree of `second` entries extends that of `first`."""
    if not 0 < first <= second:
        raise InvalidProofRequest(
            f"No consistency proof from size {first} to {second} (need 0 < first <= second).",
            first=first,
            second=second,
        )
    ranges = consistency_proof_ranges(first, second)
    nodes = _fetch(nodes_needed(ranges), second)
    return ConsistencyProof(first=first, second=second, proof=_hashes(ranges, nodes))


def ledger_entry(*, seq: int) -> LedgerEntry:
    """The entry numbered `seq`; LedgerEntryNotFound if there is none."""
    try:
        return LedgerEntry.objects.get(seq=seq)
    except LedgerEntry.DoesNotExist:
        raise LedgerEntryNotFound(seq=seq) from None


def ledger_entries(*, start: int, end: int) -> QuerySet[LedgerEntry]:
    """Entries start <= seq < end, in order."""
    return LedgerEntry.objects.filter(seq__gte=start, seq__lt=end).order_by("seq")


def checkpoint_latest() -> Checkpoint:
    """The checkpoint of the largest tree; CheckpointNotFound before the first."""
    checkpoint = Checkpoint.objects.order_by("-size").first()
    if checkpoint is None:
        raise CheckpointNotFound("No checkpoint has been signed yet.")
    return checkpoint


def checkpoint_by_size(*, size: int) -> Checkpoint:
    """The checkpoint of the tree of `size` entries; CheckpointNotFound if none was signed."""
    try:
        return Checkpoint.objects.get(size=size)
    except Checkpoint.DoesNotExist:
        raise CheckpointNotFound(size=size) from None


def checkpoint_list() -> QuerySet[Checkpoint]:
    """Every checkpoint, largest tree first."""
    return Checkpoint.objects.order_by("-size")


def ledger_subject_history(
    *, key: str, limit: int = 1000, after: int | None = None, size: int | None = None
) -> SubjectHistory:
    """Up to `limit` entries about `key` with seq > `after`, oldest first, each with its
    inclusion proof in the tree of the checkpoint of `size` entries (default: the latest;
    entries after it wait for the next checkpoint).

    A page is `partial` when more entries follow: the next page is `after=next_after` with
    the same `size`, so that every page proves against one checkpoint.

    UnknownSubjectKind for a key whose kind no event can name: an empty list would read as
    "nothing happened to it"."""
    kind = key.partition(":")[0]
    if not subject_kind_known(kind):
        raise UnknownSubjectKind(kind=kind)
    checkpoint = checkpoint_latest() if size is None else checkpoint_by_size(size=size)
    size = checkpoint.size
    rows = LedgerEntry.objects.filter(subject_rows__key=key, seq__lt=size)
    if after is not None:
        rows = rows.filter(seq__gt=after)
    entries = list(rows.order_by("seq")[: limit + 1])
    partial = len(entries) > limit
    entries = entries[:limit]
    completeness = subject_completeness(keys=[key], size=size)
    if not entries:
        return SubjectHistory(key=key, checkpoint=checkpoint, entries=[], completeness=completeness)
    ranges = {entry.seq: inclusion_proof_ranges(entry.seq, size) for entry in entries}
    nodes = _fetch(nodes_needed(r for rs in ranges.values() for r in rs), size)
    return SubjectHistory(
        key=key,
        checkpoint=checkpoint,
        entries=[HistoryEntry(entry, _hashes(ranges[entry.seq], nodes)) for entry in entries],
        partial=partial,
        next_after=entries[-1].seq if partial else None,
        completeness=completeness,
    )


def subject_completeness(*, keys: list[str], size: int) -> dict[str, Any] | None:
    """The proof that a history of `keys` proven at checkpoint `size` is complete.

    The tree of a checkpoint ends with the entry committing the subject map of every entry
    before it (ledger/index.py): that entry with its inclusion proof, and for each key the
    map proof of its count and running hash (or of its absence). None for a checkpoint
    signed without a map (LEDGER_SUBJECT_INDEX off, or signed before the map existed).
    """
    if size == 0:
        return None
    entry = LedgerEntry.objects.filter(seq=size - 1).first()
    try:
        commit = index_commit(bytes(entry.event)) if entry is not None else None
    except MapProofError:
        commit = None
    if commit is None or commit[0] != size - 1:
        return None
    proof = ledger_inclusion_proof(seq=size - 1, size=size)
    return {
        "index_entry": {
            "seq": entry.seq,
            "event_b64": base64.b64encode(bytes(entry.event)).decode("ascii"),
            "proof": [base64.b64encode(h).decode("ascii") for h in proof.proof],
        },
        "subjects": {key: subject_map_proof(key, commit[0]).as_json() for key in keys},
    }


@dataclass(frozen=True)
class LogKeyRotation:
    seq: int
    old_vkey: str
    new_vkey: str
    note: str
    event_b64: bytes
    proof: list[bytes]


@dataclass(frozen=True)
class LogKeyHistory:
    origin: str
    first_vkey: str
    current_vkey: str
    size: int | None
    checkpoint: str | None
    rotations: list[LogKeyRotation]


def log_key_history_proven() -> LogKeyHistory:
    """The log key's history: the first key and every announcement covered by the latest
    checkpoint, each with its inclusion proof in that checkpoint's tree."""
    try:
        history = log_key_history()
    except NoteError as exc:  # a KeyHistoryError, or REGISTRY_FIRST_VKEY unreadable
        raise LedgerCorrupted(f"the ledger's key history does not verify: {exc}") from None
    checkpoint = Checkpoint.objects.order_by("-size").first()
    size = checkpoint.size if checkpoint else 0
    covered = [r for r in history.rotations if r.seq < size]
    events = dict(
        LedgerEntry.objects.filter(seq__in=[r.seq for r in covered]).values_list("seq", "event")
    )
    ranges = {r.seq: inclusion_proof_ranges(r.seq, size) for r in covered}
    nodes = _fetch(nodes_needed(x for rs in ranges.values() for x in rs), size) if covered else {}
    return LogKeyHistory(
        origin=history.origin,
        first_vkey=history.first.encode(),
        current_vkey=history.key_at(size).encode(),
        size=checkpoint.size if checkpoint else None,
        checkpoint=checkpoint.note if checkpoint else None,
        rotations=[
            LogKeyRotation(
                seq=r.seq,
                old_vkey=r.old.encode(),
                new_vkey=r.new.encode(),
                note=r.note,
                event_b64=bytes(events[r.seq]),
                proof=_hashes(ranges[r.seq], nodes),
            )
            for r in covered
        ],
    )


def ledger_queue_oldest() -> dt.datetime | None:
    """When the oldest event still waiting for the integrator was committed (None: none wait)."""
    return PendingEvent.objects.order_by("created_at").values_list("created_at", flat=True).first()
