"""Reads: peers, anchors and their delays, mirrors and their proofs, peer status."""

import datetime as dt
import io
import json
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from certificates.models import CertificateExport, CertificateImport
from federation import errors
from federation.models import (
    MIRROR_CHUNK_ENTRIES,
    Anchor,
    Cosignature,
    Evidence,
    MirrorCheckpoint,
    MirroredChunk,
    MirrorHead,
    Peer,
    WitnessedCheckpoint,
    WitnessProgress,
)
from federation.protocol import encode_bundle, parse_bundle
from ledger.merkle import (
    EMPTY_ROOT,
    NodeKey,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    leaf_hash,
    nodes_needed,
    range_hashes,
)
from ledger.models import Checkpoint, LedgerEntry
from ledger.selectors import ledger_entries
from ledger.storage import node_id
from ledger.verify.rfc9162 import root_from_leaf_hashes

# ---------------------------------------------------------------- peers and evidence


def peer_list() -> QuerySet[Peer]:
    """Every peer (peers, their keys and roles are public)."""
    return Peer.objects.all()


def peer_partner_find(origin: str) -> Peer | None:
    """The active partner registry of that origin, or None (certificates' export destination
    lookup, registered in FederationConfig.ready)."""
    return Peer.objects.filter(origin=origin, status=Peer.Status.ACTIVE, is_partner=True).first()


def evidence_list(*, peer_id: int | None = None) -> QuerySet[Evidence]:
    """Evidence of peers' misbehaviour, of one peer when `peer_id` is given."""
    qs = Evidence.objects.select_related("peer")
    return qs if peer_id is None else qs.filter(peer_id=peer_id)


# ---------------------------------------------------------------- anchoring


@dataclass(frozen=True)
class DelayStats:
    """Seconds from a checkpoint's signing until it (or a later one) reached the quorum."""

    count: int
    pending: int
    median: float | None
    p99: float | None
    max: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


def _stats(delays: Iterable[float], pending: int = 0) -> DelayStats:
    ordered = sorted(delays)
    return DelayStats(
        count=len(ordered),
        pending=pending,
        median=percentile(ordered, 50),
        p99=percentile(ordered, 99),
        max=ordered[-1] if ordered else None,
    )


def anchoring_delays(*, limit: int = 1000) -> DelayStats:
    """Anchoring delay over our last `limit` checkpoints.

    A checkpoint counts as anchored when it, or any later checkpoint, reached the quorum:
    a later anchored checkpoint with a consistency proof covers it. Checkpoints whose
    successors have not reached the quorum yet are `pending`.
    """
    checkpoints = list(
        Checkpoint.objects.filter(size__gt=0)
        .order_by("-size")
        .values_list("size", "created_at")[:limit]
    )
    if not checkpoints:
        return _stats([])
    anchored = list(
        Anchor.objects.filter(anchored_at__isnull=False, size__gte=checkpoints[-1][0])
        .order_by("-size")
        .values_list("size", "anchored_at")
    )
    delays: list[float] = []
    pending = 0
    earliest: dt.datetime | None = None
    i = 0
    for size, created_at in checkpoints:  # newest first
        while i < len(anchored) and anchored[i][0] >= size:
            at = anchored[i][1]
            earliest = at if earliest is None or at < earliest else earliest
            i += 1
        if earliest is None:
            pending += 1
        else:
            delays.append(max(0.0, (earliest - created_at).total_seconds()))
    return _stats(delays, pending)


def witness_delays(*, peer_id: int, limit: int = 1000) -> DelayStats:
    """Seconds from our checkpoint's signing to this witness's cosignature."""
    rows = Cosignature.objects.filter(witness_id=peer_id).order_by("-anchor__size")[:limit]
    return _stats(
        (received - created).total_seconds()
        for received, created in rows.values_list("received_at", "anchor__checkpoint_created_at")
    )


def anchor_latest() -> Anchor:
    """The latest of our checkpoints that reached the quorum, with its cosignatures."""
    anchor = (
        Anchor.objects.filter(anchored_at__isnull=False)
        .prefetch_related("cosignatures__witness")
        .order_by("-size")
        .first()
    )
    if anchor is None:
        raise errors.AnchoredCheckpointNotFound(quorum=settings.ANCHOR_QUORUM)
    return anchor


def anchor_note(anchor: Anchor) -> str:
    """Our signed note with every cosignature appended (tlog-cosignature)."""
    lines = [c.line for c in sorted(anchor.cosignatures.all(), key=lambda c: c.witness.origin)]
    return anchor.note + "".join(lines)


# ---------------------------------------------------------------- replication source


def log_entry_events(*, start: int, end: int) -> list[bytes]:
    """The bytes of our ledger's entries start <= seq < end (what peers replicate)."""
    rows = ledger_entries(start=start, end=end).values_list("event", flat=True)
    return [bytes(event) for event in rows]


_BUNDLE_COPY = (
    # One row of two fields: the count, then the bundle (NULL when there are no entries).
    "COPY (SELECT count(*), string_agg(int4send(octet_length(event)) || event, ''::bytea "
    "ORDER BY seq) FROM {table} WHERE seq >= {start} AND seq < {end}) TO STDOUT (FORMAT binary)"
)
_BUNDLE_ROW = struct.Struct("!19shiqi")  # COPY header, field count, (8, count), bundle length


def log_entry_bundle(*, start: int, end: int) -> tuple[bytes, int]:
    """Our ledger's entries start <= seq < end as one entry bundle (federation.protocol),
    and how many it holds: what peers replicate.

    On PostgreSQL the database builds the bundle and sends it in COPY's binary format. As
    ORM rows, each entry's bytes crossed the wire hex-encoded and were copied three times
    in Python: the source's gunicorn spent 4.9 us of CPU per entry replicated, 0.85 us this
    way (benchmarks/federation_bench.py, 1M entries).
    """
    if connection.vendor != "postgresql":
        events = log_entry_events(start=start, end=end)
        return encode_bundle(events), len(events)
    sql = _BUNDLE_COPY.format(table=LedgerEntry._meta.db_table, start=int(start), end=int(end))
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.copy_expert(sql, buffer)
    raw = buffer.getbuffer()
    _header, _fields, _width, count, length = _BUNDLE_ROW.unpack_from(raw)
    if length < 0:
        return b"", 0
    return bytes(raw[_BUNDLE_ROW.size : _BUNDLE_ROW.size + length]), count


# ---------------------------------------------------------------- mirrors


def mirror_head(*, origin: str) -> MirrorHead:
    """The mirror of the log named `origin`; MirrorNotFound if we do not mirror it."""
    head = MirrorHead.objects.select_related("peer").filter(peer__origin=origin).first()
    if head is None or (head.size == 0 and not head.peer.is_mirror):
        raise errors.MirrorNotFound(origin=origin)
    return head


def mirror_list() -> QuerySet[MirrorHead]:
    """The mirrors holding entries, by origin."""
    return MirrorHead.objects.select_related("peer").filter(size__gt=0).order_by("peer__origin")


def mirror_checkpoint_latest(*, head: MirrorHead) -> MirrorCheckpoint:
    """The mirror's largest verified checkpoint within its mirrored size."""
    checkpoint = (
        MirrorCheckpoint.objects.filter(peer_id=head.peer_id, size__lte=head.size)
        .order_by("-size")
        .first()
    )
    if checkpoint is None:
        raise errors.MirrorNotFound(
            "No checkpoint of this origin has been verified yet.", origin=head.peer.origin
        )
    return checkpoint


@dataclass(frozen=True)
class MirrorEntry:
    """One mirrored entry: its sequence number and bytes."""

    seq: int
    event: bytes


def _chunk_rows(peer_id: int, ranges: Iterable[tuple[int, int]]) -> QuerySet[MirroredChunk]:
    # No chunk crosses a multiple of MIRROR_CHUNK_ENTRIES: the one holding entry `a` starts
    # at or after the multiple at or below `a`.
    spans = Q()
    for a, b in ranges:
        spans |= Q(seq__gte=a - a % MIRROR_CHUNK_ENTRIES, seq__lt=b)
    return MirroredChunk.objects.filter(spans, peer_id=peer_id).order_by()


def mirror_events(*, peer_id: int, ranges: Iterable[tuple[int, int]]) -> dict[int, bytes]:
    """The mirrored entries of a peer in these [start, end) ranges, by sequence number (those
    stored: a mirror holds [0, its size))."""
    ranges = [(a, b) for a, b in ranges if a < b]
    if not ranges:
        return {}
    found: dict[int, bytes] = {}
    for seq, events in _chunk_rows(peer_id, ranges).values_list("seq", "events"):
        found.update(enumerate(parse_bundle(bytes(events), MIRROR_CHUNK_ENTRIES), seq))
    return {seq: event for seq, event in found.items() if any(a <= seq < b for a, b in ranges)}


def mirror_entries(*, head: MirrorHead, start: int, end: int) -> list[MirrorEntry]:
    """Mirrored entries start <= seq < end, stopping at the mirrored size, in order."""
    end = min(end, head.size)
    events = mirror_events(peer_id=head.peer_id, ranges=[(start, end)])
    return [MirrorEntry(seq, events[seq]) for seq in range(start, end) if seq in events]


def mirror_entry(*, head: MirrorHead, seq: int) -> MirrorEntry:
    """One mirrored entry; MirrorEntryNotFound if it is not mirrored yet."""
    if seq >= head.size:  # not mirrored yet: no need to look
        raise errors.MirrorEntryNotFound(seq=seq)
    event = mirror_events(peer_id=head.peer_id, ranges=[(seq, seq + 1)]).get(seq)
    if event is None:
        raise errors.MirrorEntryNotFound(seq=seq)
    return MirrorEntry(seq, event)


MIRROR_LOWEST_STORED_LEVEL = 4
"""Mirrors store subtree hashes of 16 leaves and up; smaller ones are recomputed from the
entries (at most 15 per level below, a few dozen per proof). Storing every level cost a
third of a replication's time (measured: 6.55 s without subtree hashes, 9.48 s with all,
for 1M entries)."""


def _small_subtrees(peer_id: int, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
    """Hashes of leaves and of subtrees below MIRROR_LOWEST_STORED_LEVEL, from the entries."""
    spans = {key: range(key[1] << key[0], (key[1] + 1) << key[0]) for key in keys}
    events = mirror_events(peer_id=peer_id, ranges=[(s.start, s.stop) for s in spans.values()])
    leaves = {seq: leaf_hash(event) for seq, event in events.items()}
    found = {}
    for key, span in spans.items():
        if all(seq in leaves for seq in span):
            found[key] = root_from_leaf_hashes([leaves[seq] for seq in span])
    return found


def mirror_fetch_nodes(peer_id: int, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """Hashes of these nodes of a mirrored tree, in two queries at most.

    Subtrees of 2**MIRROR_LOWEST_STORED_LEVEL leaves and up are stored (MirrorNode); the
    smaller ones, and the leaves, are recomputed from the mirrored entries.
    """
    keys = set(keys)
    small = {key for key in keys if key[0] < MIRROR_LOWEST_STORED_LEVEL}
    ids = {node_id(level, index): (level, index) for level, index in keys - small}
    found = _small_subtrees(peer_id, small) if small else {}
    if not ids:
        return found
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT node, hash FROM federation_mirrornode "
                "WHERE peer_id = %s AND node = ANY(%s)",
                [peer_id, list(ids)],
            )
        else:
            cursor.execute(
                "SELECT node, hash FROM federation_mirrornode WHERE peer_id = %s "
                "AND node IN (SELECT value FROM json_each(%s))",
                [peer_id, json.dumps(list(ids))],
            )
        found.update({ids[key]: bytes(value) for key, value in cursor.fetchall()})
    return found


def _mirror_hashes(head: MirrorHead, ranges: list[tuple[int, int]], size: int) -> list[bytes]:
    if size > head.size:
        raise errors.MirrorProofUnavailable(
            f"The mirror holds {head.size} entries, not {size}.", size=size, mirror_size=head.size
        )
    nodes = mirror_fetch_nodes(head.peer_id, nodes_needed(ranges))
    try:
        return range_hashes(ranges, nodes)
    except KeyError as exc:
        raise errors.MirrorProofUnavailable(f"Mirror tree incomplete: {exc.args[0]}") from None


def mirror_root(*, head: MirrorHead, size: int) -> bytes:
    """The root hash of the first `size` mirrored entries."""
    if size == 0:
        return EMPTY_ROOT
    return _mirror_hashes(head, [(0, size)], size)[0]


@dataclass(frozen=True)
class MirrorInclusionProof:
    seq: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]


@dataclass(frozen=True)
class MirrorConsistencyProof:
    first: int
    second: int
    proof: list[bytes]


def mirror_inclusion_proof(*, head: MirrorHead, seq: int, size: int) -> MirrorInclusionProof:
    """RFC 9162 inclusion proof of entry `seq` in the mirror's tree of `size` entries."""
    if not 0 <= seq < size:
        raise errors.MirrorProofUnavailable(f"Entry {seq} is not in a tree of size {size}.")
    ranges = inclusion_proof_ranges(seq, size)
    *proof, root, leaf = _mirror_hashes(head, [*ranges, (0, size), (seq, seq + 1)], size)
    return MirrorInclusionProof(seq=seq, size=size, leaf_hash=leaf, root=root, proof=proof)


def mirror_consistency_proof(
    *, head: MirrorHead, first: int, second: int
) -> MirrorConsistencyProof:
    """RFC 9162 consistency proof between two sizes of the mirrored tree."""
    if not 0 < first <= second:
        raise errors.MirrorProofUnavailable(
            f"No consistency proof from size {first} to {second} (need 0 < first <= second)."
        )
    proof = _mirror_hashes(head, consistency_proof_ranges(first, second), second)
    return MirrorConsistencyProof(first=first, second=second, proof=proof)


# ---------------------------------------------------------------- status


@dataclass
class PeerStatus:
    peer: Peer
    evidence_count: int
    # Replication (we mirror the peer).
    mirror_size: int = 0
    mirror_checkpoint_size: int | None = None
    mirror_checkpoint_at: dt.datetime | None = None
    seen_size: int = 0
    seen_at: dt.datetime | None = None
    lag_entries: int = 0
    lag_seconds: float = 0.0
    mirror_last_success_at: dt.datetime | None = None
    mirror_last_error: str = ""
    mirror_last_error_at: dt.datetime | None = None
    mirror_next_attempt_at: dt.datetime | None = None
    # Anchoring (the peer witnesses us).
    witness_size: int = 0
    witness_lag_entries: int = 0
    witness_last_success_at: dt.datetime | None = None
    witness_last_error: str = ""
    witness_last_error_at: dt.datetime | None = None
    witness_next_attempt_at: dt.datetime | None = None
    witness_delay: DelayStats | None = None
    # Witnessing (we witness the peer).
    witnessed_size: int | None = None
    witnessed_at: dt.datetime | None = None
    # Certificate transfers with the peer (a trading partner).
    exports_pending: int = 0
    exports_imported: int = 0
    exports_returned: int = 0
    export_last_error: str = ""
    imports_received: int = 0


def _export_counts() -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    rows = CertificateExport.objects.values("destination_id", "status").annotate(n=Count("pk"))
    for row in rows:
        counts.setdefault(row["destination_id"], {})[row["status"]] = row["n"]
    return counts


def _our_latest_size() -> int:
    return Checkpoint.objects.order_by("-size").values_list("size", flat=True).first() or 0


def peer_status_list(*, now: dt.datetime | None = None) -> list[PeerStatus]:
    """Where every peer stands: mirror lag, anchoring with it, what we witnessed for it."""
    now = now or timezone.now()
    ours = _our_latest_size()
    peers = Peer.objects.annotate(evidence_count=Count("evidence")).order_by("origin")
    heads = {h.peer_id: h for h in MirrorHead.objects.all()}
    exports = _export_counts()
    imports = dict(
        CertificateImport.objects.values("origin")
        .annotate(n=Count("pk"))
        .values_list("origin", "n")
    )
    progress = {p.peer_id: p for p in WitnessProgress.objects.all()}
    statuses = []
    for peer in peers:
        status = PeerStatus(peer=peer, evidence_count=peer.evidence_count)
        head = heads.get(peer.pk)
        if head is not None:
            latest = (
                MirrorCheckpoint.objects.filter(peer=peer)
                .order_by("-size")
                .values_list("size", "verified_at")
            ).first()
            if latest:
                status.mirror_checkpoint_size, status.mirror_checkpoint_at = latest
            status.mirror_size = head.size
            status.seen_size, status.seen_at = head.seen_size, head.seen_at
            status.lag_entries = max(0, head.seen_size - head.size)
            if head.behind_since and status.lag_entries:
                status.lag_seconds = max(0.0, (now - head.behind_since).total_seconds())
            status.mirror_last_success_at = head.last_success_at
            status.mirror_last_error = head.last_error
            status.mirror_last_error_at = head.last_error_at
            status.mirror_next_attempt_at = head.next_attempt_at
        witness = progress.get(peer.pk)
        if witness is not None and peer.is_witness:
            status.witness_size = witness.size
            status.witness_lag_entries = max(0, ours - witness.size)
            status.witness_last_success_at = witness.last_success_at
            status.witness_last_error = witness.last_error
            status.witness_last_error_at = witness.last_error_at
            status.witness_next_attempt_at = witness.next_attempt_at
            status.witness_delay = witness_delays(peer_id=peer.pk)
        witnessed = (
            WitnessedCheckpoint.objects.filter(peer=peer)
            .order_by("-size")
            .values_list("size", "cosigned_at")
            .first()
        )
        if witnessed:
            status.witnessed_size, status.witnessed_at = witnessed
        counts = exports.get(peer.pk, {})
        status.exports_pending = counts.get(CertificateExport.Status.PENDING, 0)
        status.exports_imported = counts.get(CertificateExport.Status.IMPORTED, 0)
        status.exports_returned = counts.get(CertificateExport.Status.RETURNED, 0)
        if status.exports_pending:
            status.export_last_error = (
                CertificateExport.objects.filter(
                    destination=peer, status=CertificateExport.Status.PENDING
                )
                .exclude(last_error="")
                .order_by("-next_attempt_at")
                .values_list("last_error", flat=True)
                .first()
                or ""
            )
        status.imports_received = imports.get(peer.origin, 0)
        statuses.append(status)
    return statuses


@dataclass(frozen=True)
class FederationStatus:
    origin: str
    checkpoint_size: int
    anchored_size: int | None
    anchored_at: dt.datetime | None
    quorum: int
    anchoring_delay: DelayStats
    peers: list[PeerStatus]


def federation_status() -> FederationStatus:
    """Our anchoring and every peer's mirror and witness state, for the status API and page."""
    anchored = (
        Anchor.objects.filter(anchored_at__isnull=False)
        .order_by("-size")
        .values_list("size", "anchored_at")
        .first()
    )
    return FederationStatus(
        origin=settings.REGISTRY_ORIGIN,
        checkpoint_size=_our_latest_size(),
        anchored_size=anchored[0] if anchored else None,
        anchored_at=anchored[1] if anchored else None,
        quorum=settings.ANCHOR_QUORUM,
        anchoring_delay=anchoring_delays(),
        peers=peer_status_list(),
    )


def anchor_cosignature_counts(*, sizes: list[int]) -> dict[int, int]:
    """How many witnesses cosigned each of our checkpoints of these sizes (one query)."""
    rows = (
        Anchor.objects.filter(size__in=sizes)
        .annotate(n=Count("cosignatures"))
        .values_list("size", "n")
    )
    return dict(rows)
