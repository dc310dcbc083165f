"""Peer governance and misbehaviour evidence: one function per use case, one transaction.

The issuing body registers, changes, suspends and reinstates peers; each change is one
ledger event (`peer.registered`, `peer.updated`, `peer.suspended`, `peer.reinstated`).
Evidence is recorded by the witness, anchoring and replication jobs as they meet it;
evidence that proves misbehaviour flags the peer, ledgered as `peer.flagged`.

Operational state (what a witness cosigned, anchoring progress, mirrored entries, retry
state, evidence that does not flag) is NOT ledgered: each anchored checkpoint would
otherwise add an entry, hence a new checkpoint to anchor, forever; two registries
mirroring each other would feed each other entries; and anyone replaying a peer's old
checkpoints could grow our log. That state is either signed data of its own
(checkpoints, cosignatures, a peer's entries) or bookkeeping.
"""

import datetime as dt
import hashlib
import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import NotIssuingBody
from accounts.models import User
from accounts.permissions import user_is_issuing_body
from federation import errors, locks
from federation.models import Evidence, MirrorHead, Peer, PeerRequestNonce, WitnessProgress
from federation.peer_requests import PeerRequestError, read_headers, verify_request
from federation.protocol import LOG_VKEY, WITNESS_VKEY
from ledger.services import ledger_append
from ledger.verify.note import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    NoteError,
    VerifierKey,
    valid_key_name,
)

SYSTEM_ACTOR = "system:federation"
PEER_FIELDS = ("name", "base_url", "witness_url", "log_vkey", "witness_vkey", "roles")


def _require_issuing_body(actor: User) -> None:
    if not user_is_issuing_body(actor):
        raise NotIssuingBody()


def _check_url(value: str, field: str, *, required: bool) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise errors.PeerInvalid(f"{field} is required.", fields={field: ["required"]})
        return ""
    parts = urllib.parse.urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or (parts.fragment)
    ):
        raise errors.PeerInvalid(
            f"{field} must be an http(s) URL without query or fragment.", fields={field: [value]}
        )
    return value.rstrip("/")


def _key_parse(field: str, value: str, shape: str) -> VerifierKey:
    """A verifier key; one of the documented shape whose key id is not its checksum is
    `peer_key_id_mismatch` (what no schema can state), anything else `peer_invalid`."""
    try:
        return VerifierKey.parse(value)
    except NoteError as exc:
        error = errors.PeerKeyIdMismatch if re.match(shape, value) else errors.PeerInvalid
        raise error(f"{field}: {exc}", fields={field: [str(exc)]}) from None


def log_key_parse(origin: str, log_vkey: str) -> VerifierKey:
    """The peer's checkpoint key: Ed25519, named after its origin (as checkpoints require)."""
    key = _key_parse("log_vkey", log_vkey, LOG_VKEY)
    if key.key_type != KEY_TYPE_ED25519:
        raise errors.PeerInvalid("log_vkey must be an Ed25519 note key (type 0x01).")
    if key.name != origin:
        raise errors.PeerKeyNameMismatch(
            f"log_vkey is named {key.name!r}; a checkpoint key is named after its origin "
            f"{origin!r}.",
            fields={"log_vkey": ["name does not match origin"]},
        )
    return key


def witness_key_parse(witness_vkey: str, log_key: VerifierKey) -> VerifierKey:
    """The peer's cosignature/v1 key; by default the log key's public key as type 0x04."""
    if not witness_vkey.strip():
        return VerifierKey.from_public_key(
            log_key.name, KEY_TYPE_COSIGNATURE_V1, log_key.public_key
        )
    key = _key_parse("witness_vkey", witness_vkey, WITNESS_VKEY)
    if key.key_type != KEY_TYPE_COSIGNATURE_V1:
        raise errors.PeerInvalid("witness_vkey must be a cosignature/v1 key (type 0x04).")
    return key


def _check_roles(roles: Iterable[str]) -> dict[str, bool]:
    roles = set(roles)
    known = set(Peer.Role.values)
    if not roles <= known:
        raise errors.PeerInvalid(
            "Unknown role; use: " + ", ".join(sorted(known)), fields={"roles": sorted(roles)}
        )
    return {f"is_{role}": role in roles for role in known}


def peer_validate(
    *,
    origin: str,
    base_url: str,
    log_vkey: str,
    roles: Iterable[str],
    witness_vkey: str = "",
    witness_url: str = "",
    name: str = "",
    peer_id: int | None = None,
) -> dict[str, Any]:
    """The peer's fields in canonical form, or PeerInvalid naming what is wrong.

    Used by the services and by the admin form (so it can show the error on the form).
    """
    origin = origin.strip()
    if not valid_key_name(origin) or len(origin) > 255:
        raise errors.PeerInvalid(
            "origin must be a note key name: no spaces, no '+'.", fields={"origin": [origin]}
        )
    if origin == settings.REGISTRY_ORIGIN:
        raise errors.PeerIsSelf("That is this registry's own origin.")
    log_key = log_key_parse(origin, log_vkey)
    witness_key = witness_key_parse(witness_vkey, log_key)
    if witness_key.name == settings.REGISTRY_ORIGIN:
        raise errors.PeerIsSelf("The witness key is named after this registry.")
    # Cosignatures count once per witness name, so two peers must not share one.
    others = Peer.objects.exclude(pk=peer_id).values_list("witness_vkey", flat=True)
    if any(VerifierKey.parse(other).name == witness_key.name for other in others):
        raise errors.PeerWitnessNameTaken(
            f"Another peer's witness key is named {witness_key.name!r}."
        )
    return {
        "origin": origin,
        "name": name.strip(),
        "base_url": _check_url(base_url, "base_url", required=True),
        "witness_url": _check_url(witness_url, "witness_url", required=False),
        "log_vkey": log_key.encode(),
        "witness_vkey": witness_key.encode(),
        **_check_roles(roles),
    }


def _peer_data(peer: Peer) -> dict[str, Any]:
    return {
        "peer_id": peer.pk,
        "origin": peer.origin,
        "name": peer.name,
        "base_url": peer.base_url,
        "witness_url": peer.witness_url,
        "log_vkey": peer.log_vkey,
        "witness_vkey": peer.witness_vkey,
        "roles": peer.roles,
    }


@transaction.atomic
def peer_register(
    *,
    actor: User,
    origin: str,
    base_url: str,
    log_vkey: str,
    roles: Iterable[str],
    witness_vkey: str = "",
    witness_url: str = "",
    name: str = "",
) -> Peer:
    """The issuing body registers a peer registry with its keys and roles."""
    _require_issuing_body(actor)
    if Peer.objects.filter(origin=origin.strip()).exists():
        raise errors.PeerAlreadyRegistered(origin=origin)
    fields = peer_validate(
        origin=origin,
        base_url=base_url,
        log_vkey=log_vkey,
        roles=roles,
        witness_vkey=witness_vkey,
        witness_url=witness_url,
        name=name,
    )
    try:
        with transaction.atomic():
            peer = Peer.objects.create(**fields)
    except IntegrityError:
        raise errors.PeerAlreadyRegistered(origin=origin) from None
    WitnessProgress.objects.create(peer=peer)
    MirrorHead.objects.create(peer=peer)
    ledger_append(kind="peer.registered", actor=actor, subject=peer, data=_peer_data(peer))
    return peer


@transaction.atomic
def peer_update(*, actor: User, peer_id: int, **changes: Any) -> Peer:
    """The issuing body changes a peer's name, URLs, keys or roles (not its origin)."""
    _require_issuing_body(actor)
    unknown = set(changes) - set(PEER_FIELDS)
    if unknown:
        raise errors.PeerInvalid(f"Cannot change: {', '.join(sorted(unknown))}.")
    peer = locks.peer_lock(peer_id)
    before = _peer_data(peer)
    current = {key: before[key] for key in PEER_FIELDS}
    if "log_vkey" in changes and "witness_vkey" not in changes:
        # A witness key derived from the old log key is derived from the new one again.
        derived = witness_key_parse("", VerifierKey.parse(peer.log_vkey)).encode()
        if peer.witness_vkey == derived:
            current["witness_vkey"] = ""
    fields = peer_validate(origin=peer.origin, peer_id=peer.pk, **(current | changes))
    for field, value in fields.items():
        setattr(peer, field, value)
    after = _peer_data(peer)
    changed = {key: value for key, value in after.items() if before[key] != value}
    if not changed:
        return peer
    peer.updated_at = timezone.now()
    peer.save(update_fields=[*_model_fields(changed), "updated_at"])
    ledger_append(
        kind="peer.updated",
        actor=actor,
        subject=peer,
        data={"peer_id": peer.pk, "origin": peer.origin, "changes": changed},
    )
    return peer


@transaction.atomic
def peer_log_key_follow(
    *, peer_id: int, old_vkey: str, new_vkey: str, announced_at: int, checkpoint_size: int
) -> Peer:
    """Store the log key a peer rotated to, once replication verified its announcement
    (federation/peer_keys.py); record peer.log_key_rotated. A no-op if the stored key is no
    longer `old_vkey` (another run got there first)."""
    peer = locks.peer_lock(peer_id)
    if peer.log_vkey != old_vkey or old_vkey == new_vkey:
        return peer
    log_key_parse(peer.origin, new_vkey)
    peer.log_vkey, peer.updated_at = new_vkey, timezone.now()
    peer.save(update_fields=["log_vkey", "updated_at"])
    ledger_append(
        kind="peer.log_key_rotated",
        actor="system:federation",
        subject=peer,
        data={
            "peer_id": peer.pk,
            "origin": peer.origin,
            "old_log_vkey": old_vkey,
            "log_vkey": new_vkey,
            "announced_at": announced_at,
            "checkpoint_size": checkpoint_size,
        },
    )
    return peer


def _model_fields(changed: dict[str, Any]) -> list[str]:
    fields = [key for key in changed if key != "roles"]
    if "roles" in changed:
        fields += [f"is_{role}" for role in Peer.Role.values]
    return fields


def _peer_set_status(
    *,
    actor: User | str,
    peer: Peer,
    allowed_from: set[str],
    to: str,
    kind: str,
    reason: str,
    extra: dict[str, Any] | None = None,
) -> Peer:
    if peer.status not in allowed_from:
        raise errors.PeerStatusConflict(
            f"The peer is {peer.status}; it cannot become {to}.", status=peer.status
        )
    peer.status = to
    peer.status_reason = reason
    peer.updated_at = timezone.now()
    peer.save(update_fields=["status", "status_reason", "updated_at"])
    ledger_append(
        kind=kind,
        actor=actor,
        subject=peer,
        data={"peer_id": peer.pk, "origin": peer.origin, "reason": reason, **(extra or {})},
    )
    return peer


@transaction.atomic
def peer_suspend(*, actor: User, peer_id: int, reason: str) -> Peer:
    """The issuing body stops all federation with a peer (witnessing, anchoring, mirroring)."""
    _require_issuing_body(actor)
    if not reason.strip():
        raise errors.PeerInvalid("A reason is required.", fields={"reason": ["required"]})
    return _peer_set_status(
        actor=actor,
        peer=locks.peer_lock(peer_id),
        allowed_from={Peer.Status.ACTIVE, Peer.Status.FLAGGED},
        to=Peer.Status.SUSPENDED,
        kind="peer.suspended",
        reason=reason,
    )


@transaction.atomic
def peer_reinstate(*, actor: User, peer_id: int, reason: str) -> Peer:
    """The issuing body lifts a suspension or a misbehaviour flag (the evidence stays)."""
    _require_issuing_body(actor)
    if not reason.strip():
        raise errors.PeerInvalid("A reason is required.", fields={"reason": ["required"]})
    return _peer_set_status(
        actor=actor,
        peer=locks.peer_lock(peer_id),
        allowed_from={Peer.Status.SUSPENDED, Peer.Status.FLAGGED},
        to=Peer.Status.ACTIVE,
        kind="peer.reinstated",
        reason=reason,
    )


def _evidence_digest(peer: Peer, kind: str, fields: dict[str, Any], payload: bytes) -> str:
    doc = json.dumps(
        {"origin": peer.origin, "kind": kind, **fields}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(doc.encode() + b"\n" + hashlib.sha256(payload).digest()).hexdigest()


@transaction.atomic
def evidence_record(
    *,
    peer_id: int,
    kind: str,
    detail: str,
    size: int | None = None,
    first_note: str = "",
    second_note: str = "",
    data: dict[str, Any] | None = None,
    payload: bytes = b"",
) -> tuple[Evidence, bool]:
    """Keep evidence about a peer once; when it proves misbehaviour, flag the peer.

    Returns (evidence, created); recording the same evidence again changes nothing.
    Flagging evidence (Evidence.FLAGGING: two signed checkpoints that cannot both be
    true, or entries that do not hash to a signed root) is ledgered as `peer.flagged`,
    once per peer until it is reinstated. Other kinds (a rollback, a witness holding
    another checkpoint of ours) are kept as rows only: anyone can replay a peer's old
    signed checkpoints, and an entry per replay would let strangers grow our log.
    """
    if kind not in Evidence.Kind.values:
        raise ValueError(f"unknown evidence kind {kind!r}")
    peer = locks.peer_lock(peer_id)
    data = data or {}
    payload = bytes(payload[: settings.FEDERATION_EVIDENCE_MAX_BYTES])
    fields = {"size": size, "first_note": first_note, "second_note": second_note, "data": data}
    digest = _evidence_digest(peer, kind, fields, payload)
    existing = Evidence.objects.filter(digest=digest).first()
    if existing is not None:
        return existing, False
    evidence = Evidence.objects.create(
        peer=peer, kind=kind, detail=detail, payload=payload, digest=digest, **fields
    )
    if kind in Evidence.FLAGGING and peer.status == Peer.Status.ACTIVE:
        _peer_set_status(
            actor=SYSTEM_ACTOR,
            peer=peer,
            allowed_from={Peer.Status.ACTIVE},
            to=Peer.Status.FLAGGED,
            kind="peer.flagged",
            reason=f"{evidence.get_kind_display()} (evidence #{evidence.pk})",
            extra={
                "evidence_id": evidence.pk,
                "evidence_kind": kind,
                "size": size,
                "digest": digest,
            },
        )
    return evidence, True


@transaction.atomic
def peer_request_authenticate(
    *, headers, method: str, path: str, body: bytes, now: dt.datetime | None = None
) -> Peer:
    """The active peer that signed this request; each nonce is accepted once.

    Raises PeerSignatureInvalid for anything else. Bookkeeping only: no ledger event.
    """
    now = now or timezone.now()
    try:
        origin = read_headers(headers)[0]
    except PeerRequestError as exc:
        raise errors.PeerSignatureInvalid(str(exc)) from None
    peer = Peer.objects.filter(origin=origin, status=Peer.Status.ACTIVE).first()
    if peer is None:
        raise errors.PeerSignatureInvalid(f"{origin!r} is not an active peer of this registry.")
    skew = settings.FEDERATION_PEER_REQUEST_MAX_SKEW_SECONDS
    try:
        signed = verify_request(
            VerifierKey.parse(peer.log_vkey),
            headers=headers,
            to=settings.REGISTRY_ORIGIN,
            method=method,
            path=path,
            body=body,
            now=int(now.timestamp()),
            max_skew=skew,
        )
    except PeerRequestError as exc:
        raise errors.PeerSignatureInvalid(str(exc)) from None
    PeerRequestNonce.objects.filter(
        peer=peer, signed_at__lt=now - dt.timedelta(seconds=2 * skew)
    ).delete()
    try:
        with transaction.atomic():
            PeerRequestNonce.objects.create(
                peer=peer,
                nonce=signed.nonce,
                signed_at=dt.datetime.fromtimestamp(signed.time, tz=dt.UTC),
            )
    except IntegrityError:
        raise errors.PeerSignatureInvalid("This request was already received (replay).") from None
    return peer
