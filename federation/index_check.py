"""A mirror recomputes each peer's subject map and checks the roots its log commits.

A GridProof registry ends every checkpoint's tree with `ledger.subject_index_committed`,
the root of the subject map of every entry before it (docs/ledger-index.md). The map is
a pure function of the entries (ledger/verify/subject_map.py), so a mirror holding them
recomputes it and compares. A root the peer's own entries contradict is evidence signed
by the peer (the entry is in a tree its checkpoint signs): it is kept and flags the peer.

The check reads the whole mirror each time (the map of a log is only known from its first
entry); it runs as its own task after a replication that stored new entries, not inside
the replication.
"""

import base64
import logging
from dataclasses import dataclass

from federation.models import Evidence, MirrorCheckpoint, MirroredEntry
from federation.services import evidence_record
from ledger.verify.subject_map import MapProofError, SubjectMap, index_commit

logger = logging.getLogger(__name__)

CHUNK = 5000


@dataclass(frozen=True)
class IndexCheckResult:
    entries: int
    commitments: int
    wrong_at: int | None = None  # the seq of the first commitment that did not match


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mirror_index_check(*, peer_id: int) -> IndexCheckResult:
    """Recompute the peer's subject map from its mirrored entries; check each commitment."""
    smap = SubjectMap()
    commitments = 0
    rows = (
        MirroredEntry.objects.filter(peer_id=peer_id)
        .order_by("seq")
        .values_list("seq", "event")
        .iterator(chunk_size=CHUNK)
    )
    for seq, event in rows:
        event = bytes(event)
        if seq != smap.size:
            break  # a gap: the mirror is incomplete below here (replication fills it)
        try:
            commit = index_commit(event)
            problem = None
        except MapProofError as exc:
            commit, problem = None, str(exc)
        if commit is not None:
            size, root = commit
            recomputed = smap.root()
            if size != seq:
                problem = f"commits the map of {size} entries, not of the {seq} before it"
            elif root != recomputed:
                problem = "its map root differs from the one recomputed from the entries"
            else:
                commitments += 1
        if problem is not None:
            _record(peer_id, seq, event, problem, smap)
            return IndexCheckResult(smap.size, commitments, wrong_at=seq)
        smap.add(seq, event)
    return IndexCheckResult(smap.size, commitments)


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
