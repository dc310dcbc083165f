"""The log key's history: which key signs checkpoints of which size (standard library + PyNaCl).

A log rotates its signing key with a ledger entry of type `ledger.key_rotated` whose data
holds the old and new verifier keys and a signed note: the fixed statement

    gridproof key rotation
    <origin>
    <old vkey>
    <new vkey>

signed by the OLD key (any C2SP signed-note tool verifies it). The rule: a checkpoint of
size N is signed by the key current at N, the newest key announced by an entry with
seq < N (the first key before any announcement). So the first checkpoint that covers an
announcement is signed by the new key, and every later one; the old key signs nothing
after it. `KeyHistory` starts from a key the auditor trusts, follows announcements in log
order (each must be signed by the key it replaces) and verifies each checkpoint under the
key of its size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.verify.note import (
    Checkpoint,
    Note,
    NoteError,
    VerifierKey,
    verify_checkpoint,
    verify_note,
)

__all__ = [
    "ROTATION_KIND",
    "KeyHistory",
    "KeyHistoryError",
    "Rotation",
    "rotation_from_event",
    "rotation_statement",
]

ROTATION_KIND = "ledger.key_rotated"
_STATEMENT_HEADER = "gridproof key rotation"


class KeyHistoryError(NoteError):
    """A rotation announcement or a checkpoint's key does not fit the log's key history."""


def rotation_statement(origin: str, old_vkey: str, new_vkey: str) -> str:
    """The text the old key signs to announce the new one (a signed note's text)."""
    return f"{_STATEMENT_HEADER}\n{origin}\n{old_vkey}\n{new_vkey}\n"


@dataclass(frozen=True)
class Rotation:
    """One verified announcement: from the entry after `seq` on, `new` signs, not `old`."""

    seq: int
    old: VerifierKey
    new: VerifierKey
    note: str


def rotation_from_event(event: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """The data of a `ledger.key_rotated` event (canonical bytes or parsed); KeyHistoryError
    if the event is of another type or unreadable."""
    if not isinstance(event, Mapping):
        try:
            event = json.loads(event)
        except ValueError:
            raise KeyHistoryError("the rotation entry is not JSON") from None
    if not isinstance(event, Mapping) or event.get("type") != ROTATION_KIND:
        raise KeyHistoryError(f"the entry is not a {ROTATION_KIND} announcement")
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise KeyHistoryError("the rotation entry has no data")
    return data


class KeyHistory:
    """The keys of one log, oldest first, from a trusted first key and verified announcements."""

    def __init__(self, first: VerifierKey | str, origin: str | None = None) -> None:
        first = first if isinstance(first, VerifierKey) else VerifierKey.parse(first)
        self.origin = first.name if origin is None else origin
        self.first = first
        self.rotations: list[Rotation] = []

    @property
    def current(self) -> VerifierKey:
        """The newest key followed so far."""
        return self.rotations[-1].new if self.rotations else self.first

    @property
    def keys(self) -> list[VerifierKey]:
        return [self.first, *(r.new for r in self.rotations)]

    def follow(self, seq: int, data: Mapping[str, Any]) -> Rotation:
        """Check the announcement at entry `seq` against the current key and adopt its key."""
        where = f"key rotation at entry {seq}"
        if self.rotations and seq <= self.rotations[-1].seq:
            raise KeyHistoryError(f"{where}: announcements must be followed in log order")
        try:
            old = VerifierKey.parse(str(data.get("old_vkey", "")))
            new = VerifierKey.parse(str(data.get("new_vkey", "")))
        except NoteError as exc:
            raise KeyHistoryError(f"{where}: bad verifier key ({exc})") from None
        note = data.get("note")
        if not isinstance(note, str):
            raise KeyHistoryError(f"{where}: no signed statement")
        current = self.current
        if old != current:
            raise KeyHistoryError(
                f"{where}: it replaces key {old.name}+{old.key_id.hex()}, but the key current "
                f"at that point is {current.name}+{current.key_id.hex()}"
            )
        if new.name != self.origin:
            raise KeyHistoryError(f"{where}: the new key is named {new.name!r}, not the origin")
        if any(new.public_key == k.public_key or new.key_id == k.key_id for k in self.keys):
            raise KeyHistoryError(f"{where}: the new key was already used by this log")
        try:
            verified = verify_note(note, [old])
        except NoteError as exc:
            raise KeyHistoryError(
                f"{where}: the statement is not signed by the old key "
                f"{old.name}+{old.key_id.hex()} ({exc})"
            ) from None
        if verified.text != rotation_statement(self.origin, old.encode(), new.encode()):
            raise KeyHistoryError(f"{where}: the signed statement is not the one for these keys")
        rotation = Rotation(seq=seq, old=old, new=new, note=note)
        self.rotations.append(rotation)
        return rotation

    def key_at(self, size: int) -> VerifierKey:
        """The key that must sign the checkpoint of `size` entries."""
        key = self.first
        for rotation in self.rotations:
            if rotation.seq < size:
                key = rotation.new
        return key

    def misuse(self, size: int, note: str) -> str:
        """Why a checkpoint of `size` is not signed by the key of its size, for the error."""
        want = self.key_at(size)
        signatures = Note.parse(note).signatures
        for index, key in enumerate(self.keys):
            if key == want or not any(key.matches(sig) for sig in signatures):
                continue
            label = f"key {key.name}+{key.key_id.hex()}"
            if index and self.rotations[index - 1].seq >= size:
                seq = self.rotations[index - 1].seq
                return (
                    f"checkpoint of size {size} is signed by {label} before its announcement "
                    f"(entry {seq}: it signs only checkpoints of size {seq + 1} and larger)"
                )
            seq = self.rotations[index].seq
            return (
                f"checkpoint of size {size} is signed by the retired {label} (replaced at "
                f"entry {seq}: it signs only checkpoints up to size {seq})"
            )
        return (
            f"checkpoint of size {size} is not signed by the log key of that size "
            f"({want.name}+{want.key_id.hex()}); if the log rotated its key since, verify "
            "with its key history"
        )

    def verify_checkpoint(
        self,
        note: str,
        witness_keys: Sequence[VerifierKey | str] = (),
        quorum: int = 0,
    ) -> tuple[Checkpoint, list[str]]:
        """`note.verify_checkpoint` under the key of the checkpoint's size."""
        size = Checkpoint.parse(Note.parse(note).text).size
        key = self.key_at(size)
        if not any(key.matches(sig) for sig in Note.parse(note).signatures):
            raise KeyHistoryError(self.misuse(size, note))
        return verify_checkpoint(note, key, witness_keys, quorum, origin=self.origin)
