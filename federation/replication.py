"""Replication: pull a peer's log by range, recompute its tree, keep a verified mirror.

For each mirror peer (`peer_replicate`):

1. claim its MirrorHead row (as anchoring does: a lock held only to mark the claim);
2. fetch the peer's checkpoint and verify it with the peer's registered log key (or, once
   the peer rotated its key, with the key its key history leads to: federation/peer_keys.py);
3. if it is larger than the mirror, check the peer's consistency proof from the mirror's
   size (a fork shows here, before any entry is fetched); then fetch the new entries
   (its tlog-tiles when they cover the checkpoint, `federation.tiles_source`; else GridProof
   entry bundles when the peer serves them, else the ledger API's JSON pages)
   in batches, several requests in flight at once, extend the mirror's CompactRange and
   check every batch against the signed checkpoint: the last batch by its root, the others by
   a consistency proof from the batch's end to the checkpoint. Only a batch that passes
   is stored (entries, tree nodes and the new head in one transaction, no I/O inside);
4. record success, or the error and a back-off, and release the claim.

Entries that do not hash to the signed root, or signed checkpoints that do not fit
together, flag the peer and are kept as evidence; nothing of the bad response is stored
(batches verified before it stay).
"""

import base64
import datetime as dt
import functools
import hashlib
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from federation import client, locks, peer_keys
from federation.anchoring import backoff_seconds
from federation.client import PeerResponseInvalid, PeerUnreachable
from federation.fetching import (  # noqa: F401 (_Source, _source, _fetch_range: benchmarks)
    CHECKPOINT_PATH,
    ReplicationFailed,
    _batches,
    _fetch_consistency,
    _fetch_range,
    _get,
    _limits,
    _Page,
    _Source,
    _source,
)
from federation.models import (
    MIRROR_CHUNK_ENTRIES,
    Evidence,
    MirrorCheckpoint,
    MirrorHead,
    Peer,
)
from federation.protocol import encode_bundle
from federation.selectors import MIRROR_LOWEST_STORED_LEVEL, mirror_root
from federation.services import evidence_record
from ledger import storage
from ledger.merkle import CompactRange
from ledger.verify.note import Checkpoint, NoteError, VerifierKey
from ledger.verify.rfc9162 import ProofError, verify_consistency
from registry.hooks import Hook

logger = logging.getLogger(__name__)

MIRROR_NOTIFIED_HOOKS = Hook("federation.mirror_notified")
"""Called on commit with the id of a mirrored peer that announced a new checkpoint
(federation.tasks registers: replicate it now)."""

HASH_SIZE = 32


class Misbehaviour(Exception):
    """The peer's signed data or entries do not fit together: evidence to keep."""

    def __init__(self, kind: str, detail: str, **evidence: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.evidence = evidence


@dataclass(frozen=True)
class ReplicationResult:
    origin: str
    outcome: str  # skipped | up_to_date | replicated | failed | flagged
    size_before: int = 0
    size_after: int = 0
    checkpoint_size: int | None = None
    error: str = ""

    @property
    def entries(self) -> int:
        return self.size_after - self.size_before


@dataclass
class _Head:
    peer: Peer
    key: VerifierKey
    size: int
    root: bytes
    frontier: list[bytes]
    rotated: tuple[VerifierKey, int] | None = None  # the peer's new key, its announcement


def _claim_seconds() -> float:
    return 4 * settings.FEDERATION_HTTP_TIMEOUT_SECONDS + 30


def _split_frontier(raw: bytes) -> list[bytes]:
    raw = bytes(raw)
    return [raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)]


@transaction.atomic
def _claim(peer_id: int, now: dt.datetime, force: bool) -> _Head | None:
    head = locks.mirror_head_lock(peer_id, create=True)
    peer = Peer.objects.get(pk=peer_id)
    if not (peer.is_active and peer.is_mirror):
        return None
    if head.claimed_until and head.claimed_until > now:
        return None
    if not force and head.next_attempt_at and head.next_attempt_at > now:
        return None
    head.claimed_until = now + dt.timedelta(seconds=_claim_seconds())
    head.last_attempt_at = now
    head.save(update_fields=["claimed_until", "last_attempt_at"])
    return _Head(
        peer=peer,
        key=VerifierKey.parse(peer.log_vkey),
        size=head.size,
        root=bytes(head.root),
        frontier=_split_frontier(head.frontier),
    )


# ---------------------------------------------------------------- fetching (federation/fetching.py)


def _fetch_checkpoint(head: _Head) -> tuple[str, Checkpoint]:
    url = client.join(head.peer.base_url, CHECKPOINT_PATH)
    note = _get(url, accept="text/plain").text()
    try:
        checkpoint, head.rotated = peer_keys.peer_checkpoint_verify(
            head.peer, head.key, note, lambda url: _get(url).json()
        )
    except NoteError as exc:
        # Not evidence: a signature we cannot verify proves nothing about the peer.
        raise ReplicationFailed(f"the peer's checkpoint does not verify: {exc}") from None
    return note, checkpoint


# ---------------------------------------------------------------- checking and storing


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _forged_detail(pages: list[_Page], start: int, end: int, size: int) -> tuple[str, list[int]]:
    """Name the entries whose own leaf_hash field disagrees with their bytes, if any."""
    suspects = []
    for page in pages:
        for offset, (event, claimed) in enumerate(zip(page.events, page.leaf_hashes, strict=True)):
            if claimed is not None and claimed != _b64(hashlib.sha256(b"\0" + event).digest()):
                suspects.append(page.start + offset)
    detail = f"Entries [{start}, {end}) do not hash to the peer's signed checkpoint of size {size}."
    if suspects:
        detail += f" Entries whose bytes do not match their own leaf hash: {suspects[:20]}."
    return detail, suspects


def _check_batch(
    head: _Head,
    note: str,
    cp: Checkpoint,
    start: int,
    end: int,
    pages: list[_Page],
    proof_ahead: Future | None = None,
) -> tuple[CompactRange, list[tuple[int, int, bytes]]]:
    """Extend the tree with the batch and check it against the signed checkpoint (with the
    consistency proof from `end` fetched ahead, if `_batches` did). Returns the tree and
    the completed nodes the mirror stores: those of MIRROR_LOWEST_STORED_LEVEL and up."""
    tree = CompactRange(start, head.frontier)
    sha256, append, lowest = hashlib.sha256, tree.append, MIRROR_LOWEST_STORED_LEVEL
    nodes: list[tuple[int, int, bytes]] = []
    for page in pages:
        for event in page.events:
            completed = append(sha256(b"\0" + event).digest())  # by level, the leaf first
            if len(completed) > lowest:  # one leaf in 2**lowest completes a stored node
                nodes += completed[lowest:]
    if tree.size != end:
        raise ReplicationFailed(f"batch [{start}, {end}) holds {tree.size - start} entries")
    root = tree.root()
    proof: list[bytes] = []
    try:
        if end == cp.size:
            if root != cp.root:
                raise ProofError("the root of the entries is not the checkpoint's root")
        else:
            if proof_ahead is not None:
                proof = proof_ahead.result()
            else:
                proof = _fetch_consistency(head.peer, end, cp.size)
            verify_consistency(end, cp.size, proof, root, cp.root)
    except ProofError as exc:
        detail, suspects = _forged_detail(pages, start, end, cp.size)
        raise Misbehaviour(
            Evidence.Kind.FORGED_ENTRIES,
            f"{detail} ({exc})",
            size=cp.size,
            second_note=note,
            data={
                "start": start,
                "end": end,
                "computed_root": _b64(root),
                "proof": [_b64(h) for h in proof],
                "suspect_seqs": suspects[:100],
                "entries_sha256": hashlib.sha256(b"".join(p.raw for p in pages)).hexdigest(),
            },
            payload=b"".join(p.raw for p in pages),
        ) from None
    return tree, nodes


def _chunks(peer_id: int, pages: list[_Page]) -> list[tuple[int, int, bytes]]:
    """The pages' entries as MirroredChunk rows (peer, first seq, entry bundle): slices of
    the bundles fetched, when the peer sent bundles."""
    rows = []
    for page in pages:
        events = page.events
        bundle = page.raw if page.bundled else encode_bundle(events)
        # entry i starts in the bundle after i lengths (4 bytes each) and the entries before it
        before = list(accumulate(map(len, events), initial=0))
        seq, i, count = page.start, 0, len(events)
        while i < count:
            j = min(count, i + MIRROR_CHUNK_ENTRIES - seq % MIRROR_CHUNK_ENTRIES)
            rows.append((peer_id, seq, bundle[4 * i + before[i] : 4 * j + before[j]]))
            seq, i = seq + j - i, j
    return rows


@transaction.atomic
def _store_batch(
    peer_id: int,
    start: int,
    pages: list[_Page],
    nodes: list[tuple[int, int, bytes]],
    tree: tuple[int, bytes, list[bytes]],
    checkpoint: tuple[str, Checkpoint] | None,
) -> None:
    """Store one verified batch: entries, subtree hashes, the new head (size, root, frontier)."""
    row = locks.mirror_head_lock(peer_id)
    if row.size != start:
        raise ReplicationFailed(f"the mirror moved to {row.size} while this run fetched {start}")
    storage.bulk_insert_ints_bytes(
        "federation_mirroredchunk", ("peer_id", "seq", "events"), _chunks(peer_id, pages)
    )
    storage.bulk_insert_ints_bytes(
        "federation_mirrornode",
        ("peer_id", "node", "hash"),
        # `_check_batch` kept no node below MIRROR_LOWEST_STORED_LEVEL: selectors recompute
        # those from the entries.
        [(peer_id, storage.node_id(level, index), h) for level, index, h in nodes],
    )
    row.size, row.root, frontier = tree
    row.frontier = b"".join(frontier)
    row.claimed_until = timezone.now() + dt.timedelta(seconds=_claim_seconds())
    row.save(update_fields=["size", "root", "frontier", "claimed_until"])
    if checkpoint is not None:
        note, cp = checkpoint
        MirrorCheckpoint.objects.create(peer_id=peer_id, size=cp.size, root=cp.root, note=note)


def _close_connection() -> None:
    """Close the calling thread's database connection."""
    connection.close()


class _Writer:
    """Stores verified batches in order, at most DEPTH behind the batch being checked.

    Run by a Celery task (no transaction open), the stores go to a second thread with
    its own database connection, so the database ingests one batch while the next is
    fetched and hashed; two may wait, so that one slow commit does not stop the checking.
    Inside a transaction (tests, callers that hold one) a second connection would not see
    it, so the stores run inline.
    """

    DEPTH = 2

    def __init__(self) -> None:
        threaded = not connection.in_atomic_block
        self._pool = ThreadPoolExecutor(1) if threaded else None
        self._pending: deque[Future] = deque()

    def submit(self, *args) -> None:
        if self._pool is None:
            _store_batch(*args)
            return
        while len(self._pending) >= self.DEPTH:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(_store_batch, *args))

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        try:
            if exc is None:
                self.wait()
            else:
                # The batches in flight were verified: let them land; the first error wins.
                for pending in self._pending:
                    pending.exception()
        finally:
            self._pool.submit(_close_connection).result()
            self._pool.shutdown()


def _latest_note(peer: Peer, below: int) -> str:
    return (
        MirrorCheckpoint.objects.filter(peer=peer, size__lte=below)
        .order_by("-size")
        .values_list("note", flat=True)
        .first()
        or ""
    )


def _check_against_mirror(head: _Head, note: str, cp: Checkpoint) -> bool:
    """Whether the checkpoint is new to the mirror; Misbehaviour if it contradicts it."""
    if cp.size > head.size:
        if head.size:
            proof = _fetch_consistency(head.peer, head.size, cp.size)
            try:
                verify_consistency(head.size, cp.size, proof, head.root, cp.root)
            except ProofError as exc:
                raise Misbehaviour(
                    Evidence.Kind.INCONSISTENT_CHECKPOINTS,
                    f"The peer's checkpoint of size {cp.size} does not extend the tree of size "
                    f"{head.size} it signed before ({exc}).",
                    size=cp.size,
                    first_note=_latest_note(head.peer, head.size),
                    second_note=note,
                    data={
                        "first": head.size,
                        "second": cp.size,
                        "mirror_root": _b64(head.root),
                        "proof": [_b64(h) for h in proof],
                    },
                ) from None
        return True
    mirror_head_row = MirrorHead.objects.get(peer_id=head.peer.pk)
    ours = head.root if cp.size == head.size else mirror_root(head=mirror_head_row, size=cp.size)
    if ours != cp.root:
        same = MirrorCheckpoint.objects.filter(peer=head.peer, size=cp.size).first()
        raise Misbehaviour(
            Evidence.Kind.EQUIVOCATION if same else Evidence.Kind.INCONSISTENT_CHECKPOINTS,
            f"The peer signed a root for size {cp.size} other than the one its entries give.",
            size=cp.size,
            first_note=same.note if same else _latest_note(head.peer, head.size),
            second_note=note,
            data={"size": cp.size, "mirror_root": _b64(ours)},
        )
    if (
        cp.size == head.size
        and cp.size
        and not (MirrorCheckpoint.objects.filter(peer=head.peer, size=cp.size).exists())
    ):
        MirrorCheckpoint.objects.create(peer=head.peer, size=cp.size, root=cp.root, note=note)
    return False


def _replicate(head: _Head, max_entries: int) -> tuple[str, Checkpoint]:
    note, cp = _fetch_checkpoint(head)
    _record_seen(head.peer.pk, cp.size)
    if not _check_against_mirror(head, note, cp):
        return note, cp
    end = min(cp.size, head.size + max_entries) if max_entries else cp.size
    source = _source(head.peer, end)
    with _Writer() as writer:
        for start, batch_end, pages, proof in _batches(source, head.size, end, cp.size):
            tree, nodes = _check_batch(head, note, cp, start, batch_end, pages, proof)
            peer_keys.retired_key_check(head.key, head.rotated, cp.size, pages)
            head.size, head.root, head.frontier = tree.size, tree.root(), tree.frontier
            reached = (note, cp) if batch_end == cp.size else None
            writer.submit(
                head.peer.pk, start, pages, nodes, (head.size, head.root, head.frontier), reached
            )
    if head.rotated is not None and head.size >= cp.size:
        peer_keys.peer_key_store(head.peer, head.key, head.rotated, cp.size)
    return note, cp


# ---------------------------------------------------------------- outcomes


def _record_seen(peer_id: int, size: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        row = locks.mirror_head_lock(peer_id)
        if size > row.seen_size:
            row.seen_size, row.seen_at = size, now
        if row.seen_size > row.size and row.behind_since is None:
            row.behind_since = now
        row.save(update_fields=["seen_size", "seen_at", "behind_since"])


@transaction.atomic
def _record_outcome(peer_id: int, error: str | None) -> int:
    """Record success or the error and the next attempt; return the mirror's stored size."""
    now = timezone.now()
    row = locks.mirror_head_lock(peer_id)
    row.claimed_until = None
    fields = ["claimed_until"]
    if error is None:
        row.attempts, row.next_attempt_at, row.last_success_at = 0, None, now
        fields += ["attempts", "next_attempt_at", "last_success_at"]
    else:
        row.attempts += 1
        row.next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(row.attempts))
        row.last_error, row.last_error_at = error[:2000], now
        fields += ["attempts", "next_attempt_at", "last_error", "last_error_at"]
    if row.size >= row.seen_size:
        row.behind_since = None
        fields.append("behind_since")
    row.save(update_fields=fields)
    return row.size


def peer_replicate(
    *, peer_id: int, max_entries: int | None = None, force: bool = False
) -> ReplicationResult:
    """Bring the mirror of one peer up to its latest checkpoint (or by max_entries)."""
    head = _claim(peer_id, timezone.now(), force)
    if head is None:
        origin = Peer.objects.filter(pk=peer_id).values_list("origin", flat=True).first()
        return ReplicationResult(origin=origin or str(peer_id), outcome="skipped")
    origin, before = head.peer.origin, head.size
    budget = settings.FEDERATION_REPLICATION_MAX_ENTRIES if max_entries is None else max_entries
    try:
        _note, cp = _replicate(head, budget)
    except Misbehaviour as exc:
        logger.error("replication of %s: misbehaviour: %s", origin, exc.detail)
        evidence_record(peer_id=peer_id, kind=exc.kind, detail=exc.detail, **exc.evidence)
        after = _record_outcome(peer_id, exc.detail)
        return ReplicationResult(origin, "flagged", before, after, error=exc.detail)
    except (ReplicationFailed, PeerUnreachable, PeerResponseInvalid) as exc:
        logger.warning("replication of %s failed: %s", origin, exc)
        after = _record_outcome(peer_id, str(exc))
        return ReplicationResult(origin, "failed", before, after, error=str(exc))
    except Exception as exc:
        logger.exception("replication of %s crashed", origin)
        after = _record_outcome(peer_id, f"{type(exc).__name__}: {exc}")
        return ReplicationResult(origin, "failed", before, after, error=str(exc))
    after = _record_outcome(peer_id, None)
    outcome = "replicated" if after > before else "up_to_date"
    return ReplicationResult(origin, outcome, before, after, checkpoint_size=cp.size)


def mirror_peer_ids() -> list[int]:
    return list(
        Peer.objects.filter(status=Peer.Status.ACTIVE, is_mirror=True).values_list("pk", flat=True)
    )


def mirror_checkpoint_notified(*, peer: Peer, note: str) -> bool:
    """A peer says it has a new checkpoint: if it verifies and we mirror it, replicate soon.

    Returns whether a replication was scheduled. Clears the back-off: the peer is up.
    """
    if not peer_keys.peer_note_announced(peer, note):
        return False
    if not (peer.is_active and peer.is_mirror):
        return False
    with transaction.atomic():
        MirrorHead.objects.filter(peer=peer).update(next_attempt_at=None)
        for hook in MIRROR_NOTIFIED_HOOKS:
            transaction.on_commit(functools.partial(hook, peer.pk), robust=True)
    return True
