"""Log key rotation: announce REGISTRY_NEXT_SIGNING_KEY with an entry signed by the current key.

The announcement is an ordinary event (`ledger.key_rotated`, ledger/EVENTS.md) whose data
carries a signed note by the OLD key over the fixed statement of
`ledger.verify.keyhistory.rotation_statement`, so anyone holding the entry can check it
offline. Nothing switches here: `checkpoint_create` signs each size with the key current
at that size, so processes start signing with the new key exactly when the integrator has
numbered the announcement.

Locking: the service locks the tree head row (as the integrator does, first and only), so
two rotations queue and the second sees the first as pending or integrated; it holds the
lock for the few statements of its check and its INSERT.
"""

from typing import Any

from django.conf import settings
from django.db import transaction

from ledger.errors import KeyRotationRefused, LedgerCorrupted, SigningKeyUnavailable
from ledger.keys import log_key_history, log_signer_for, registry_signers
from ledger.models import PendingEvent, TreeHead
from ledger.services import ledger_append
from ledger.verify.keyhistory import ROTATION_KIND, rotation_statement
from ledger.verify.note import NoteError


def _key_label(vkey: str) -> str:
    name, key_id, _ = vkey.split("+", 2)
    return f"{name}+{key_id}"


@transaction.atomic
def log_key_rotate(*, actor: Any) -> PendingEvent:
    """Announce REGISTRY_NEXT_SIGNING_KEY as the log key; record ledger.key_rotated."""
    TreeHead.objects.select_for_update().filter(pk=1).first()
    if PendingEvent.objects.filter(kind=ROTATION_KIND).exists():
        raise KeyRotationRefused(
            "A key rotation is already waiting for the integrator; run `manage.py "
            "integrate` (or wait for the worker) and check the key before rotating again."
        )
    try:
        history = log_key_history()
    except NoteError as exc:  # a KeyHistoryError, or REGISTRY_FIRST_VKEY unreadable
        raise LedgerCorrupted(f"the ledger's key history does not verify: {exc}") from None
    current = history.current
    old = log_signer_for(current)
    if old is None:
        raise SigningKeyUnavailable(
            f"The current log key {current.name}+{current.key_id.hex()} is not configured "
            "(REGISTRY_SIGNING_KEY): only it can announce its successor.",
            key_id=current.key_id.hex(),
        )
    new = next((s for s in registry_signers() if s.verifier != current), None)
    if new is None:
        raise KeyRotationRefused(
            "REGISTRY_NEXT_SIGNING_KEY is not set, or is the current key already: generate a "
            "new key (`manage.py generate_signing_key --print --name ORIGIN`) and stage it.",
        )
    if any(new.verifier.public_key == key.public_key for key in history.keys):
        raise KeyRotationRefused(
            f"The key {_key_label(new.vkey)} already signed this log; a retired key never "
            "comes back. Stage a fresh key.",
        )
    origin = settings.REGISTRY_ORIGIN
    note = old.sign_note(rotation_statement(origin, old.vkey, new.vkey))
    return ledger_append(
        kind=ROTATION_KIND,
        actor=actor,
        subject=[("log_key", old.verifier.key_id.hex()), ("log_key", new.verifier.key_id.hex())],
        data={"origin": origin, "old_vkey": old.vkey, "new_vkey": new.vkey, "note": note},
    )
