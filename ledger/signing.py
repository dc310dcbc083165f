"""Ed25519 signing of notes, checkpoints and cosignatures (PyNaCl; no Django).

Formats, key ids and verification come from `ledger.verify.note`; this module only
holds the private half. A private key is a note-format string

    PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || 32-byte Ed25519 seed)

as produced by golang.org/x/mod/sumdb/note and transparency-dev tooling.
"""

from __future__ import annotations

import base64

import nacl.signing
import nacl.utils

from ledger.verify.note import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    Checkpoint,
    NoteError,
    NoteSignature,
    VerifierKey,
    b64decode,
    cosignature_message,
    valid_key_name,
)

__all__ = ["Signer", "generate_private_key", "sign_checkpoint"]

_PRIVATE_PREFIX = "PRIVATE+KEY+"
_SEED_SIZE = 32


class Signer:
    """An Ed25519 note signer; the same seed also cosigns as a cosignature/v1 key."""

    __slots__ = ("_cosignature_verifier", "_key", "_verifier", "name")

    def __init__(self, name: str, seed: bytes) -> None:
        if not valid_key_name(name):
            raise NoteError(f"invalid key name {name!r}")
        if len(seed) != _SEED_SIZE:
            raise NoteError(f"Ed25519 seed must be {_SEED_SIZE} bytes")
        self.name = name
        self._key = nacl.signing.SigningKey(bytes(seed))
        public = bytes(self._key.verify_key)
        self._verifier = VerifierKey.from_public_key(name, KEY_TYPE_ED25519, public)
        self._cosignature_verifier = VerifierKey.from_public_key(
            name, KEY_TYPE_COSIGNATURE_V1, public
        )

    @classmethod
    def from_private_key(cls, skey: str) -> Signer:
        """Parse PRIVATE+KEY+<name>+<key id hex>+base64(0x01 || seed); check the key id."""
        skey = skey.strip()
        if not skey.startswith(_PRIVATE_PREFIX):
            raise NoteError("private key must start with PRIVATE+KEY+")
        parts = skey[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise NoteError("private key must be PRIVATE+KEY+<name>+<key id>+<base64 key>")
        name, id_hex, encoded = parts
        raw = b64decode(encoded, "private key")
        if len(raw) != 1 + _SEED_SIZE or raw[0] != KEY_TYPE_ED25519:
            raise NoteError("private key must be type 0x01 followed by a 32-byte seed")
        signer = cls(name, raw[1:])
        if id_hex.lower() != signer.verifier.key_id.hex():
            raise NoteError(f"private key id {id_hex} does not match its public key")
        return signer

    def private_key(self) -> str:
        """The private key string (keep it secret)."""
        raw = bytes([KEY_TYPE_ED25519]) + bytes(self._key)
        id_hex = self._verifier.key_id.hex()
        return f"{_PRIVATE_PREFIX}{self.name}+{id_hex}+{base64.b64encode(raw).decode('ascii')}"

    @property
    def verifier(self) -> VerifierKey:
        return self._verifier

    @property
    def vkey(self) -> str:
        return self._verifier.encode()

    @property
    def cosignature_verifier(self) -> VerifierKey:
        return self._cosignature_verifier

    @property
    def cosignature_vkey(self) -> str:
        return self._cosignature_verifier.encode()

    def signature(self, text: str) -> NoteSignature:
        """The note signature of `text` (which must end with a newline)."""
        if not text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        sig = self._key.sign(text.encode("utf-8")).signature
        return NoteSignature(self.name, self._verifier.key_id, sig)

    def sign_note(self, text: str) -> str:
        """Return the signed note: text, a blank line, this key's signature line."""
        return text + "\n" + self.signature(text).line()

    def cosign(self, checkpoint_body: str, timestamp: int) -> str:
        """A tlog-cosignature (cosignature/v1) signature line, newline-terminated.

        Append it to the signed checkpoint note to add the cosignature.
        """
        Checkpoint.parse(checkpoint_body)
        message = cosignature_message(checkpoint_body, timestamp)
        sig = self._key.sign(message).signature
        payload = timestamp.to_bytes(8, "big") + sig
        return NoteSignature(self.name, self._cosignature_verifier.key_id, payload).line()

    def __repr__(self) -> str:
        return f"Signer({self.vkey})"


def generate_private_key(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key: (private key string, verifier key string)."""
    signer = Signer(name, nacl.utils.random(_SEED_SIZE))
    return signer.private_key(), signer.vkey


def sign_checkpoint(
    signer: Signer, origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()
) -> str:
    """The signed tlog-checkpoint note for (origin, size, root)."""
    return signer.sign_note(Checkpoint(origin, size, bytes(root), tuple(extensions)).body())
