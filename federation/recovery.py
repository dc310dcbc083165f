"""Taking back the lost tail of this log from a peer's mirror (`manage.py recover_tail`).

After a restore from an older backup, `ledger_reconcile` reports peers `ahead`: they mirror
checkpoints of this log larger than the restored one. Such a peer still holds the entries
the database lost. This asks it for the newest checkpoint of this log it mirrors, which
must verify with this log's own key of its size (a mirror cannot make one up), fetches the
entries [local size, its size) from its mirror, and hands them to
`ledger.recovery.ledger_tail_recover`, which appends them only if the local log and those
entries give the signed root, and rebuilds the tables from them in the same transaction.
Nothing the peer sends is trusted beyond what our signature covers.

No network I/O inside the transaction: everything is fetched first.
"""

from dataclasses import dataclass

from django.conf import settings

from federation import client
from federation.client import Limits, PeerResponseInvalid, PeerUnreachable
from federation.fetching import _parse_page
from federation.models import Peer
from federation.reconcile import MIRROR_CHECKPOINT_PATH
from ledger.errors import TailRecoveryRefused
from ledger.keys import log_key_for_note, registry_signers
from ledger.recovery import RecoveredTail, ledger_tail_recover
from ledger.selectors import ledger_tree_size
from ledger.verify.note import Checkpoint, NoteError, VerifierKey, verify_checkpoint

MIRROR_ENTRIES_PATH = "/mirrors/{origin}/api/v1/ledger/entries/?start={start}&limit={limit}"
PAGE = 1000  # the ledger API's largest page


@dataclass(frozen=True)
class TailRecovery:
    peer: str
    local_size: int
    peer_size: int
    recovered: RecoveredTail | None  # None: the peer holds nothing we lack


def _limits() -> Limits:
    return Limits(
        timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS,
        max_bytes=settings.FEDERATION_MAX_RESPONSE_BYTES,
    )


def _get(url: str, accept: str) -> client.PeerResponse:
    try:
        response = client.get(url, limits=_limits(), accept=accept)
    except PeerUnreachable as exc:
        raise TailRecoveryRefused(f"The peer is unreachable: {exc}", url=url) from None
    if response.status == 404:
        raise TailRecoveryRefused("The peer holds no copy of this log.", url=url)
    if response.status != 200:
        raise TailRecoveryRefused(f"HTTP {response.status} from the peer.", url=url)
    return response


def peer_find(name: str) -> Peer:
    """An active peer by origin, name or base URL."""
    peers = Peer.objects.filter(status=Peer.Status.ACTIVE)
    found = (
        peers.filter(origin=name).first()
        or peers.filter(name=name).first()
        or peers.filter(base_url=name.rstrip("/")).first()
        or peers.filter(base_url=name.rstrip("/") + "/").first()
    )
    if found is None:
        raise TailRecoveryRefused(f"No active peer {name!r} (origin, name or base URL).")
    return found


def _verified(note: str, origin: str) -> tuple[Checkpoint, VerifierKey]:
    """The checkpoint, and which of this log's keys signed it: the key our history says is
    current at its size, or another key this process holds (the lost tail may announce a
    rotation our history has not seen; `ledger_tail_recover` then checks the recovered
    history names that key at that size)."""
    keys = [log_key_for_note(note), *(signer.verifier for signer in registry_signers())]
    error: Exception | None = None
    for key in dict.fromkeys(keys):
        try:
            checkpoint, _ = verify_checkpoint(note, key, origin=origin)
        except NoteError as exc:
            error = error or exc
            continue
        return checkpoint, key
    raise TailRecoveryRefused(
        f"The peer's checkpoint of this log is not signed by this log's key: {error}"
    )


def ledger_tail_recover_from(peer: Peer) -> TailRecovery:
    """Recover the entries this log lacks from `peer`'s mirror of it; rebuild the tables."""
    origin = settings.REGISTRY_ORIGIN
    url = client.join(peer.base_url, MIRROR_CHECKPOINT_PATH.format(origin=origin))
    try:
        note = _get(url, "text/plain").text()
    except (PeerResponseInvalid, UnicodeDecodeError) as exc:
        raise TailRecoveryRefused(f"The peer's checkpoint is unreadable: {exc}") from None
    checkpoint, key = _verified(note, origin)
    local = ledger_tree_size()
    if checkpoint.size <= local:
        return TailRecovery(peer.origin, local, checkpoint.size, None)
    events: list[bytes] = []
    start = local
    while start < checkpoint.size:
        limit = min(PAGE, checkpoint.size - start)
        page_url = client.join(
            peer.base_url, MIRROR_ENTRIES_PATH.format(origin=origin, start=start, limit=limit)
        )
        try:
            page = _parse_page(_get(page_url, "application/json").body, start, limit)
        except PeerResponseInvalid as exc:
            raise TailRecoveryRefused(f"The peer sent a malformed page: {exc}") from None
        if not page.events:
            raise TailRecoveryRefused(
                f"The peer's mirror ends at {start}, short of its checkpoint's size "
                f"{checkpoint.size}."
            )
        events.extend(page.events)
        start += len(page.events)
    recovered = ledger_tail_recover(start=local, events=events, root=checkpoint.root, signed_by=key)
    return TailRecovery(peer.origin, local, checkpoint.size, recovered)
