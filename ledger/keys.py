"""The registry's two keys, from settings: the log's signing key and its witness key.

REGISTRY_SIGNING_KEY holds a note-format private key (`manage.py generate_signing_key`)
whose name is REGISTRY_ORIGIN, the checkpoint origin. In development without one, the
key is derived from SECRET_KEY and REGISTRY_ORIGIN, so the web process and a separate
worker sign alike; anyone who knows SECRET_KEY can forge its checkpoints.

REGISTRY_WITNESS_KEY is a second Ed25519 key, with which the registry cosigns its peers'
checkpoints (cosignature/v1) and nothing else; any name but the origin
(`generate_signing_key --print --name <origin>/witness`). Kept apart from the log key, a
stolen witness key cannot sign this log's checkpoints and the reverse, and each is
rotated without the other. In development without one it is derived from SECRET_KEY and
the name `<REGISTRY_ORIGIN>/witness`.
"""

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ledger.signing import Signer
from ledger.verify.note import NoteError

logger = logging.getLogger(__name__)

_DEVELOPMENT_KEY_CONTEXT = b"GridProof development checkpoint key v1\n"
_DEVELOPMENT_WITNESS_CONTEXT = b"GridProof development witness key v1\n"
_signers: dict[tuple[str, str, str, bool], Signer] = {}


def development_signer(
    *, origin: str, secret_key: str, context: bytes = _DEVELOPMENT_KEY_CONTEXT
) -> Signer:
    """A deterministic, INSECURE key for development: SHA-256 of SECRET_KEY and the name."""
    seed = hashlib.sha256(context + secret_key.encode() + b"\n" + origin.encode()).digest()
    return Signer(origin, seed)


def _parse(setting: str, skey: str) -> Signer:
    try:
        return Signer.from_private_key(skey)
    except NoteError as exc:
        raise ImproperlyConfigured(f"{setting} is not a note private key: {exc}") from None


def _load_signer(skey: str, origin: str, secret_key: str, development: bool) -> Signer:
    if skey:
        signer = _parse("REGISTRY_SIGNING_KEY", skey)
        if signer.name != origin:
            raise ImproperlyConfigured(
                f"REGISTRY_SIGNING_KEY is named {signer.name!r} but REGISTRY_ORIGIN is "
                f"{origin!r}; checkpoints are signed by a key named after their origin "
                "(`manage.py generate_signing_key --name ORIGIN`)."
            )
        return signer
    if not development:
        raise ImproperlyConfigured("REGISTRY_SIGNING_KEY is not set.")
    signer = development_signer(origin=origin, secret_key=secret_key)
    logger.warning(
        "INSECURE: no REGISTRY_SIGNING_KEY; checkpoints are signed with a development key "
        "derived from SECRET_KEY (%s). Run `manage.py generate_signing_key` for a real one.",
        signer.vkey,
    )
    return signer


def registry_signer() -> Signer:
    """The signer of this registry's checkpoints (key name = REGISTRY_ORIGIN)."""
    config = (
        settings.REGISTRY_SIGNING_KEY,
        settings.REGISTRY_ORIGIN,
        settings.SECRET_KEY,
        settings.DEVELOPMENT,
    )
    signer = _signers.get(config)
    if signer is None:
        signer = _signers[config] = _load_signer(*config)
    return signer


def _load_witness(wkey: str, origin: str, secret_key: str, development: bool) -> Signer:
    if wkey:
        witness = _parse("REGISTRY_WITNESS_KEY", wkey)
        if witness.name == origin:
            raise ImproperlyConfigured(
                "REGISTRY_WITNESS_KEY is named like the log (REGISTRY_ORIGIN); give the witness "
                f"key a name of its own, e.g. {origin}/witness."
            )
        return witness
    if not development:
        raise ImproperlyConfigured("REGISTRY_WITNESS_KEY is not set.")
    return development_signer(
        origin=f"{origin}/witness", secret_key=secret_key, context=_DEVELOPMENT_WITNESS_CONTEXT
    )


_witnesses: dict[tuple[str, str, str, bool], Signer] = {}


def registry_witness() -> Signer:
    """The key this registry cosigns its peers' checkpoints with (never its own log's)."""
    config = (
        settings.REGISTRY_WITNESS_KEY,
        settings.REGISTRY_ORIGIN,
        settings.SECRET_KEY,
        settings.DEVELOPMENT,
    )
    witness = _witnesses.get(config)
    if witness is None:
        witness = _witnesses[config] = _load_witness(*config)
    return witness
