"""The verification steps of `python -m ledger.verify`, importable without the CLI.

Standard library and PyNaCl only (through `note` and `rfc9162`): each `check_*` takes what
was downloaded and the auditor's `Trust`, and returns what it proved or raises
VerificationFailed naming the first thing that did not verify.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ledger.verify.keyhistory import KeyHistory, rotation_from_event
from ledger.verify.note import (
    Checkpoint,
    Note,
    NoteError,
    VerifierKey,
    b64decode,
    verify_checkpoint,
)
from ledger.verify.rfc9162 import ProofError, leaf_hash, verify_consistency, verify_inclusion


class VerificationFailed(Exception):
    """The data did not verify, or could not be fetched or parsed."""


class UsageError(Exception):
    """Bad command-line input (keys, quorum, URLs, unreadable files)."""


@dataclass(frozen=True)
class Trust:
    """What the auditor trusts: the log key, witness keys and the quorum they must meet.

    `history`, once `check_key_history` has followed the log's key rotations from
    `log_key`, verifies each checkpoint under the key current at its size."""

    log_key: VerifierKey
    witness_keys: tuple[VerifierKey, ...] = ()
    quorum: int = 0
    origin: str | None = None
    history: KeyHistory | None = field(default=None, compare=False)

    def key_at(self, size: int) -> VerifierKey:
        return self.history.key_at(size) if self.history is not None else self.log_key

    @classmethod
    def from_strings(
        cls,
        log_key: str,
        witness_keys: Sequence[str] = (),
        quorum: int = 0,
        origin: str | None = None,
    ) -> Trust:
        try:
            log = VerifierKey.parse(log_key)
            witnesses = tuple(VerifierKey.parse(k) for k in witness_keys)
        except NoteError as exc:
            raise UsageError(f"bad verifier key: {exc}") from None
        names = {w.name for w in witnesses if w != log}
        if quorum < 0 or quorum > len(names):
            raise UsageError(f"quorum {quorum} needs at least that many distinct witness keys")
        return cls(log, witnesses, quorum, origin)


@dataclass(frozen=True)
class CheckpointResult:
    checkpoint: Checkpoint
    cosigners: list[str]


@dataclass(frozen=True)
class InclusionResult:
    checkpoint: CheckpointResult
    seq: int
    leaf_hash: bytes
    event: bytes


@dataclass(frozen=True)
class ConsistencyResult:
    old: CheckpointResult
    new: CheckpointResult


@dataclass(frozen=True)
class HistoryResult:
    checkpoint: CheckpointResult
    entries: list[tuple[int, bytes]] = field(default_factory=list)


# ---------------------------------------------------------------- verification steps


def check_checkpoint(note: str, trust: Trust) -> CheckpointResult:
    """Verify a signed checkpoint note against the trusted keys and quorum."""
    if not isinstance(note, str):
        raise VerificationFailed("checkpoint must be the signed note text")
    try:
        if trust.history is not None:
            checkpoint, cosigners = trust.history.verify_checkpoint(
                note, trust.witness_keys, trust.quorum
            )
        else:
            checkpoint, cosigners = verify_checkpoint(
                note, trust.log_key, trust.witness_keys, trust.quorum, origin=trust.origin
            )
    except NoteError as exc:
        raise VerificationFailed(f"checkpoint: {exc}{_rotation_hint(note, trust)}") from None
    return CheckpointResult(checkpoint, cosigners)


def _rotation_hint(note: str, trust: Trust) -> str:
    """A hint when the note is signed under the log's name by a key the auditor does not
    know: the log may have rotated its key."""
    if trust.history is not None:
        return ""
    try:
        signatures = Note.parse(note).signatures
    except NoteError:
        return ""
    name = trust.log_key.name
    others = [s for s in signatures if s.name == name and s.key_id != trust.log_key.key_id]
    if not others or any(trust.log_key.matches(s) for s in signatures):
        return ""
    return (
        f" (it is signed by key ID {others[0].key_id.hex()} of {name}: if the log rotated its "
        "key, verify with its key history: --keys FILE, or --url fetches it)"
    )


def signed_by_trusted_key(note: str, trust: Trust) -> bool:
    """Whether the note carries a signature line of the auditor's first key (no check)."""
    try:
        return any(trust.log_key.matches(s) for s in Note.parse(note).signatures)
    except NoteError:
        return False


def check_key_history(doc: Any, trust: Trust) -> Trust:
    """Verify a key history {"checkpoint", "rotations": [{"seq", "event_b64", "proof"}]}
    (`GET /api/v1/ledger/keys/`) and return `trust` following it.

    From `trust.log_key`, each announcement read from its own event bytes must be signed
    by the key it replaces; the checkpoint must be signed by the key current at its size;
    and each announcement must be in the checkpoint's tree (RFC 9162 inclusion), so a key
    is never accepted for a tree that does not contain its announcement."""
    doc = _mapping(doc, "key history")
    items = doc.get("rotations")
    if not isinstance(items, list):
        raise VerificationFailed("key history rotations must be a list")
    history = KeyHistory(trust.log_key, origin=trust.origin)
    proven: list[tuple[int, bytes, list[bytes]]] = []
    for i, item in enumerate(items):
        item = _mapping(item, f"rotations[{i}]")
        seq = _seq(item.get("seq"), f"rotations[{i}].seq")
        event = _b64(item.get("event_b64"), f"rotations[{i}].event_b64")
        try:
            history.follow(seq, rotation_from_event(event))
        except NoteError as exc:
            raise VerificationFailed(f"key history: {exc}") from None
        proven.append((seq, event, _proof(item.get("proof"), f"rotations[{i}].proof")))
    following = replace(trust, history=history)
    result = check_checkpoint(doc.get("checkpoint"), following)
    for seq, event, proof in proven:
        _verify_entry(result.checkpoint, seq, event, proof)
    return following


def _with_keys(bundle: Mapping[str, Any], trust: Trust) -> Trust:
    """The bundle's own key history ("keys"), when it carries one and none is followed yet."""
    if bundle.get("keys") is None or trust.history is not None:
        return trust
    return check_key_history(bundle["keys"], trust)


def _seq(value: Any, what: str = "seq") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationFailed(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationFailed(f"{what} must be a base64 string")
    try:
        return b64decode(value, what)
    except NoteError as exc:
        raise VerificationFailed(str(exc)) from None


def _proof(value: Any, what: str = "proof") -> list[bytes]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise VerificationFailed(f"{what} must be a list of base64 hashes")
    return [_b64(h, f"{what}[{i}]") for i, h in enumerate(value)]


def _hash_field(value: Any, what: str) -> bytes:
    """A 32-byte hash given as base64 (44 chars) or hex (64 chars)."""
    if isinstance(value, str) and len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return _b64(value, what)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VerificationFailed(f"{what} must be a JSON object")
    return value


def _verify_entry(cp: Checkpoint, seq: int, event: bytes, proof: list[bytes]) -> bytes:
    if seq >= cp.size:
        raise VerificationFailed(
            f"entry {seq} is not covered by the checkpoint (tree size {cp.size}); "
            "retry after the next checkpoint"
        )
    leaf = leaf_hash(event)
    try:
        verify_inclusion(leaf, seq, cp.size, proof, cp.root)
    except ProofError as exc:
        raise VerificationFailed(f"inclusion of entry {seq}: {exc}") from None
    return leaf


def check_inclusion(bundle: Mapping[str, Any], trust: Trust) -> InclusionResult:
    """Verify {"checkpoint", "seq", "event_b64", "proof"}: the event is entry seq."""
    bundle = _mapping(bundle, "inclusion bundle")
    trust = _with_keys(bundle, trust)
    result = check_checkpoint(bundle.get("checkpoint"), trust)
    seq = _seq(bundle.get("seq"))
    event = _b64(bundle.get("event_b64"), "event_b64")
    leaf = _verify_entry(result.checkpoint, seq, event, _proof(bundle.get("proof")))
    return InclusionResult(result, seq, leaf, event)


def check_consistency(
    old_note: str,
    new_note: str,
    proof: Sequence[bytes] | None,
    trust: Trust,
) -> ConsistencyResult:
    """Verify both checkpoints and that the new tree extends the old one."""
    old = check_checkpoint(old_note, trust)
    new = check_checkpoint(new_note, trust)
    a, b = old.checkpoint, new.checkpoint
    if b.size < a.size:
        raise VerificationFailed(f"new checkpoint (size {b.size}) is older than {a.size}")
    if a.size == b.size and a.root != b.root:
        raise VerificationFailed(f"EQUIVOCATION: two different signed roots for tree size {a.size}")
    if 0 < a.size < b.size and proof is None:
        raise VerificationFailed("a consistency proof is needed for different sizes")
    try:
        verify_consistency(a.size, b.size, list(proof or ()), a.root, b.root)
    except ProofError as exc:
        raise VerificationFailed(f"consistency {a.size} -> {b.size}: {exc}") from None
    return ConsistencyResult(old, new)


def check_consistency_proof_doc(doc: Any, first: int, second: int) -> list[bytes]:
    """Parse {"first", "second", "proof"} and check it is for these sizes."""
    doc = _mapping(doc, "consistency proof")
    if _seq(doc.get("first"), "first") != first or _seq(doc.get("second"), "second") != second:
        raise VerificationFailed(
            f"proof is for sizes {doc.get('first')} -> {doc.get('second')}, not {first} -> {second}"
        )
    return _proof(doc.get("proof"))


def _subject_mismatch(event: bytes, subject: tuple[str, str] | None) -> str | None:
    """None if the event names `subject` among its subjects, else what it names instead.

    GridProof events carry `"subject": ["bundle:12", "account:3", ...]`.
    """
    if subject is None:
        return None
    try:
        value = json.loads(event).get("subject")
    except (ValueError, AttributeError):
        return "an unreadable event"
    want = f"{subject[0]}:{subject[1]}"
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        return "no subject"
    return None if want in value else ", ".join(map(str, value))


def check_history(
    bundle: Mapping[str, Any], trust: Trust, subject: tuple[str, str] | None = None
) -> HistoryResult:
    """Verify {"checkpoint", "entries": [{"seq", "event_b64", "proof"}]} against one checkpoint.

    Entries are returned in sequence order. A history can prove that each listed event
    is in the log, not that no event of the subject was left out.
    """
    bundle = _mapping(bundle, "history bundle")
    trust = _with_keys(bundle, trust)
    result = check_checkpoint(bundle.get("checkpoint"), trust)
    items = bundle.get("entries")
    if not isinstance(items, list):
        raise VerificationFailed("history entries must be a list")
    entries: dict[int, bytes] = {}
    for i, item in enumerate(items):
        item = _mapping(item, f"entries[{i}]")
        seq = _seq(item.get("seq"), f"entries[{i}].seq")
        if seq in entries:
            raise VerificationFailed(f"entry {seq} is listed twice")
        event = _b64(item.get("event_b64"), f"entries[{i}].event_b64")
        _verify_entry(result.checkpoint, seq, event, _proof(item.get("proof")))
        other = _subject_mismatch(event, subject)
        if other is not None:
            raise VerificationFailed(f"entry {seq} is about {other}, not {subject[0]}:{subject[1]}")
        entries[seq] = event
    return HistoryResult(result, sorted(entries.items()))
