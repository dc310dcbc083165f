"""Anchoring: our latest checkpoint goes to every witness peer, cosignatures come back.

One job per witness (`anchor_witness`), in three steps so that no transaction is open
during network I/O:

1. claim: under a lock on the witness's WitnessProgress row, check it is due and not
   claimed, and mark it claimed for a bounded time (a worker that dies lets it expire);
2. call: POST the checkpoint with a consistency proof from the size the witness holds
   (`old 0` the first time; a 409 `text/x.tlog.size` answer tells the size it holds,
   and the request is repeated from there);
3. record: store the cosignature and the witness's new size, or the error and the next
   attempt time (exponential back-off), and release the claim.

Only the latest checkpoint is sent: a witness that was down receives the newest one
with a proof from what it last cosigned, and that covers every checkpoint in between.
A checkpoint is anchored when ANCHOR_QUORUM active witnesses have cosigned it.
"""

import datetime as dt
import functools
import json
import logging
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation import client, locks
from federation.client import Limits, PeerUnreachable
from federation.models import Anchor, Cosignature, Evidence, Peer
from federation.peer_requests import sign_request
from federation.protocol import (
    ADD_CHECKPOINT_PATH,
    SIZE_CONTENT_TYPE,
    ProtocolError,
    encode_add_checkpoint,
    parse_signature_lines,
    parse_size,
)
from federation.services import evidence_record
from ledger.errors import CheckpointNotFound
from ledger.keys import registry_signer
from ledger.selectors import checkpoint_latest, ledger_consistency_proof
from ledger.verify.note import Note, VerifierKey
from registry.hooks import Hook

logger = logging.getLogger(__name__)

CHECKPOINT_ANCHORED_HOOKS = Hook("federation.checkpoint_anchored")
"""Called on commit with the size of a checkpoint that became anchored (federation.tasks
registers: notify the peers, deliver the exports that waited for an anchor)."""

WITNESS_RESPONSE_MAX_BYTES = 64 * 1024
SIZE_HINTS_FOLLOWED = 3


class AnchorFailed(Exception):
    """This attempt with this witness failed; the message says why."""

    def __init__(self, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class _Claim:
    peer: Peer
    anchor: Anchor
    old_size: int


def anchor_limits() -> Limits:
    return Limits(
        timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS, max_bytes=WITNESS_RESPONSE_MAX_BYTES
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential back-off with jitter, capped at FEDERATION_RETRY_MAX_SECONDS."""
    base = settings.FEDERATION_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30)
    return min(settings.FEDERATION_RETRY_MAX_SECONDS, base) * random.uniform(0.75, 1.0)


def claim_seconds() -> float:
    """How long a claim lasts: longer than the calls one job can make."""
    return (SIZE_HINTS_FOLLOWED + 1) * 2 * settings.FEDERATION_HTTP_TIMEOUT_SECONDS + 5


def anchor_prepare() -> Anchor | None:
    """The Anchor row of our latest checkpoint (none while the log is empty)."""
    try:
        checkpoint = checkpoint_latest()
    except CheckpointNotFound:
        return None
    if checkpoint.size == 0:
        return None
    anchor, _created = Anchor.objects.get_or_create(
        size=checkpoint.size,
        defaults={
            "root": bytes(checkpoint.root),
            "note": checkpoint.note,
            "checkpoint_created_at": checkpoint.created_at,
        },
    )
    return anchor


@transaction.atomic
def _claim(peer_id: int, now: dt.datetime) -> _Claim | None:
    progress = locks.witness_progress_lock(peer_id, create=True)
    peer = Peer.objects.get(pk=peer_id)
    if not (peer.is_active and peer.is_witness):
        return None
    if progress.claimed_until and progress.claimed_until > now:
        return None
    if progress.next_attempt_at and progress.next_attempt_at > now:
        return None
    anchor = Anchor.objects.order_by("-size").first()
    if anchor is None or Cosignature.objects.filter(anchor=anchor, witness=peer).exists():
        return None
    progress.claimed_until = now + dt.timedelta(seconds=claim_seconds())
    progress.last_attempt_at = now
    progress.save(update_fields=["claimed_until", "last_attempt_at"])
    return _Claim(peer=peer, anchor=anchor, old_size=progress.size)


def _verify_cosignature(peer: Peer, anchor: Anchor, body: bytes) -> tuple[str, int]:
    """The witness's cosignature line from a 200 response, verified, and its timestamp."""
    try:
        signatures = parse_signature_lines(body)
    except ProtocolError as exc:
        raise AnchorFailed(f"malformed cosignature response: {exc}") from None
    key = VerifierKey.parse(peer.witness_vkey)
    text = Note.parse(anchor.note).text
    for signature in signatures:
        if key.matches(signature):
            if not key.verify(text, signature) or signature.timestamp is None:
                raise AnchorFailed("the witness's cosignature does not verify")
            return signature.line(), signature.timestamp
    raise AnchorFailed("the response holds no cosignature by the registered witness key")


def _call(claim: _Claim) -> tuple[str, int]:
    """Send the checkpoint, following size hints; return the verified cosignature."""
    peer, anchor = claim.peer, claim.anchor
    url = client.join(peer.submission_prefix, ADD_CHECKPOINT_PATH)
    old = claim.old_size
    for _ in range(SIZE_HINTS_FOLLOWED + 1):
        if old > anchor.size:
            # Not stored as the witness's size: the next attempt asks again.
            raise AnchorFailed(
                f"the witness holds size {old} of our log, beyond our latest checkpoint "
                f"({anchor.size}): was this registry's database restored, or its key used "
                "elsewhere?"
            )
        proof = []
        if 0 < old < anchor.size:
            proof = ledger_consistency_proof(first=old, second=anchor.size).proof
        body = encode_add_checkpoint(old, proof, anchor.note)
        try:
            response = client.post(
                url, body, limits=anchor_limits(), content_type="text/plain; charset=utf-8"
            )
        except PeerUnreachable as exc:
            raise AnchorFailed(str(exc), size=old) from None
        if response.status == 200:
            return _verify_cosignature(peer, anchor, response.body)
        if response.status == 409 and response.content_type == SIZE_CONTENT_TYPE:
            try:
                hinted = parse_size(response.body)
            except ProtocolError as exc:
                raise AnchorFailed(f"malformed 409 size: {exc}", size=old) from None
            if hinted == old:
                raise AnchorFailed(f"409 naming the size we sent ({old})", size=old)
            old = hinted
            continue
        text = response.body[:500].decode("utf-8", "replace")
        if response.status == 409:
            evidence_record(
                peer_id=peer.pk,
                kind=Evidence.Kind.WITNESS_CONFLICT,
                size=anchor.size,
                detail=(
                    f"Witness {peer.origin} refused our checkpoint of size {anchor.size}: it "
                    "holds a different one for that size."
                ),
                first_note=anchor.note,
                second_note=response.text() if len(response.body) < 65536 else "",
            )
        raise AnchorFailed(f"HTTP {response.status} from {url}: {text}", size=old)
    raise AnchorFailed(f"more than {SIZE_HINTS_FOLLOWED} size hints in a row", size=old)


@transaction.atomic
def _record_cosignature(claim: _Claim, line: str, timestamp: int, now: dt.datetime) -> bool:
    """Store the cosignature; return whether the anchor reached the quorum just now."""
    progress = locks.witness_progress_lock(claim.peer.pk)
    progress.size = claim.anchor.size
    progress.attempts = 0
    progress.next_attempt_at = None
    progress.claimed_until = None
    progress.last_success_at = now
    progress.last_error = ""
    progress.save(
        update_fields=[
            "size",
            "attempts",
            "next_attempt_at",
            "claimed_until",
            "last_success_at",
            "last_error",
        ]
    )
    Cosignature.objects.get_or_create(
        anchor=claim.anchor,
        witness=claim.peer,
        defaults={"line": line, "timestamp": timestamp, "received_at": now},
    )
    return _check_quorum(claim.anchor.pk, now)


def _check_quorum(anchor_id: int, now: dt.datetime) -> bool:
    anchor = locks.anchor_lock(anchor_id)
    if anchor.anchored_at is not None:
        return False
    count = anchor.cosignatures.filter(
        witness__status=Peer.Status.ACTIVE, witness__is_witness=True
    ).count()
    if count < settings.ANCHOR_QUORUM:
        return False
    anchor.anchored_at = now
    anchor.save(update_fields=["anchored_at"])
    return True


@transaction.atomic
def _record_failure(peer_id: int, error: str, now: dt.datetime, size: int | None) -> None:
    progress = locks.witness_progress_lock(peer_id)
    progress.attempts += 1
    progress.next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(progress.attempts))
    progress.claimed_until = None
    progress.last_error = error[:2000]
    progress.last_error_at = now
    fields = ["attempts", "next_attempt_at", "claimed_until", "last_error", "last_error_at"]
    if size is not None:
        progress.size = size
        fields.append("size")
    progress.save(update_fields=fields)


def anchor_witness(*, peer_id: int) -> str:
    """Get the latest checkpoint cosigned by one witness if it is due; say what happened."""
    claim = _claim(peer_id, timezone.now())
    if claim is None:
        return "skipped"
    try:
        line, timestamp = _call(claim)
    except AnchorFailed as exc:
        logger.warning("anchoring with %s failed: %s", claim.peer.origin, exc)
        _record_failure(peer_id, str(exc), timezone.now(), exc.size)
        return "failed"
    except Exception as exc:
        # Anything unexpected still releases the claim and backs off.
        logger.exception("anchoring with %s crashed", claim.peer.origin)
        _record_failure(peer_id, f"{type(exc).__name__}: {exc}", timezone.now(), None)
        return "failed"
    if _record_cosignature(claim, line, timestamp, timezone.now()):
        _notify_on_commit(claim.anchor.size)
        return "anchored"
    return "cosigned"


def _notify_on_commit(size: int) -> None:
    for hook in CHECKPOINT_ANCHORED_HOOKS:
        transaction.on_commit(functools.partial(hook, size), robust=True)


def anchor_witness_ids() -> list[int]:
    """The witnesses anchoring asks: active peers with the witness role."""
    return list(
        Peer.objects.filter(status=Peer.Status.ACTIVE, is_witness=True).values_list("pk", flat=True)
    )


def anchor_all() -> dict[str, str]:
    """Prepare the latest anchor and run every witness in turn (on demand, and in tests)."""
    anchor_prepare()
    return {
        Peer.objects.get(pk=peer_id).origin: anchor_witness(peer_id=peer_id)
        for peer_id in anchor_witness_ids()
    }


NOTIFY_PATH = "/api/v1/federation/notify/"


def anchor_notify_peers(*, size: int) -> dict[str, str]:
    """Tell every active peer that our checkpoint of `size` is anchored (best effort).

    The request is signed with our registry key (federation.peer_requests); a peer that
    mirrors us replicates right away instead of at its next interval.
    """
    anchor = (
        Anchor.objects.filter(size=size, anchored_at__isnull=False)
        .prefetch_related("cosignatures__witness")
        .first()
    )
    if anchor is None:
        return {}
    from federation.selectors import anchor_note

    body = json.dumps({"checkpoint": anchor_note(anchor)}).encode()
    signer = registry_signer()
    limits = Limits(timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS, max_bytes=64 * 1024)
    results = {}
    for peer in Peer.objects.filter(status=Peer.Status.ACTIVE):
        headers = sign_request(
            signer,
            to=peer.origin,
            method="POST",
            path=NOTIFY_PATH,
            body=body,
            time=int(time.time()),
        )
        url = client.join(peer.base_url, NOTIFY_PATH)
        try:
            response = client.post(
                url, body, limits=limits, content_type="application/json", headers=headers
            )
            results[peer.origin] = str(response.status)
        except PeerUnreachable as exc:
            results[peer.origin] = f"unreachable: {exc}"
    return results
