"""Reconcile a restored log with the copies peers hold of it, before signing again.

A registry restored from an older backup refuses to sign (ledger/fence.py). The peers
that mirror this log hold checkpoints it signed before the loss; each tells us one of:

- consistent: its checkpoint's size is at most ours and its root is our root at that
  size, so the restored log extends what that peer saw;
- ahead: it holds a checkpoint larger than our log: entries we published were lost with
  the database (the peer's mirror has them: `missing` names the range);
- diverged: same size, different root: our restored log contradicts what we signed.

Only when no peer is ahead or diverged, and at least one peer answered (or the operator
states there is none to ask), is the fence lifted. A note we cannot verify with our own
key proves nothing and is reported as `invalid`.
"""

from dataclasses import dataclass, field

from django.conf import settings

from federation import client
from federation.client import Limits, PeerResponseInvalid, PeerUnreachable
from federation.models import Peer
from ledger.fence import fence_lift, fence_state
from ledger.keys import log_key_for_note
from ledger.selectors import ledger_root, ledger_tree_size
from ledger.verify.note import NoteError, verify_checkpoint

MIRROR_CHECKPOINT_PATH = "/mirrors/{origin}/api/v1/ledger/checkpoint"


@dataclass(frozen=True)
class PeerCopy:
    peer: str  # origin
    status: str  # consistent, ahead, diverged, not_mirroring, unreachable, invalid
    size: int | None = None
    detail: str = ""


@dataclass
class ReconcileReport:
    size: int
    fenced_before: bool
    peers: list[PeerCopy] = field(default_factory=list)
    lifted: bool = False

    @property
    def missing(self) -> tuple[int, int] | None:
        """[our size, largest size a peer holds) when entries were lost, else None."""
        ahead = [p.size for p in self.peers if p.status == "ahead" and p.size is not None]
        return (self.size, max(ahead)) if ahead else None

    def counts(self, status: str) -> int:
        return sum(1 for p in self.peers if p.status == status)


def _peer_copy(peer: Peer, size: int) -> PeerCopy:
    url = client.join(peer.base_url, MIRROR_CHECKPOINT_PATH.format(origin=settings.REGISTRY_ORIGIN))
    limits = Limits(
        timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS,
        max_bytes=settings.FEDERATION_MAX_RESPONSE_BYTES,
    )
    try:
        response = client.get(url, limits=limits, accept="text/plain")
    except PeerUnreachable as exc:
        return PeerCopy(peer.origin, "unreachable", detail=str(exc))
    if response.status == 404:
        return PeerCopy(peer.origin, "not_mirroring", detail="it holds no copy of this log")
    if response.status != 200:
        return PeerCopy(peer.origin, "unreachable", detail=f"HTTP {response.status}")
    try:
        note = response.text()
        checkpoint, _ = verify_checkpoint(
            note, log_key_for_note(note), origin=settings.REGISTRY_ORIGIN
        )
    except (NoteError, PeerResponseInvalid, UnicodeDecodeError) as exc:
        return PeerCopy(peer.origin, "invalid", detail=f"not signed by this log's key: {exc}")
    if checkpoint.size > size:
        return PeerCopy(
            peer.origin,
            "ahead",
            checkpoint.size,
            f"it holds a checkpoint of size {checkpoint.size}; this log has {size} entries",
        )
    if ledger_root(size=checkpoint.size) != checkpoint.root:
        return PeerCopy(
            peer.origin,
            "diverged",
            checkpoint.size,
            f"its checkpoint of size {checkpoint.size} has another root than this log",
        )
    return PeerCopy(peer.origin, "consistent", checkpoint.size)


def ledger_reconcile(*, without_peers: bool = False) -> ReconcileReport:
    """Ask every active peer for its copy of this log; lift the fence if all agree.

    `without_peers`: the operator states that no peer mirrors this log, so nobody can hold
    a later checkpoint; then no answer is needed (the reason says so).
    """
    size = ledger_tree_size()
    report = ReconcileReport(size=size, fenced_before=bool(fence_state()["fenced"]))
    for peer in Peer.objects.filter(status=Peer.Status.ACTIVE).order_by("id"):
        report.peers.append(_peer_copy(peer, size))
    if report.counts("ahead") or report.counts("diverged"):
        return report
    consistent = [p for p in report.peers if p.status == "consistent"]
    if not consistent and not without_peers:
        return report
    if not report.fenced_before and not consistent:
        return report  # nothing to lift, nobody to thank
    if consistent:
        reason = "reconciled at size {}: consistent with {}".format(
            size, ", ".join(f"{p.peer} (size {p.size})" for p in consistent)
        )
    else:
        reason = f"reconciled at size {size} without peers, as the operator stated"
    fence_lift(reason=reason)
    report.lifted = True
    return report
