"""C2SP signed-note, tlog-checkpoint and tlog-cosignature (Ed25519), verification side.

Standard library plus PyNaCl only. Signing lives in `ledger.signing` and builds on the
encoders here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

__all__ = [
    "KEY_TYPE_COSIGNATURE_V1",
    "KEY_TYPE_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Note",
    "NoteError",
    "NoteSignature",
    "VerifierKey",
    "b64decode",
    "cosignature_message",
    "key_id",
    "valid_key_name",
    "verify_checkpoint",
    "verify_note",
]

KEY_TYPE_ED25519 = 0x01
KEY_TYPE_COSIGNATURE_V1 = 0x04
_SUPPORTED_TYPES = (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1)

SIG_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
"""Signature lines accepted in one note (the spec asks for at least 16)."""

_ED25519_SIG_SIZE = 64
_TIMESTAMP_SIZE = 8
_MAX_TIMESTAMP = 2**63 - 1
_MAX_TREE_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteError(ValueError):
    """A note, key or checkpoint is malformed, or its signatures do not verify."""


def b64decode(text: str, what: str = "base64") -> bytes:
    """Strict standard base64 (RFC 4648 section 4, padded); NoteError otherwise."""
    try:
        raw = text.encode("ascii")
        return base64.b64decode(raw, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise NoteError(f"invalid {what}: {exc}") from None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def valid_key_name(name: str) -> bool:
    """Key names are non-empty, with no Unicode space and no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """First 4 bytes of SHA-256(name || 0x0A || type || public key)."""
    data = name.encode("utf-8") + b"\n" + bytes([key_type]) + bytes(public_key)
    return hashlib.sha256(data).digest()[:4]


def cosignature_message(body: str, timestamp: int) -> bytes:
    """The message an Ed25519 cosignature/v1 signs: header, time line, whole note body."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} out of range")
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id and the signature bytes after the id."""

    name: str
    key_id: bytes
    signature: bytes

    @classmethod
    def parse(cls, line: str) -> NoteSignature:
        """Parse '— <name> base64(keyid || signature)' (without the newline)."""
        if not line.startswith(SIG_PREFIX):
            raise NoteError("signature line does not start with an em dash and a space")
        name, sep, encoded = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not valid_key_name(name) or not encoded:
            raise NoteError(f"malformed signature line {line!r}")
        raw = b64decode(encoded, "signature")
        if len(raw) < 5:
            raise NoteError(f"signature by {name} is too short")
        return cls(name=name, key_id=raw[:4], signature=raw[4:])

    def line(self) -> str:
        """The signature line, newline-terminated."""
        return f"{SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"

    @property
    def timestamp(self) -> int | None:
        """The cosignature/v1 timestamp, if the signature has the timestamped layout."""
        if len(self.signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
            return None
        return int.from_bytes(self.signature[:_TIMESTAMP_SIZE], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A verifier key '<name>+<key id hex>+base64(type || public key)'."""

    name: str
    key_id: bytes
    key_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")
        if self.key_type not in _SUPPORTED_TYPES:
            raise NoteError(f"unsupported key type 0x{self.key_type:02x}")
        if len(self.public_key) != 32:
            raise NoteError(f"Ed25519 public key must be 32 bytes, got {len(self.public_key)}")
        if self.key_id != key_id(self.name, self.key_type, self.public_key):
            raise NoteError(f"key id {self.key_id.hex()} does not match key {self.name}")

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must be <name>+<key id>+<base64 key>")
        name, id_hex, encoded = parts
        if not _HEX8.fullmatch(id_hex):
            raise NoteError(f"key id {id_hex!r} is not 8 hex digits")
        raw = b64decode(encoded, "verifier key")
        if not raw:
            raise NoteError("empty verifier key")
        return cls(name=name, key_id=bytes.fromhex(id_hex), key_type=raw[0], public_key=raw[1:])

    @classmethod
    def from_public_key(cls, name: str, key_type: int, public_key: bytes) -> VerifierKey:
        return cls(name, key_id(name, key_type, public_key), key_type, bytes(public_key))

    def encode(self) -> str:
        material = _b64encode(bytes([self.key_type]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def __str__(self) -> str:
        return self.encode()

    def matches(self, sig: NoteSignature) -> bool:
        """A signature line belongs to this key when both name and key id match."""
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> bool:
        """Whether `sig` (already matched to this key) is valid over the note text."""
        if self.key_type == KEY_TYPE_ED25519:
            message, raw = text.encode("utf-8"), sig.signature
        else:
            if len(sig.signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
                return False
            timestamp = int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            message, raw = cosignature_message(text, timestamp), sig.signature[_TIMESTAMP_SIZE:]
        if len(raw) != _ED25519_SIG_SIZE:
            return False
        try:
            nacl.signing.VerifyKey(self.public_key).verify(message, raw)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


@dataclass(frozen=True)
class Note:
    """A signed note: its text (ending in a newline) and signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, note: str) -> Note:
        """Split and parse a signed note without verifying anything."""
        if not isinstance(note, str):
            raise NoteError("note must be text")
        if _CONTROL.search(note):
            raise NoteError("note contains a control character other than newline")
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise NoteError("note is not valid UTF-8") from None
        split = note.rfind("\n\n")
        if split < 0:
            raise NoteError("note has no blank line before its signatures")
        text, block = note[: split + 1], note[split + 2 :]
        if not block or not block.endswith("\n"):
            raise NoteError("note has no signature lines or does not end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
        return cls(text=text, signatures=tuple(NoteSignature.parse(line) for line in lines))

    def encode(self) -> str:
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)


def verify_note(note: str, verifiers: Sequence[VerifierKey]) -> Note:
    """Parse a note and verify it; return it with only the signatures that verified.

    Signatures from unknown keys (name and id not both matching) are ignored; a
    signature from a known key that fails to verify rejects the whole note; at least
    one known key must have signed.
    """
    parsed = Note.parse(note)
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for sig in parsed.signatures:
        key = next((k for k in verifiers if k.matches(sig)), None)
        if key is None or (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        if not key.verify(parsed.text, sig):
            raise NoteError(f"invalid signature by {sig.name}+{sig.key_id.hex()}")
        verified.append(sig)
    if not verified:
        raise NoteError("note is not signed by any known key")
    return Note(text=parsed.text, signatures=tuple(verified))


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty line")
        if not isinstance(self.size, int) or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size!r} out of range")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise NoteError("checkpoint root must be 32 bytes")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("checkpoint extension lines must be single non-empty lines")

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise NoteError("checkpoint body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint body needs origin, size and root lines")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise NoteError(f"checkpoint size {size!r} is not a plain decimal")
        return cls(origin, int(size), b64decode(root, "checkpoint root"), tuple(extensions))

    def body(self) -> str:
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "\n".join(lines) + "\n"


def _as_key(key: VerifierKey | str) -> VerifierKey:
    return key if isinstance(key, VerifierKey) else VerifierKey.parse(key)


def verify_checkpoint(
    note: str,
    log_key: VerifierKey | str,
    witness_keys: Sequence[VerifierKey | str] = (),
    quorum: int = 0,
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, list[str]]:
    """Verify a signed checkpoint: log signature, origin, and a quorum of cosignatures.

    `origin` defaults to the log key's name. Cosignatures count once per witness name
    (a witness holding several keys is still one witness); the log's own key never
    counts as a witness. Returns the checkpoint and the names of witnesses that cosigned.
    """
    log = _as_key(log_key)
    witnesses = [_as_key(k) for k in witness_keys]
    if quorum < 0 or quorum > len({w.name for w in witnesses if w != log}):
        raise NoteError(f"quorum {quorum} cannot be met by {len(witnesses)} witness keys")
    verified = verify_note(note, [log, *witnesses])
    if not any(log.matches(sig) for sig in verified.signatures):
        raise NoteError(f"checkpoint is not signed by the log key {log.name}")
    checkpoint = Checkpoint.parse(verified.text)
    want_origin = log.name if origin is None else origin
    if checkpoint.origin != want_origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {want_origin!r}")
    cosigners: list[str] = []
    for sig in verified.signatures:
        if log.matches(sig) or sig.name in cosigners:
            continue
        if any(w.matches(sig) for w in witnesses):
            cosigners.append(sig.name)
    if len(cosigners) < quorum:
        raise NoteError(f"{len(cosigners)} cosignatures, quorum is {quorum}")
    return checkpoint, cosigners
