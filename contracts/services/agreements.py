"""Contract lifecycle: draft, agreement by every party, amendment, termination, expiry.

Each service: one transaction, one ledger event naming the contract and its parties.
A party agrees through an admin or operator of its organisation, optionally with an
Ed25519 signature (by a key the organisation registered) over the agreement document:
the RFC 8785 bytes of `agreement_document()`, so the agreement is provable offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from accounts.models import Membership, Organisation, User
from accounts.permissions import user_can_act_for
from contracts import errors, events, locks
from contracts.kinds import KINDS
from contracts.kinds.base import MAX_SHARE_BP, Validated
from contracts.kinds.community import COMMUNITY_SHARING
from contracts.kinds.shares import PPA, PPA_SHAPED, SHARE_KINDS
from contracts.kinds.storage import STORAGE_BALANCING
from contracts.models import Agreement, Contract, ContractParty, OrganisationKey
from ledger.canonical import canonical_bytes
from ledger.services import ledger_append

DOCUMENT_TYPE = "gridproof.contract.agreement/v1"
MAX_YEARS = 30


def terms_sha256(terms: dict[str, Any]) -> str:
    try:
        return hashlib.sha256(canonical_bytes(terms)).hexdigest()
    except ValueError:  # rfc8785: a lone surrogate (TermsReader refuses it first)
        raise errors.InvalidTerms("Terms must be Unicode text without lone surrogates.") from None


def agreement_document(
    contract: Contract, *, version: int, action: str, terms: dict, end_at: dt.datetime
) -> bytes:
    """The bytes a party signs: RFC 8785 JSON of what it agrees to."""
    return canonical_bytes(
        {
            "type": DOCUMENT_TYPE,
            "contract_id": contract.pk,
            "kind": contract.kind,
            "version": version,
            "action": action,
            "terms": terms,
            "start_at": contract.start_at,
            "end_at": end_at,
            "parties": [
                {"organisation_id": org, "role": role}
                for org, role in contract.parties.order_by("pk").values_list(
                    "organisation_id", "role"
                )
            ],
        }
    )


def _pending(contract: Contract) -> tuple[int, str, dict, dt.datetime]:
    """(version, action, terms, end) of what the parties are asked to agree to now."""
    if contract.status == Contract.Status.DRAFT:
        return contract.version, Agreement.Action.ACTIVATE, contract.terms, contract.end_at
    if contract.status == Contract.Status.ACTIVE and contract.proposal:
        proposal = contract.proposal
        return (
            proposal["version"],
            proposal["action"],
            proposal["terms"],
            dt.datetime.fromisoformat(proposal["end_at"]),
        )
    raise errors.ContractStateConflict(
        "Nothing to agree to: the contract is not a draft and has no proposal.",
        status=contract.status,
    )


def contract_document(*, contract_id: int) -> bytes:
    """The document the parties are asked to sign now (for GET …/document/)."""
    contract = Contract.objects.filter(pk=contract_id).first()
    if contract is None:
        raise errors.ContractNotFound(contract_id=contract_id)
    version, action, terms, end_at = _pending(contract)
    return agreement_document(contract, version=version, action=action, terms=terms, end_at=end_at)


def _validate(kind: str, terms: Any) -> Validated:
    spec = KINDS.get(kind)
    if spec is None:
        raise errors.UnknownContractKind(kind=kind, kinds=sorted(KINDS))
    return spec.validate(terms)


def _check_window(start_at: Any, end_at: Any) -> None:
    for name, value in (("start_at", start_at), ("end_at", end_at)):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise errors.InvalidTerms(fields={name: ["a time with a time zone"]})
    if end_at <= start_at:
        raise errors.TermsUnmet(fields={"end_at": ["after start_at"]})
    if end_at - start_at > dt.timedelta(days=366 * MAX_YEARS):
        raise errors.TermsUnmet(fields={"end_at": [f"at most {MAX_YEARS} years"]})


def _check_overlap(
    *, kind: str, validated: Validated, start_at, end_at, exclude: int | None
) -> None:
    """Share contracts in force on one output must not claim more than 100% of it, nor
    share it with a shaped PPA (shaped PPAs on one output take in contract order); one
    storage balancing contract at a time balances a battery, one community sharing
    contract at a time shares a community's devices."""
    if kind == STORAGE_BALANCING:
        clash = (
            Contract.objects.filter(
                status=Contract.Status.ACTIVE,
                kind=STORAGE_BALANCING,
                device_id=validated.device_id,
                start_at__lt=end_at,
                end_at__gt=start_at,
            )
            .exclude(pk=exclude)
            .values_list("pk", flat=True)
            .first()
        )
        if clash is not None:
            raise errors.OverlappingClaims(scope="battery", contract_id=clash)
        return
    if kind == COMMUNITY_SHARING:
        clash = (
            Contract.objects.filter(
                status=Contract.Status.ACTIVE,
                kind=COMMUNITY_SHARING,
                terms__community_id=validated.terms["community_id"],
                start_at__lt=end_at,
                end_at__gt=start_at,
            )
            .exclude(pk=exclude)
            .values_list("pk", flat=True)
            .first()
        )
        if clash is not None:
            raise errors.OverlappingClaims(scope="community", contract_id=clash)
        return
    if kind not in SHARE_KINDS:
        return
    live = Contract.objects.filter(
        status=Contract.Status.ACTIVE,
        kind__in=SHARE_KINDS,
        start_at__lt=end_at,
        end_at__gt=start_at,
    ).exclude(pk=exclude)
    same_source = live.filter(source_account_id=validated.source_account_id)
    if validated.device_id is not None:
        same_source = same_source.filter(Q(device__isnull=True) | Q(device_id=validated.device_id))
    # A shape takes a volume, a share a part: never both of one output at once.
    shaped = same_source.filter(kind=PPA_SHAPED)
    if kind == PPA_SHAPED:
        shaped = same_source.exclude(kind=PPA_SHAPED)
    clash = shaped.values_list("pk", flat=True).first()
    if clash is not None:
        raise errors.OverlappingClaims(scope="shape", contract_id=clash)
    if kind == PPA_SHAPED:
        return
    checks = [("source_account", same_source)]
    if kind == PPA:
        checks.append(("device", live.filter(kind=PPA, device_id=validated.device_id)))
    for scope, rows in checks:
        taken = rows.aggregate(total=Sum("share_bp"))["total"] or 0
        if taken + validated.share_bp > MAX_SHARE_BP:
            raise errors.OverlappingClaims(
                scope=scope, taken_bp=taken, requested_bp=validated.share_bp
            )


def _require_party_member(actor: User, contract: Contract, organisation_id: int | None) -> int:
    """The party organisation the actor acts for here (admin or operator)."""
    party_ids = events.party_ids(contract)
    candidates = [organisation_id] if organisation_id is not None else party_ids
    allowed = [
        org.pk
        for org in Organisation.objects.filter(pk__in=[c for c in candidates if c in party_ids])
        if user_can_act_for(actor, org, role=Membership.Role.OPERATOR)
    ]
    if not allowed:
        raise errors.NotContractParty(contract_id=contract.pk)
    if len(allowed) > 1:
        raise errors.InvalidTerms(
            "You act for several parties: say which.", fields={"organisation": ["required"]}
        )
    return allowed[0]


@transaction.atomic
def contract_create(
    *,
    actor: User,
    kind: str,
    terms: Any,
    start_at: dt.datetime,
    end_at: dt.datetime,
    on_failure: str = Contract.OnFailure.PARK,
    max_attempts: int = 3,
) -> Contract:
    """Draft a contract; a member (admin/operator) of one of its parties drafts it."""
    validated = _validate(kind, terms)
    _check_window(start_at, end_at)
    if on_failure not in Contract.OnFailure.values:
        raise errors.InvalidTerms(fields={"on_failure": sorted(Contract.OnFailure.values)})
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise errors.InvalidTerms(fields={"max_attempts": ["1 to 20"]})
    if not 1 <= max_attempts <= 20:
        raise errors.InvalidTerms(fields={"max_attempts": ["1 to 20"]})
    party_orgs = Organisation.objects.filter(pk__in=[org for org, _role in validated.parties])
    if not any(user_can_act_for(actor, org) for org in party_orgs):
        raise errors.NotContractParty("Only a member of a party may draft a contract.")
    _check_overlap(kind=kind, validated=validated, start_at=start_at, end_at=end_at, exclude=None)
    contract = Contract.objects.create(
        kind=kind,
        terms=validated.terms,
        terms_sha256=terms_sha256(validated.terms),
        start_at=start_at,
        end_at=end_at,
        on_failure=on_failure,
        max_attempts=max_attempts,
        device_id=validated.device_id,
        source_account_id=validated.source_account_id,
        share_bp=validated.share_bp,
        created_by=actor,
        created_at=timezone.now(),
    )
    ContractParty.objects.bulk_create(
        [
            ContractParty(contract=contract, organisation_id=org, role=role)
            for org, role in validated.parties
        ]
    )
    ledger_append(
        kind=events.CREATED,
        actor=actor,
        subject=events.subjects(contract),
        data=events.contract_data(contract),
    )
    return contract


def _verify_signature(
    *, organisation_id: int, key_id: int | None, signature: str, document: bytes
) -> OrganisationKey | None:
    if not key_id and not signature:
        return None
    if not key_id or not signature:
        raise errors.BadSignature("A signature needs its key, and a key its signature.")
    key = OrganisationKey.objects.filter(
        pk=key_id, organisation_id=organisation_id, revoked_at__isnull=True
    ).first()
    if key is None:
        raise errors.KeyNotFound(key_id=key_id)
    try:
        VerifyKey(bytes.fromhex(key.public_key)).verify(document, bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        raise errors.BadSignature(key_id=key_id) from None
    return key


@transaction.atomic
def contract_agree(
    *,
    actor: User,
    contract_id: int,
    organisation_id: int | None = None,
    key_id: int | None = None,
    signature: str = "",
) -> Contract:
    """A party agrees to what is pending (the draft, an amendment or a termination); when
    the last party agrees, it takes effect in the same transaction."""
    found = Contract.objects.filter(pk=contract_id).values("source_account_id", "device_id")
    if not found:
        raise errors.ContractNotFound(contract_id=contract_id)
    locks.claim_targets_lock(**found[0])
    contract = locks.contract_lock(contract_id)
    version, action, terms, end_at = _pending(contract)
    org_id = _require_party_member(actor, contract, organisation_id)
    if Agreement.objects.filter(
        contract=contract, version=version, organisation_id=org_id
    ).exists():
        raise errors.AlreadyAgreed(contract_id=contract.pk, version=version, organisation_id=org_id)
    document = agreement_document(
        contract, version=version, action=action, terms=terms, end_at=end_at
    )
    key = _verify_signature(
        organisation_id=org_id, key_id=key_id, signature=signature, document=document
    )
    now = timezone.now()
    agreement = Agreement.objects.create(
        contract=contract,
        version=version,
        action=action,
        organisation_id=org_id,
        agreed_by=actor,
        agreed_at=now,
        document_sha256=hashlib.sha256(document).hexdigest(),
        key=key,
        signature=signature.lower() if key else "",
    )
    agreed = set(
        Agreement.objects.filter(contract=contract, version=version).values_list(
            "organisation_id", flat=True
        )
    )
    kind = events.AGREED
    if agreed >= set(events.party_ids(contract)):
        kind = _take_effect(contract, action=action, terms=terms, end_at=end_at, now=now)
    ledger_append(
        kind=kind,
        actor=actor,
        subject=events.subjects(contract, agreement),
        data=events.contract_data(contract) | {"agreement": events.agreement_data(agreement)},
    )
    return contract


def _take_effect(contract: Contract, *, action: str, terms: dict, end_at, now) -> str:
    fields = ["status", "version", "terms", "terms_sha256", "end_at", "proposal", "share_bp"]
    if action == Agreement.Action.TERMINATE:
        contract.status = Contract.Status.TERMINATED
        contract.ended_at = now
        contract.version += 1
        contract.proposal = None
        contract.save(update_fields=[*fields, "ended_at"])
        return events.TERMINATED
    validated = _validate(contract.kind, terms)
    _check_overlap(
        kind=contract.kind,
        validated=validated,
        start_at=contract.start_at,
        end_at=end_at,
        exclude=contract.pk,
    )
    contract.terms = validated.terms
    contract.terms_sha256 = terms_sha256(validated.terms)
    contract.share_bp = validated.share_bp
    contract.end_at = end_at
    contract.proposal = None
    if action == Agreement.Action.ACTIVATE:
        contract.status = Contract.Status.ACTIVE
        contract.activated_at = now
        contract.save(update_fields=[*fields, "activated_at"])
        return events.ACTIVATED
    contract.version += 1
    contract.save(update_fields=fields)
    return events.AMENDED


def _propose(actor: User, contract_id: int, proposal: dict[str, Any], kind: str) -> Contract:
    contract = locks.contract_lock(contract_id)
    _require_party_member(actor, contract, None)
    if contract.status != Contract.Status.ACTIVE:
        raise errors.ContractStateConflict(status=contract.status)
    if contract.proposal:
        raise errors.ContractStateConflict(
            "A proposal is already waiting for agreement.", proposal=contract.proposal["action"]
        )
    contract.proposal = proposal | {"version": contract.version + 1}
    contract.save(update_fields=["proposal"])
    ledger_append(
        kind=kind,
        actor=actor,
        subject=events.subjects(contract),
        data=events.contract_data(contract) | {"proposal": contract.proposal},
    )
    return contract


@transaction.atomic
def contract_amend(
    *, actor: User, contract_id: int, terms: Any, end_at: dt.datetime | None = None
) -> Contract:
    """Propose new terms (same kind, same parties); they apply once every party agreed."""
    contract = locks.contract_lock(contract_id)
    validated = _validate(contract.kind, terms)
    end_at = end_at or contract.end_at
    _check_window(contract.start_at, end_at)
    if sorted(validated.parties) != sorted(contract.parties.values_list("organisation_id", "role")):
        raise errors.InvalidTerms("An amendment keeps the parties.", fields={"terms": ["parties"]})
    if contract.kind == STORAGE_BALANCING:
        kept = ("device_id", "charge_account")
        changed = [name for name in kept if validated.terms[name] != contract.terms[name]]
        if changed:
            raise errors.InvalidTerms(
                "An amendment keeps the battery and the charge account.",
                fields={name: ["cannot change"] for name in changed},
            )
    proposal = {
        "action": Agreement.Action.AMEND.value,
        "terms": validated.terms,
        "terms_sha256": terms_sha256(validated.terms),
        "end_at": end_at.astimezone(dt.UTC).isoformat(),
    }
    return _propose(actor, contract_id, proposal, events.AMENDMENT_PROPOSED)


@transaction.atomic
def contract_terminate(*, actor: User, contract_id: int) -> Contract:
    """End a contract: a draft at once (nobody is bound yet), an active one once every
    party agreed to the termination."""
    contract = locks.contract_lock(contract_id)
    if contract.status == Contract.Status.DRAFT:
        _require_party_member(actor, contract, None)
        contract.status = Contract.Status.TERMINATED
        contract.ended_at = timezone.now()
        contract.save(update_fields=["status", "ended_at"])
        ledger_append(
            kind=events.TERMINATED,
            actor=actor,
            subject=events.subjects(contract),
            data=events.contract_data(contract),
        )
        return contract
    proposal = {
        "action": Agreement.Action.TERMINATE.value,
        "terms": contract.terms,
        "terms_sha256": contract.terms_sha256,
        "end_at": contract.end_at.astimezone(dt.UTC).isoformat(),
    }
    return _propose(actor, contract_id, proposal, events.TERMINATION_PROPOSED)


@transaction.atomic
def contract_expire_due(*, now: dt.datetime | None = None) -> list[int]:
    """Active contracts past their end become expired (one event each, periodic)."""
    now = now or timezone.now()
    expired = []
    due = Contract.objects.filter(status=Contract.Status.ACTIVE, end_at__lte=now).order_by("pk")
    for contract_id in list(due.values_list("pk", flat=True)[:500]):
        contract = locks.contract_lock(contract_id)
        contract.status = Contract.Status.EXPIRED
        contract.ended_at = contract.end_at
        contract.proposal = None
        contract.save(update_fields=["status", "ended_at", "proposal"])
        ledger_append(
            kind=events.EXPIRED,
            actor="system:contracts",
            subject=events.subjects(contract),
            data=events.contract_data(contract),
        )
        expired.append(contract_id)
    return expired


@transaction.atomic
def organisation_key_register(
    *, actor: User, organisation_id: int, name: str, public_key: str
) -> OrganisationKey:
    """An admin registers an Ed25519 public key (hex) its organisation signs agreements with."""
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None or not user_can_act_for(
        actor, organisation, role=Membership.Role.ADMIN
    ):
        raise errors.NotContractParty(
            "Only an admin of the organisation may register its keys.",
            organisation_id=organisation_id,
        )
    try:
        raw = bytes.fromhex(public_key)
        VerifyKey(raw)
    except (ValueError, TypeError):
        raise errors.InvalidTerms(fields={"public_key": ["32 bytes, hex"]}) from None
    if not (name or "").strip() or len(name) > 100:
        raise errors.InvalidTerms(fields={"name": ["1 to 100 characters"]})
    if OrganisationKey.objects.filter(organisation=organisation, public_key=raw.hex()).exists():
        raise errors.KeyExists(organisation_id=organisation_id)
    key = OrganisationKey.objects.create(
        organisation=organisation,
        name=name.strip(),
        public_key=raw.hex(),
        created_by=actor,
        created_at=timezone.now(),
    )
    ledger_append(
        kind=events.KEY_REGISTERED,
        actor=actor,
        subject=[("organisation", organisation.pk), ("contract_key", key.pk)],
        data={
            "organisation_id": organisation.pk,
            "key_id": key.pk,
            "name": key.name,
            "public_key": key.public_key,
            "algorithm": "ed25519",
        },
    )
    return key
