"""This registry as a C2SP tlog-witness for its peers' logs (`POST /add-checkpoint`).

For each peer origin the witness keeps every checkpoint it cosigned
(WitnessedCheckpoint); the largest is "the latest cosigned checkpoint" of the spec.
Checking the old size against it and storing the new one happen under a lock on the
peer row, so two concurrent requests cannot roll the state back (the race the spec
describes). A second, different checkpoint for a size already cosigned, or a checkpoint
older than the latest, is refused with 409 and kept as evidence with both notes.
"""

import logging
import time
from dataclasses import dataclass

from django.db import transaction

from federation import errors, locks
from federation.models import Evidence, Peer, WitnessedCheckpoint
from federation.protocol import AddCheckpointRequest, ProtocolError, parse_add_checkpoint
from federation.services import evidence_record
from ledger.keys import registry_witness
from ledger.verify.note import Checkpoint, Note, NoteError, VerifierKey, verify_note
from ledger.verify.rfc9162 import ProofError, verify_consistency

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Verified:
    peer: Peer
    checkpoint: Checkpoint
    body: str


def _verify_signature(request: AddCheckpointRequest) -> _Verified:
    """Find the log by origin and check its signature (404 unknown, 403 untrusted)."""
    try:
        origin = Checkpoint.parse(Note.parse(request.note).text).origin
    except NoteError as exc:
        raise errors.WitnessRequestMalformed(f"checkpoint: {exc}") from None
    peer = Peer.objects.filter(origin=origin).first()
    if peer is None or peer.status == Peer.Status.SUSPENDED:
        raise errors.WitnessLogUnknown(origin=origin)
    try:
        note = verify_note(request.note, [VerifierKey.parse(peer.log_vkey)])
    except NoteError as exc:
        raise errors.WitnessSignatureUntrusted(str(exc), origin=origin) from None
    if peer.status == Peer.Status.FLAGGED:
        raise errors.WitnessLogFlagged(origin=origin)
    return _Verified(peer=peer, checkpoint=Checkpoint.parse(note.text), body=note.text)


@transaction.atomic
def _witness_record(
    request: AddCheckpointRequest, verified: _Verified
) -> errors.WitnessError | None:
    """Check the request against the latest cosigned checkpoint and store the new one.

    Returns the refusal instead of raising it, so that evidence recorded on the way
    commits with the transaction.
    """
    peer = locks.peer_lock(verified.peer.pk)
    cp = verified.checkpoint
    old = request.old_size
    seen = WitnessedCheckpoint.objects.filter(peer=peer)
    latest = seen.order_by("-size").first()
    latest_size = latest.size if latest else 0
    at_size = latest if latest and latest.size == cp.size else seen.filter(size=cp.size).first()

    if at_size is not None and bytes(at_size.root) != cp.root:
        evidence_record(
            peer_id=peer.pk,
            kind=Evidence.Kind.EQUIVOCATION,
            size=cp.size,
            detail=f"Two different checkpoints of {peer.origin} signed for tree size {cp.size}.",
            first_note=at_size.note,
            second_note=request.note,
        )
        if old != latest_size:
            return errors.WitnessOldSizeMismatch(latest_size=latest_size)
        return errors.WitnessCheckpointConflict(
            f"A different checkpoint of size {cp.size} was already cosigned.",
            conflicting_note=at_size.note,
            size=cp.size,
        )
    if cp.size < latest_size:
        if at_size is None:
            evidence_record(
                peer_id=peer.pk,
                kind=Evidence.Kind.ROLLBACK,
                size=cp.size,
                detail=(
                    f"A checkpoint of {peer.origin} of size {cp.size} submitted after size "
                    f"{latest_size} was cosigned."
                ),
                first_note=latest.note,
                second_note=request.note,
            )
        return errors.WitnessOldSizeMismatch(latest_size=latest_size)
    if old != latest_size:
        return errors.WitnessOldSizeMismatch(latest_size=latest_size)
    if cp.size > latest_size:
        if latest is not None:
            try:
                verify_consistency(latest_size, cp.size, request.proof, bytes(latest.root), cp.root)
            except ProofError as exc:
                logger.warning("witness: %s sent an unproven checkpoint: %s", peer.origin, exc)
                return errors.WitnessProofInvalid(str(exc), origin=peer.origin)
        WitnessedCheckpoint.objects.create(peer=peer, size=cp.size, root=cp.root, note=request.note)
    elif request.proof:
        return errors.WitnessProofInvalid("Equal sizes need an empty consistency proof.")
    return None


def witness_add_checkpoint(*, body: bytes, now: float | None = None) -> str:
    """Verify a peer's checkpoint as its witness and return our cosignature line.

    Raises a WitnessError whose status is the one C2SP tlog-witness prescribes.
    """
    try:
        request = parse_add_checkpoint(body)
    except ProtocolError as exc:
        raise errors.WitnessRequestMalformed(str(exc)) from None
    verified = _verify_signature(request)
    if request.old_size > verified.checkpoint.size:
        raise errors.WitnessRequestMalformed(
            f"old size {request.old_size} is larger than the checkpoint's "
            f"{verified.checkpoint.size}."
        )
    if request.old_size == 0 and request.proof:
        raise errors.WitnessRequestMalformed("The proof must be empty when the old size is 0.")
    refusal = _witness_record(request, verified)
    if refusal is not None:
        raise refusal
    timestamp = int(time.time() if now is None else now)
    return registry_witness().cosign(verified.body, timestamp)
