"""A mirror recomputes each peer's subject map and checks the roots its log commits.

A GridProof registry ends every checkpoint's tree with `ledger.subject_index_committed`,
the root of the subject map of every entry before it (docs/ledger-index.md). The map is
a pure function of the entries (ledger/verify/subject_map.py), so a mirror holding them
recomputes it and compares. A root the peer's own entries contradict is evidence signed
by the peer (the entry is in a tree its checkpoint signs): it is kept and flags the peer.

The check is incremental: the map of the entries checked so far is stored per peer (its
records and bucket hashes, `MirrorIndexState`), so each check reads only the entries
mirrored since, and the records of the buckets they touch. It runs as its own task after
a replication that stored new entries, not inside the replication.
"""

import base64
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from federation.models import (
    Evidence,
    MirrorCheckpoint,
    MirrorIndexBucket,
    MirrorIndexRecord,
    MirrorIndexState,
)
from federation.selectors import mirror_events
from federation.services import evidence_record
from ledger.merkle import leaf_hash
from ledger.verify.subject_map import (
    MapProofError,
    SubjectMap,
    bucket_of,
    entry_subjects,
    index_commit,
    key_hash,
)

logger = logging.getLogger(__name__)

CHUNK = 5000  # entries read per query
_UPSERT_RECORDS = (
    "INSERT INTO federation_mirrorindexrecord (peer_id, key, bucket, count, chain) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (peer_id, key) DO UPDATE "
    "SET count = excluded.count, chain = excluded.chain"
)
_UPSERT_BUCKETS = (
    "INSERT INTO federation_mirrorindexbucket (peer_id, bucket, hash) VALUES (%s, %s, %s) "
    "ON CONFLICT (peer_id, bucket) DO UPDATE SET hash = excluded.hash"
)


@dataclass(frozen=True)
class IndexCheckResult:
    entries: int  # the peer's entries the stored map now covers
    commitments: int  # commitments found right in this check
    wrong_at: int | None = None  # the seq of the first commitment that did not match
    read: int = 0  # entries read in this check


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _StoredMap:
    """The peer's stored map, loaded bucket by bucket as new entries touch them."""

    def __init__(self, peer_id: int, state: MirrorIndexState) -> None:
        self.peer_id = peer_id
        hashes = dict(
            MirrorIndexBucket.objects.filter(peer_id=peer_id).values_list("bucket", "hash")
        )
        self.smap = SubjectMap.resumed(state.size, {b: bytes(h) for b, h in hashes.items()})
        self.loaded: set[int] = set()
        self.touched: set[bytes] = set()

    def prepare(self, events: Iterable[bytes]) -> list[list[str]]:
        """Load the records of every bucket these entries touch and are not loaded yet;
        return each entry's subjects (parsed once, here)."""
        subjects = [entry_subjects(event) for event in events]
        keys = {key_hash(subject) for listed in subjects for subject in listed}
        self.touched |= keys
        buckets = {bucket_of(key) for key in keys} - self.loaded
        self.loaded |= buckets
        rows = MirrorIndexRecord.objects.filter(peer_id=self.peer_id, bucket__in=buckets)
        by_bucket: dict[int, list[tuple[bytes, int, bytes]]] = {}
        for key, bucket, count, chain in rows.values_list("key", "bucket", "count", "chain"):
            by_bucket.setdefault(bucket, []).append((bytes(key), count, bytes(chain)))
        for bucket, records in by_bucket.items():
            self.smap.load_bucket(bucket, records)
        return subjects

    def save(self, state: MirrorIndexState, last_leaf: bytes) -> None:
        """Store the records and buckets that changed, and the size they hold for."""
        touched = [key for key in self.touched if key in self.smap.values]
        hashes = self.smap.bucket_hashes({bucket_of(key) for key in touched})
        with connection.cursor() as cursor:
            cursor.executemany(
                _UPSERT_RECORDS,
                [(self.peer_id, k, bucket_of(k), *self.smap.values[k]) for k in touched],
            )
            cursor.executemany(_UPSERT_BUCKETS, [(self.peer_id, *item) for item in hashes.items()])
        state.size, state.last_leaf, state.checked_at = self.smap.size, last_leaf, timezone.now()
        state.save()


def _state(peer_id: int) -> MirrorIndexState:
    """The peer's state, locked; reset when the mirrored entries no longer match it."""
    MirrorIndexState.objects.get_or_create(peer_id=peer_id)
    state = MirrorIndexState.objects.select_for_update().get(peer_id=peer_id)
    if state.size == 0:
        return state
    last = mirror_events(peer_id=peer_id, ranges=[(state.size - 1, state.size)]).get(state.size - 1)
    if last is None or leaf_hash(last) != bytes(state.last_leaf):
        logger.warning("mirror index check of peer %s: stored map stale, rebuilding", peer_id)
        MirrorIndexRecord.objects.filter(peer_id=peer_id).delete()
        MirrorIndexBucket.objects.filter(peer_id=peer_id).delete()
        state.size, state.last_leaf = 0, b""
    return state


def mirror_index_check(*, peer_id: int) -> IndexCheckResult:
    """Extend the peer's stored map over the entries mirrored since; check each commitment."""
    with transaction.atomic():
        state = _state(peer_id)
        stored = _StoredMap(peer_id, state)
        smap, start = stored.smap, state.size
        commitments, wrong_at, last_leaf = 0, None, bytes(state.last_leaf)
        ended = False
        while not ended:
            chunk = sorted(
                mirror_events(peer_id=peer_id, ranges=[(smap.size, smap.size + CHUNK)]).items()
            )
            ended = len(chunk) < CHUNK
            subjects = stored.prepare(event for _seq, event in chunk)
            for (seq, event), listed in zip(chunk, subjects, strict=True):
                if seq != smap.size:
                    ended = True  # a gap: the mirror is incomplete here (replication fills it)
                    break
                problem, committed = _commitment_check(seq, event, smap)
                if problem is not None:
                    _record(peer_id, seq, event, problem, smap)
                    wrong_at, ended = seq, True
                    break
                commitments += committed
                last_leaf = leaf_hash(event)
                smap.add(seq, event, last_leaf, subjects=listed)
        stored.save(state, last_leaf)
    return IndexCheckResult(smap.size, commitments, wrong_at, smap.size - start)


def _commitment_check(seq: int, event: bytes, smap: SubjectMap) -> tuple[str | None, bool]:
    """(what is wrong with the entry as a commitment or None, whether it is one)."""
    try:
        commit = index_commit(event)
    except MapProofError as exc:
        return str(exc), False
    if commit is None:
        return None, False
    size, root = commit
    if size != seq:
        return f"commits the map of {size} entries, not of the {seq} before it", False
    if root != smap.root():
        return "its map root differs from the one recomputed from the entries", False
    return None, True


def _record(peer_id: int, seq: int, event: bytes, problem: str, smap: SubjectMap) -> None:
    covering = (
        MirrorCheckpoint.objects.filter(peer_id=peer_id, size__gt=seq).order_by("size").first()
    )
    detail = f"Entry {seq} of the peer's log is a subject-map commitment that {problem}."
    logger.error("mirror index check of peer %s: %s", peer_id, detail)
    evidence_record(
        peer_id=peer_id,
        kind=Evidence.Kind.WRONG_INDEX_ROOT,
        detail=detail,
        size=covering.size if covering is not None else None,
        second_note=covering.note if covering is not None else "",
        data={"seq": seq, "recomputed_root": _b64(smap.root()), "entries_before": seq},
        payload=event,
    )
