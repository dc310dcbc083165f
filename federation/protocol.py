"""Wire formats of C2SP tlog-witness `add-checkpoint` (pure functions, no Django).

Request body: `old <size>\\n`, up to 63 base64 consistency-proof lines, an empty line,
then the signed checkpoint note. A 200 response is one or more note signature lines
(cosignatures); a 409 for a stale old size is `<size>\\n` as `text/x.tlog.size`.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass

from ledger.verify.note import Note, NoteError, NoteSignature, b64decode
from registry.text_patterns import SPACE

ADD_CHECKPOINT_PATH = "/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
"""63 proof lines and a checkpoint with MAX_SIGNATURES signatures fit well within this."""

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")

# The shapes of a peer's registration fields, as the API's schema states them. Spaces
# around a value are trimmed (Python's, which include \x1c-\x1f and \x85). A note key
# name has no '+' and no space. A C2SP note verifier key is the name, the key id, and the
# base64 of the type byte and a 32-byte Ed25519 key (33 bytes: 44 characters, no
# padding); the type byte fixes the first two characters: 0x01 (Ed25519) "A" then Q-f,
# 0x04 (cosignature/v1) "B" then A-P. A URL is http(s), a host, a port, a path, and no
# query or fragment.
# Python's `\s` (what str.strip() removes) spelled out, so that schema validators whose
# `\s` is Rust's (without \x1c-\x1f) or ECMA-262's (with \ufeff) mean the same.
_WS = SPACE
_SPACE = rf"[{_WS}]*"
_NAME = rf"[^+{_WS}\x00]+"
KEY_NAME = rf"^{_SPACE}{_NAME}{_SPACE}$"
LOG_VKEY = rf"^{_SPACE}{_NAME}\+[0-9a-fA-F]{{8}}\+A[Q-Za-f][A-Za-z0-9+/]{{42}}{_SPACE}$"
WITNESS_VKEY = rf"^{_SPACE}{_NAME}\+[0-9a-fA-F]{{8}}\+B[A-P][A-Za-z0-9+/]{{42}}{_SPACE}$"
PEER_URL = rf"^{_SPACE}https?://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/[^{_WS}?#\x00]*)?{_SPACE}$"


class ProtocolError(ValueError):
    """A witness request or response does not follow the tlog-witness format."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: list[bytes]
    note: str


def _decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise ProtocolError(f"{what} {text[:40]!r} is not a decimal without leading zeroes")
    return int(text)


def encode_add_checkpoint(old_size: int, proof: list[bytes], note: str) -> bytes:
    """The request body for add-checkpoint."""
    if len(proof) > MAX_PROOF_LINES:
        raise ProtocolError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    lines = [f"old {old_size}\n"]
    lines.extend(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
    return ("".join(lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint body; ProtocolError names what is wrong."""
    if len(body) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"request body larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ProtocolError("no empty line between the old size and proof and the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise ProtocolError("the first line must be 'old <size>'")
    old_size = _decimal(first[4:], "old size")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise ProtocolError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for i, line in enumerate(proof_lines):
        try:
            value = b64decode(line, f"proof line {i + 1}")
        except NoteError as exc:
            raise ProtocolError(str(exc)) from None
        if len(value) != 32:
            raise ProtocolError(f"proof line {i + 1} is not a 32-byte hash")
        proof.append(value)
    try:
        Note.parse(note)
    except NoteError as exc:
        raise ProtocolError(f"checkpoint: {exc}") from None
    return AddCheckpointRequest(old_size=old_size, proof=proof, note=note)


def encode_size(size: int) -> str:
    return f"{size}\n"


def parse_size(body: bytes) -> int:
    """The tree size in a `text/x.tlog.size` body."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("size body is not ASCII") from None
    if not text.endswith("\n"):
        raise ProtocolError("size body must end with a newline")
    return _decimal(text[:-1], "size")


def parse_signature_lines(body: bytes) -> list[NoteSignature]:
    """The note signature lines of a 200 add-checkpoint response."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("cosignature response is not UTF-8") from None
    if not text.endswith("\n"):
        raise ProtocolError("cosignature response must end with a newline")
    lines = text[:-1].split("\n")
    if not lines or len(lines) > 100:
        raise ProtocolError("cosignature response must hold 1 to 100 signature lines")
    try:
        return [NoteSignature.parse(line) for line in lines]
    except NoteError as exc:
        raise ProtocolError(str(exc)) from None


# --- Entry bundles: GridProof's compact replication format (GET /api/v1/federation/log/
# entries/). A bundle is the entries' bytes in sequence order, each preceded by its length
# as a 4-byte big-endian integer; the first entry's number is the request's `start`.

BUNDLE_CONTENT_TYPE = "application/vnd.gridproof.entry-bundle"
BUNDLE_MAX_ENTRIES = 10_000


def encode_bundle(events) -> bytes:
    return b"".join(len(event).to_bytes(4, "big") + bytes(event) for event in events)


_LENGTH = struct.Struct("!I")


def parse_bundle(body: bytes, limit: int) -> list[bytes]:
    """The entries of a bundle; ProtocolError if it is cut off or holds more than `limit`."""
    events: list[bytes] = []
    append = events.append
    length_at = _LENGTH.unpack_from
    offset, size = 0, len(body)
    while offset < size:
        if offset + 4 > size:
            raise ProtocolError(f"entry bundle cut off in a length at byte {offset}")
        (length,) = length_at(body, offset)
        offset += 4
        end = offset + length
        if end > size:
            raise ProtocolError(f"entry bundle cut off in entry {len(events)}")
        append(body[offset:end])  # one copy; a memoryview slice then bytes() made two objects
        offset = end
        if len(events) > limit:
            raise ProtocolError(f"entry bundle holds more than {limit} entries")
    return events
