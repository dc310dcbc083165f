"""Signed requests between peer registries (no shared secrets), pure functions.

A peer POST carries four headers. The sender signs, with its registry (checkpoint) key,
a short text that binds who sends to whom, when, which request and which body:

    gridproof-peer-request/v1
    from <sender origin>
    to <recipient origin>
    time <unix seconds>
    nonce <32 hex digits>
    method POST
    path /api/v1/federation/notify/
    body-sha256 <base64 SHA-256 of the body>

The signature is an Ed25519 note signature (the same key and format as its checkpoints),
so the recipient verifies it with the peer's registered log key. The first line keeps it
apart from checkpoints, whose second line is a tree size. `to` stops a request meant for
one registry from being replayed at another; `time` and `nonce` stop replays at the same
one (the recipient keeps nonces for the clock window).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

from ledger.signing import Signer
from ledger.verify.note import NoteError, NoteSignature, VerifierKey, b64decode

HEADER_ORIGIN = "GridProof-Peer-Origin"
HEADER_TIME = "GridProof-Peer-Time"
HEADER_NONCE = "GridProof-Peer-Nonce"
HEADER_SIGNATURE = "GridProof-Peer-Signature"
CONTEXT = "gridproof-peer-request/v1"

_NONCE = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"[1-9][0-9]{0,11}")


class PeerRequestError(ValueError):
    """A peer request's signature headers are missing, malformed or do not verify."""


@dataclass(frozen=True)
class SignedRequest:
    origin: str
    time: int
    nonce: str


def signed_text(
    *, origin: str, to: str, time: int, nonce: str, method: str, path: str, body: bytes
) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    return (
        f"{CONTEXT}\nfrom {origin}\nto {to}\ntime {time}\nnonce {nonce}\n"
        f"method {method.upper()}\npath {path}\nbody-sha256 {digest}\n"
    )


def sign_request(
    signer: Signer, *, to: str, method: str, path: str, body: bytes, time: int
) -> dict[str, str]:
    """The headers that authenticate this request as sent by `signer`'s registry."""
    nonce = secrets.token_hex(16)
    text = signed_text(
        origin=signer.name, to=to, time=time, nonce=nonce, method=method, path=path, body=body
    )
    sig = signer.signature(text)
    return {
        HEADER_ORIGIN: signer.name,
        HEADER_TIME: str(time),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: base64.b64encode(sig.key_id + sig.signature).decode("ascii"),
    }


def read_headers(headers) -> tuple[str, int, str, bytes]:
    """(origin, time, nonce, key id || signature) from a request's headers."""
    origin = (headers.get(HEADER_ORIGIN) or "").strip()
    time_text = (headers.get(HEADER_TIME) or "").strip()
    nonce = (headers.get(HEADER_NONCE) or "").strip()
    encoded = (headers.get(HEADER_SIGNATURE) or "").strip()
    if not (origin and time_text and nonce and encoded):
        raise PeerRequestError(
            f"a peer request needs the {HEADER_ORIGIN}, {HEADER_TIME}, {HEADER_NONCE} and "
            f"{HEADER_SIGNATURE} headers"
        )
    if not _TIME.fullmatch(time_text):
        raise PeerRequestError(f"{HEADER_TIME} must be Unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise PeerRequestError(f"{HEADER_NONCE} must be 32 lowercase hex digits")
    try:
        raw = b64decode(encoded, HEADER_SIGNATURE)
    except NoteError as exc:
        raise PeerRequestError(str(exc)) from None
    if len(raw) != 4 + 64:
        raise PeerRequestError(f"{HEADER_SIGNATURE} must be base64 of key id and signature")
    return origin, int(time_text), nonce, raw


def verify_request(
    key: VerifierKey,
    *,
    headers,
    to: str,
    method: str,
    path: str,
    body: bytes,
    now: int,
    max_skew: int,
) -> SignedRequest:
    """Check the headers against the peer's key; return who signed, when, with which nonce."""
    origin, time, nonce, raw = read_headers(headers)
    if origin != key.name:
        raise PeerRequestError(f"signed by {origin!r}, not by {key.name!r}")
    if abs(now - time) > max_skew:
        raise PeerRequestError(f"request time is more than {max_skew} s away from ours")
    text = signed_text(
        origin=origin, to=to, time=time, nonce=nonce, method=method, path=path, body=body
    )
    signature = NoteSignature(name=origin, key_id=raw[:4], signature=raw[4:])
    if not key.matches(signature) or not key.verify(text, signature):
        raise PeerRequestError("the signature does not verify against the peer's key")
    return SignedRequest(origin=origin, time=time, nonce=nonce)
