"""Row locks of the federation app, each FOR UPDATE inside the caller's transaction.

Lock order (docs/architecture.md, "Lock order", step 5): the peer, then its job row
(`WitnessProgress`, `MirrorHead`, an `Anchor`), each held only long enough to mark a claim
or record an outcome; no network I/O runs while one is held.
"""

from __future__ import annotations

from federation import errors
from federation.models import Anchor, MirrorHead, Peer, WitnessProgress


def peer_lock(peer_id: int) -> Peer:
    """The peer FOR UPDATE, or `PeerNotFound`."""
    try:
        return Peer.objects.select_for_update().get(pk=peer_id)
    except Peer.DoesNotExist:
        raise errors.PeerNotFound(peer_id=peer_id) from None


def witness_progress_lock(peer_id: int, *, create: bool = False) -> WitnessProgress:
    """The witness job row of a peer FOR UPDATE (made on first use when `create`)."""
    rows = WitnessProgress.objects.select_for_update()
    if create:
        return rows.get_or_create(peer_id=peer_id)[0]
    return rows.get(peer_id=peer_id)


def anchor_lock(anchor_id: int) -> Anchor:
    """The anchor FOR UPDATE (its quorum is counted under it)."""
    return Anchor.objects.select_for_update().get(pk=anchor_id)


def mirror_head_lock(peer_id: int, *, create: bool = False) -> MirrorHead:
    """The mirror head of a peer FOR UPDATE (made on first use when `create`)."""
    rows = MirrorHead.objects.select_for_update()
    if create:
        return rows.get_or_create(peer_id=peer_id)[0]
    return rows.get(peer_id=peer_id)
