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

Log key rotation: REGISTRY_NEXT_SIGNING_KEY stages the next log key. `log_key_rotate`
(ledger/rotation.py) announces it with a `ledger.key_rotated` entry signed by the current
key; from the first tree that contains the announcement on, checkpoints are signed with
the new key (`log_key_history().key_at(size)`), so every process holding both keys
switches exactly when the entry is integrated, without a restart.
"""

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ledger.models import LedgerEntry
from ledger.signing import Signer
from ledger.verify.keyhistory import ROTATION_KIND, KeyHistory, rotation_from_event
from ledger.verify.note import Checkpoint, Note, NoteError, VerifierKey

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
    """The signer of the log key current at the ledger's head (key name = REGISTRY_ORIGIN):
    REGISTRY_SIGNING_KEY, or REGISTRY_NEXT_SIGNING_KEY once the ledger announced it."""
    signers = registry_signers()
    if len(signers) > 1:
        latest = LedgerEntry.objects.filter(kind=ROTATION_KIND).order_by("-seq").first()
        if latest is not None:
            announced = rotation_from_event(bytes(latest.event)).get("new_vkey")
            if announced == signers[1].vkey:
                return signers[1]
    return signers[0]


def registry_signer_configured() -> Signer:
    """The signer of REGISTRY_SIGNING_KEY (or the development key), whatever the ledger says."""
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


def _load_next(skey: str, origin: str, current: Signer) -> Signer | None:
    if not skey:
        return None
    signer = _parse("REGISTRY_NEXT_SIGNING_KEY", skey)
    if signer.name != origin:
        raise ImproperlyConfigured(
            f"REGISTRY_NEXT_SIGNING_KEY is named {signer.name!r} but REGISTRY_ORIGIN is "
            f"{origin!r}; the next log key is named after the origin too."
        )
    if signer.vkey == current.vkey:
        return None  # the rotation is complete: REGISTRY_SIGNING_KEY was moved to the new key
    return signer


_next_signers: dict[tuple[str, str, str], Signer | None] = {}


def registry_signers() -> list[Signer]:
    """The configured log signers: REGISTRY_SIGNING_KEY, then REGISTRY_NEXT_SIGNING_KEY."""
    first = registry_signer_configured()
    config = (settings.REGISTRY_NEXT_SIGNING_KEY, settings.REGISTRY_ORIGIN, first.vkey)
    if config not in _next_signers:
        _next_signers[config] = _load_next(config[0], config[1], first)
    following = _next_signers[config]
    return [first] if following is None else [first, following]


def log_key_rotations() -> list[tuple[int, bytes]]:
    """(seq, event) of every integrated `ledger.key_rotated` entry, in log order (a partial
    index on LedgerEntry keeps this cheap however long the log)."""
    rows = LedgerEntry.objects.filter(kind=ROTATION_KIND).order_by("seq")
    return [(seq, bytes(event)) for seq, event in rows.values_list("seq", "event")]


def log_key_first(rotations: list[tuple[int, bytes]] | None = None) -> str:
    """The verifier key the log was first signed with: REGISTRY_FIRST_VKEY, else the old key
    of the first rotation in the ledger, else the configured signing key."""
    if settings.REGISTRY_FIRST_VKEY:
        return settings.REGISTRY_FIRST_VKEY
    rotations = log_key_rotations() if rotations is None else rotations
    if rotations:
        return str(rotation_from_event(rotations[0][1]).get("old_vkey", ""))
    return registry_signer_configured().vkey


def log_key_history(first: str | None = None) -> KeyHistory:
    """The log's key history as the ledger records it, from `first` (default
    `log_key_first()`); KeyHistoryError if an announcement does not follow."""
    rotations = log_key_rotations()
    history = KeyHistory(first or log_key_first(rotations), origin=settings.REGISTRY_ORIGIN)
    for seq, event in rotations:
        history.follow(seq, rotation_from_event(event))
    return history


def log_key_for_note(note: object) -> VerifierKey:
    """The key that must have signed this log's checkpoint `note`: the key current at its
    size. For a note that does not parse, or a history that does not verify, the current
    signer's key (the verification that follows then fails with the reason)."""
    try:
        size = Checkpoint.parse(Note.parse(note).text).size  # type: ignore[arg-type]
        return log_key_history().key_at(size)
    except NoteError:
        return registry_signer().verifier


def log_signer_for(key: VerifierKey) -> Signer | None:
    """The configured signer of `key`, if this process holds it."""
    return next((s for s in registry_signers() if s.verifier == key), None)


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
