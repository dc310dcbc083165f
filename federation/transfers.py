"""Cross-registry transfers on the wire: the exporter's package, the importer's checks, the
signed receipt that settles an export (docs/federation.md, "Cross-registry certificate transfer").

A package is one *hop*: the exporting registry's anchored checkpoint (with its witnesses'
cosignatures) and entries of its log, each with an inclusion proof in that checkpoint:
the `certificate.exported` entry and every earlier entry about the exported units there
(issuance, splits, transfers). Units that had been imported before carry the hops of the
registries they came through (`prior`), as the exporter stored them.

The importer authenticates the request (a signed peer request from a `partner` peer),
verifies the checkpoint with the sender's key and a quorum of witnesses it trusts itself
(FEDERATION_IMPORT_QUORUM), every inclusion proof, and, if it mirrors the sender, that
the export entry is the one its verified mirror holds. Only then does the certificates
app decide (`certificates.crossregistry.certificate_import`). The answer carries a receipt
the importer signs with its registry key, which the exporter verifies before it settles.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from certificates import events as certificate_events
from certificates.crossregistry import (
    VerifiedExport,
    certificate_export_delivery_claim,
    certificate_export_delivery_failed,
    certificate_export_delivery_release,
    certificate_export_seq_record,
    certificate_export_settle,
    certificate_import,
)
from certificates.models import CertificateExport, CertificateImport
from federation import client
from federation.anchoring import backoff_seconds
from federation.client import Limits, PeerUnreachable
from federation.errors import (
    TransferPackageInvalid,
    TransferPackageTooLarge,
    TransferPeerNotPartner,
)
from federation.models import Anchor, MirrorHead, Peer
from federation.peer_requests import sign_request
from federation.selectors import mirror_events
from ledger.keys import log_key_for_note, registry_signer, registry_witness
from ledger.verify.note import NoteError, VerifierKey, verify_checkpoint, verify_note
from ledger.verify.rfc9162 import ProofError, leaf_hash, verify_inclusion
from registry.errors import JsonTooDeep
from registry.jsonlimits import json_loads_limited

TRANSFERS_PATH = "/api/v1/federation/transfers/"
RECEIPT_CONTEXT = "gridproof-transfer-receipt/v1"
PACKAGE_VERSION = 1
MAX_HOP_ENTRIES = 500
MAX_HOPS = 16
MAX_PACKAGE_BYTES = 8 * 1024 * 1024
RESPONSE_MAX_BYTES = 256 * 1024
SEQ_MAX = 2**63 - 1  # a ledger sequence number, as the bigint columns that keep it hold


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json(data: bytes) -> Any:
    """Strict JSON, nested at most API_JSON_MAX_DEPTH levels, with no NUL in any text.

    The import keeps the export's data and the hops as they came (CertificateImport's JSON
    columns), and PostgreSQL stores neither NaN or Infinity nor a NUL character there: a
    package holding one is refused here rather than failing (a 500) when it is stored.
    Raises ValueError, or JsonTooDeep past the depth limit.
    """
    value = json_loads_limited(data, parse_constant=_refuse_constant)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and "\x00" in item:
            raise ValueError("a text holds a NUL character")
    return value


def _seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SEQ_MAX


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise TransferPackageInvalid(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TransferPackageInvalid(f"{what} is not valid base64") from None


# ---------------------------------------------------------------- exporter: the package


def export_entry_seq(export: CertificateExport) -> int | None:
    """The sequence number of the export's `certificate.exported` entry, once integrated."""
    if export.export_seq is not None:
        return export.export_seq
    from ledger.models import LedgerEntry

    seq = (
        LedgerEntry.objects.filter(
            kind=certificate_events.EXPORTED,
            subject_rows__key=f"{CertificateExport.ledger_subject_type}:{export.pk}",
        )
        .values_list("seq", flat=True)
        .first()
    )
    if seq is not None:
        certificate_export_seq_record(export_id=export.pk, seq=seq)
        export.export_seq = seq
    return seq


def _anchor_covering(seq: int) -> Anchor | None:
    return (
        Anchor.objects.filter(anchored_at__isnull=False, size__gt=seq)
        .prefetch_related("cosignatures__witness")
        .order_by("-size")
        .first()
    )


def export_package_build(export: CertificateExport) -> dict[str, Any] | None:
    """The package for an export, or None until an anchored checkpoint covers its entry."""
    from certificates.selectors import _history_keys, bundle_ancestry, ledger_history
    from federation.selectors import anchor_note

    seq = export_entry_seq(export)
    if seq is None:
        return None
    anchor = _anchor_covering(seq)
    if anchor is None:
        return None
    chain = bundle_ancestry(bundle_id=export.bundle_id)
    keys = [*_history_keys(chain), f"{CertificateExport.ledger_subject_type}:{export.pk}"]
    steps, _note, size, _pending = ledger_history(keys=keys, at_size=anchor.size)
    if size != anchor.size:
        return None
    entries = [
        {"seq": step.seq, "event_b64": step.event_b64, "proof": step.proof}
        for step in steps[-MAX_HOP_ENTRIES:]
    ]
    if not any(entry["seq"] == seq for entry in entries):
        return None
    root = chain[0]
    received = CertificateImport.objects.filter(bundle_id=root).first()
    prior = list(received.provenance) if received is not None else []
    return {
        "version": PACKAGE_VERSION,
        "export_seq": seq,
        "hop": {
            "origin": settings.REGISTRY_ORIGIN,
            "checkpoint": anchor_note(anchor),
            "entries": entries,
        },
        "prior": prior[: MAX_HOPS - 1],
    }


# ---------------------------------------------------------------- importer: the checks


@dataclass(frozen=True)
class _Hop:
    origin: str
    checkpoint: str
    size: int
    entries: dict[int, bytes]
    proofs: dict[int, list[str]]
    cosigners: list[str]


def _witness_keys(sender: Peer) -> list[VerifierKey]:
    """Witnesses whose cosignatures we count: ourselves and our other active peers."""
    keys = [registry_witness().cosignature_verifier]
    others = Peer.objects.filter(status=Peer.Status.ACTIVE).exclude(pk=sender.pk)
    for vkey in others.exclude(witness_vkey="").values_list("witness_vkey", flat=True):
        try:
            keys.append(VerifierKey.parse(vkey))
        except NoteError:
            continue
    return keys


def _verify_hop(hop: Any, log_key: VerifierKey, witnesses: list[VerifierKey], quorum: int) -> _Hop:
    if not isinstance(hop, dict):
        raise TransferPackageInvalid("a hop must be an object")
    note, entries = hop.get("checkpoint"), hop.get("entries")
    if not isinstance(note, str) or not isinstance(entries, list) or not entries:
        raise TransferPackageInvalid("a hop needs a checkpoint and a non-empty list of entries")
    if len(entries) > MAX_HOP_ENTRIES:
        raise TransferPackageInvalid(f"a hop holds at most {MAX_HOP_ENTRIES} entries")
    try:
        checkpoint, cosigners = verify_checkpoint(note, log_key, witnesses, quorum)
    except NoteError as exc:
        raise TransferPackageInvalid(f"checkpoint of {log_key.name}: {exc}") from None
    verified: dict[int, bytes] = {}
    proofs: dict[int, list[str]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not _seq(entry.get("seq")):
            raise TransferPackageInvalid(f"an entry needs an integer seq from 0 to {SEQ_MAX}")
        seq = entry["seq"]
        event = _unb64(entry.get("event_b64"), f"entry {seq}")
        proof_items = entry.get("proof")
        if not isinstance(proof_items, list):
            raise TransferPackageInvalid(f"entry {seq} needs an inclusion proof")
        proof = [_unb64(item, f"proof of entry {seq}") for item in proof_items]
        try:
            verify_inclusion(leaf_hash(event), seq, checkpoint.size, proof, checkpoint.root)
        except ProofError as exc:
            raise TransferPackageInvalid(
                f"entry {seq} is not in {log_key.name}'s checkpoint: {exc}"
            ) from None
        verified[seq], proofs[seq] = event, proof_items
    return _Hop(log_key.name, note, checkpoint.size, verified, proofs, cosigners)


def _hop_record(hop: _Hop, verified: bool) -> dict[str, Any]:
    return {
        "origin": hop.origin,
        "checkpoint": hop.checkpoint,
        "verified": verified,
        "cosigners": hop.cosigners,
        "entries": [
            {"seq": seq, "event_b64": _b64(event), "proof": hop.proofs[seq]}
            for seq, event in sorted(hop.entries.items())
        ],
    }


def _prior_hops(prior: Any) -> list[dict[str, Any]]:
    """Earlier hops, re-verified where we know the registry's key; marked unverified if not.

    Their witnesses were checked by the registry that imported them; here each hop's log
    signature and inclusion proofs are checked again.
    """
    if not isinstance(prior, list) or len(prior) >= MAX_HOPS:
        raise TransferPackageInvalid(f"prior must be a list of at most {MAX_HOPS - 1} hops")
    records = []
    for hop in prior:
        if not isinstance(hop, dict) or not isinstance(hop.get("origin"), str):
            raise TransferPackageInvalid("a prior hop must be an object with an origin")
        origin = hop["origin"]
        if origin == settings.REGISTRY_ORIGIN:
            key = log_key_for_note(hop.get("checkpoint"))  # our key at that size (rotation)
        else:
            known = Peer.objects.filter(origin=origin).exclude(status=Peer.Status.FLAGGED).first()
            if known is None:
                records.append({**hop, "verified": False})
                continue
            try:
                key = VerifierKey.parse(known.log_vkey)
            except NoteError as exc:
                raise TransferPackageInvalid(f"our key of {origin} is unusable: {exc}") from None
        records.append(_hop_record(_verify_hop(hop, key, [], 0), True))
    return records


def _check_mirror(peer: Peer, seq: int, event: bytes) -> None:
    """If we mirror the sender that far, its export entry must be the one we verified."""
    if not peer.is_mirror:
        return
    head = MirrorHead.objects.filter(peer=peer).first()
    if head is None or head.size <= seq:
        return
    mirrored = mirror_events(peer_id=peer.pk, ranges=[(seq, seq + 1)]).get(seq)
    if mirrored is not None and mirrored != event:
        raise TransferPackageInvalid(
            f"entry {seq} differs from our verified mirror of {peer.origin}; nothing imported"
        )


def transfer_package_verify(peer: Peer, body: bytes) -> VerifiedExport:
    """Check a package from `peer` (already authenticated); raise TransferPackageInvalid."""
    if not peer.is_partner:
        raise TransferPeerNotPartner(origin=peer.origin)
    if len(body) > MAX_PACKAGE_BYTES:
        raise TransferPackageTooLarge(size=len(body), limit=MAX_PACKAGE_BYTES)
    try:
        package = _json(body)  # JsonTooDeep (400) past API_JSON_MAX_DEPTH levels
    except ValueError as exc:
        raise TransferPackageInvalid(f"the package is not JSON we can store: {exc}") from None
    if not isinstance(package, dict) or package.get("version") != PACKAGE_VERSION:
        raise TransferPackageInvalid(f"expected a version {PACKAGE_VERSION} package object")
    seq = package.get("export_seq")
    hop = package.get("hop")
    if not _seq(seq) or not isinstance(hop, dict):
        raise TransferPackageInvalid(f"a package needs export_seq (0 to {SEQ_MAX}) and hop")
    if hop.get("origin") != peer.origin:
        raise TransferPackageInvalid(
            f"the hop is from {hop.get('origin')!r}, the request from {peer.origin!r}"
        )
    quorum = settings.FEDERATION_IMPORT_QUORUM
    verified = _verify_hop(hop, VerifierKey.parse(peer.log_vkey), _witness_keys(peer), quorum)
    event_bytes = verified.entries.get(seq)
    if event_bytes is None:
        raise TransferPackageInvalid(f"the hop does not include entry {seq}")
    try:
        event = _json(event_bytes)
        kind, data = event["type"], event["data"]
    except (ValueError, KeyError, TypeError, JsonTooDeep):
        raise TransferPackageInvalid(f"entry {seq} is not a ledger event we can store") from None
    if kind != certificate_events.EXPORTED or not isinstance(data, dict):
        raise TransferPackageInvalid(f"entry {seq} is a {kind!r} event, not an export")
    _check_mirror(peer, seq, event_bytes)
    provenance = [_hop_record(verified, True), *_prior_hops(package.get("prior", []))]
    return VerifiedExport(
        origin=peer.origin,
        seq=seq,
        leaf_hash=leaf_hash(event_bytes),
        data=data,
        checkpoint=verified.checkpoint,
        provenance=provenance,
    )


def receipt_text(received: CertificateImport) -> str:
    bundle = received.bundle_id or "-"
    account = received.account.number if received.account_id else "-"
    return (
        f"{RECEIPT_CONTEXT}\nfrom {settings.REGISTRY_ORIGIN}\nto {received.origin}\n"
        f"export {received.export_seq} {received.export_leaf_hash}\n"
        f"outcome {received.status}\nimport {received.public_id}\n"
        f"bundle {bundle}\naccount {account}\nreason {received.reason or '-'}\n"
    )


def receipt_sign(received: CertificateImport) -> str:
    return registry_signer().sign_note(receipt_text(received))


def transfer_receive(peer: Peer, body: bytes) -> tuple[CertificateImport, bool]:
    """Verify and import (or refuse) a package; (the import, whether it is new).

    An export received before is answered with its first outcome, never imported again.
    """
    from certificates import errors as certificate_errors

    verified = transfer_package_verify(peer, body)
    try:
        return certificate_import(verified=verified, sign_receipt=receipt_sign), True
    except certificate_errors.ExportAlreadyImported:
        return CertificateImport.objects.get(origin=peer.origin, export_seq=verified.seq), False


# ---------------------------------------------------------------- exporter: delivery


class ReceiptInvalid(Exception):
    """The destination's answer carries no receipt we can verify for this export."""


@dataclass(frozen=True)
class Receipt:
    outcome: str
    reason: str
    reference: dict[str, Any]
    note: str


def receipt_parse(note: str, peer: Peer, export: CertificateExport) -> Receipt:
    try:
        text = verify_note(note, [VerifierKey.parse(peer.log_vkey)]).text
    except NoteError as exc:
        raise ReceiptInvalid(f"receipt signature: {exc}") from None
    lines = text.rstrip("\n").split("\n")
    fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    leaf = _entry_leaf_hex(export)
    expected = {
        "from": peer.origin,
        "to": settings.REGISTRY_ORIGIN,
        "export": f"{export.export_seq} {leaf}",
    }
    if lines[0] != RECEIPT_CONTEXT or any(fields.get(k) != v for k, v in expected.items()):
        raise ReceiptInvalid(f"the receipt is not about export entry {export.export_seq} to us")
    outcome = fields.get("outcome")
    if outcome not in (CertificateImport.Status.IMPORTED, CertificateImport.Status.REJECTED):
        raise ReceiptInvalid(f"unknown outcome {outcome!r}")
    bundle = fields.get("bundle", "-")
    reference = {"import_id": fields.get("import", ""), "account": fields.get("account", "-")}
    if bundle.isdigit():
        reference |= {
            "bundle_id": int(bundle),
            "history_url": client.join(peer.base_url, f"/api/v1/bundles/{bundle}/history/"),
        }
    reason = fields.get("reason", "-")
    return Receipt(outcome, "" if reason == "-" else reason, reference, note)


def _entry_leaf_hex(export: CertificateExport) -> str:
    from ledger.models import LedgerEntry

    leaf = (
        LedgerEntry.objects.filter(seq=export.export_seq)
        .values_list("leaf_hash", flat=True)
        .first()
    )
    return bytes(leaf).hex() if leaf is not None else ""


def _receipt_in(response: client.PeerResponse) -> str | None:
    try:
        body = response.json()
    except client.PeerResponseInvalid:
        return None
    if not isinstance(body, dict):
        return None
    receipt = body.get("receipt") or (body.get("extra") or {}).get("receipt")
    return receipt if isinstance(receipt, str) else None


def _record_failure(export_id: int, error: str) -> None:
    certificate_export_delivery_failed(
        export_id=export_id, error=error, backoff_seconds=backoff_seconds
    )


def _claim(export_id: int, due_only: bool) -> bool:
    """Mark a pending export as being delivered for a bounded time (its next attempt moves
    past the call's deadline), so that beat's next round does not send it again meanwhile."""
    until = timezone.now() + dt.timedelta(seconds=2 * settings.FEDERATION_HTTP_TIMEOUT_SECONDS + 5)
    return certificate_export_delivery_claim(export_id=export_id, until=until, due_only=due_only)


def export_deliver(*, export_id: int, due_only: bool = False) -> str:
    """One delivery attempt: send the package, verify the receipt, settle. No transaction
    is open during the call; a failure backs off (FEDERATION_RETRY_*). `due_only` (the
    periodic task) skips an export that is backing off or being delivered."""
    export = CertificateExport.objects.select_related("destination").get(pk=export_id)
    if export.status != CertificateExport.Status.PENDING:
        return export.status
    if not _claim(export.pk, due_only):
        return "not due"
    package = export_package_build(export)
    if package is None:
        certificate_export_delivery_release(export_id=export.pk)
        return "waiting for an anchored checkpoint"
    peer = export.destination
    if not peer.is_active:
        _record_failure(export.pk, f"{peer.origin} is {peer.status}")
        return "peer not active"
    body = json.dumps(package, separators=(",", ":")).encode()
    headers = sign_request(
        registry_signer(),
        to=peer.origin,
        method="POST",
        path=TRANSFERS_PATH,
        body=body,
        time=int(time.time()),
    )
    limits = Limits(timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS, max_bytes=RESPONSE_MAX_BYTES)
    try:
        response = client.post(
            client.join(peer.base_url, TRANSFERS_PATH),
            body,
            limits=limits,
            content_type="application/json",
            headers=headers,
        )
    except PeerUnreachable as exc:
        _record_failure(export.pk, str(exc))
        return "unreachable"
    note = _receipt_in(response)
    if note is None:
        _record_failure(export.pk, f"HTTP {response.status}: {response.body[:500]!r}")
        return f"refused ({response.status})"
    try:
        receipt = receipt_parse(note, peer, export)
    except ReceiptInvalid as exc:
        _record_failure(export.pk, str(exc))
        return "bad receipt"
    certificate_export_settle(
        export_id=export.pk,
        outcome=receipt.outcome,
        receipt=receipt.note,
        reason=receipt.reason,
        reference=receipt.reference,
    )
    return receipt.outcome


def export_due_ids(limit: int = 100) -> list[int]:
    now = timezone.now()
    return list(
        CertificateExport.objects.filter(status=CertificateExport.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )


def export_deliver_due(limit: int = 100) -> dict[int, str]:
    """Try every pending export that is due (the beat task, and on demand)."""
    return {pk: export_deliver(export_id=pk, due_only=True) for pk in export_due_ids(limit)}
