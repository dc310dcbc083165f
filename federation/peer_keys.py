"""Following a peer's log key rotation: its checkpoints are verified with the key current at
their size, which changes when its log announces a new key (`ledger.key_rotated`).

When a peer's checkpoint is not signed by the key we hold for it, replication fetches the
peer's key history (`GET /api/v1/ledger/keys/`) and follows it from the key we hold, with
the offline verifier's rules (`ledger.verify.checks.check_key_history`): each announcement
signed by the key it replaces and proven in the peer's tree, the checkpoint signed by the
key of its size. A history that does not start from our key, or does not verify, proves
nothing: the run fails and the stored key stays. After a replication that reached the
checkpoint, `peer_log_key_follow` stores the new key (event `peer.log_key_rotated`).
"""

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from federation import client
from federation.models import Peer
from federation.services import peer_log_key_follow
from ledger.verify.checks import Trust, VerificationFailed, check_key_history
from ledger.verify.keyhistory import ROTATION_KIND, KeyHistory
from ledger.verify.note import Checkpoint, Note, NoteError, VerifierKey, verify_checkpoint

KEYS_PATH = "/api/v1/ledger/keys/"


class RetiredKeySigned(client.PeerResponseInvalid):
    """The peer's checkpoint is signed by a key its own log retired before that size."""


class KeyHistoryRefused(NoteError):
    """The peer's key history does not lead from our key to the key of its checkpoint."""


def _from_key(doc: Any, key: VerifierKey) -> dict:
    """The document with only the announcements from `key` on (earlier ones are history we
    trusted when we registered the peer)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rotations"), list):
        raise KeyHistoryRefused("the peer's key history is not a JSON object with rotations")
    rotations = doc["rotations"]
    ours = key.encode()
    start = next(
        (
            i
            for i, r in enumerate(rotations)
            if isinstance(r, Mapping) and r.get("old_vkey") == ours
        ),
        len(rotations),
    )
    return {**doc, "rotations": rotations[start:]}


def peer_checkpoint_follow(
    peer: Peer, key: VerifierKey, note: str, get_json: Callable[[str], Any]
) -> tuple[Checkpoint, KeyHistory]:
    """Verify `note` under the peer's key history followed from `key`; KeyHistoryRefused."""
    doc = _from_key(get_json(client.join(peer.base_url, KEYS_PATH)), key)
    try:
        trust = check_key_history(doc, Trust(key, origin=peer.origin))
        checkpoint, _ = trust.history.verify_checkpoint(note)
    except (VerificationFailed, NoteError) as exc:
        raise KeyHistoryRefused(f"the peer's key history from our key {key}: {exc}") from None
    return checkpoint, trust.history


def _signed_by_another_key(note: str, key: VerifierKey) -> bool:
    """Whether the note carries a signature under the log's name by another key ID."""
    try:
        signatures = Note.parse(note).signatures
    except NoteError:
        return False
    return any(s.name == key.name and s.key_id != key.key_id for s in signatures)


def peer_checkpoint_verify(
    peer: Peer, key: VerifierKey, note: str, get_json: Callable[[str], Any]
) -> tuple[Checkpoint, tuple[VerifierKey, int] | None]:
    """The peer's checkpoint verified with `key`, or, when the peer signed it with another
    key, under its key history followed from `key`: then also (the new key, the seq of its
    announcement). NoteError if neither verifies."""
    try:
        checkpoint, _ = verify_checkpoint(note, key, origin=peer.origin)
    except NoteError:
        if not _signed_by_another_key(note, key):
            raise
        checkpoint, history = peer_checkpoint_follow(peer, key, note, get_json)
        new = history.key_at(checkpoint.size)
        if new == key:
            return checkpoint, None
        return checkpoint, (new, max(r.seq for r in history.rotations if r.new == new))
    return checkpoint, None


def peer_note_announced(peer: Peer, note: str) -> bool:
    """Whether a checkpoint a peer announces is worth replicating: it verifies with the key
    we hold, or it is signed under the peer's origin by another key (a rotation, which
    replication follows and verifies before anything is stored)."""
    key = VerifierKey.parse(peer.log_vkey)
    try:
        verify_checkpoint(note, key, origin=peer.origin)
    except NoteError:
        return _signed_by_another_key(note, key)
    return True


def peer_key_store(peer: Peer, old: VerifierKey, rotated: tuple[VerifierKey, int], size: int):
    """Store the peer's new key once the mirror reached the checkpoint it signed."""
    new, announced_at = rotated
    return peer_log_key_follow(
        peer_id=peer.pk,
        old_vkey=old.encode(),
        new_vkey=new.encode(),
        announced_at=announced_at,
        checkpoint_size=size,
    )


def retired_key_check(
    key: VerifierKey,
    rotated: tuple[VerifierKey, int] | None,
    size: int,
    pages: Iterable[Any],
) -> None:
    """RetiredKeySigned if a verified batch of pages (`.start`, `.events`) holds an
    announcement that retires the key that signed the checkpoint of `size` (an entry with
    seq < size): the old key signing after the rotation. Announcements are rare; the
    bytes are searched before any is parsed."""
    signer = rotated[0] if rotated is not None else key
    marker = ROTATION_KIND.encode()
    for page in pages:
        start = page.start
        if marker not in b"".join(page.events):  # one pass in C; most pages hold none
            continue
        for offset, event in enumerate(page.events):
            if marker not in event or start + offset >= size:
                continue
            try:
                doc = json.loads(event)
            except ValueError:
                continue
            data = doc.get("data") if isinstance(doc, dict) else None
            retires = isinstance(data, dict) and data.get("old_vkey") == signer.encode()
            if retires and doc.get("type") == ROTATION_KIND:
                raise RetiredKeySigned(
                    f"the peer's checkpoint of size {size} is signed by its retired key "
                    f"{signer.name}+{signer.key_id.hex()} (replaced at entry "
                    f"{start + offset})"
                )
