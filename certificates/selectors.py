"""Reads about certificates: lists scoped to the user, histories with their ledger proofs."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.permissions import user_organisation_ids, user_reads_everything
from certificates.models import (
    Bundle,
    CertificateExport,
    CertificateImport,
    IssuanceRequest,
    Retirement,
    StorageOrigin,
    Transfer,
    TransferPolicy,
    Withdrawal,
)
from certificates.storage import bundle_ancestor_ids, bundle_with_face
from ledger.selectors import subject_completeness

BUNDLE_RELATED = ("issuance", "account__organisation")


def _scope_ids(user: User | None) -> list[int] | None:
    """None: the user reads everything; else the organisations whose rows they see."""
    if user is not None and user.is_authenticated and user_reads_everything(user):
        return None
    return user_organisation_ids(user) if user is not None else []


def bundle_list(*, user: User | None) -> QuerySet[Bundle]:
    """Bundles held by the user's organisations; the issuing body and auditors see all."""
    qs = Bundle.objects.select_related(*BUNDLE_RELATED)
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(account__organisation_id__in=orgs)


# What BundleOutputSerializer reads, and nothing more: the ORM form of the one-bundle read
# (the API reads the same through `bundle_detail`'s hand-written statement).
BUNDLE_OUTPUT_FIELDS = (
    "id",
    "device_id",
    "unit_start",
    "unit_end",
    "period_start",
    "period_end",
    "status",
    "expires_on",
    "parent_id",
    "account__number",
    "account__organisation_id",
    "account__organisation__legal_name",
    "issuance__device_name",
    "issuance__technology_code",
    "issuance__energy_source_code",
    "issuance__grid_area_code",
    "issuance__country",
    "issuance__capacity_w",
    "issuance__commissioning_date",
    "issuance__support",
    "issuance__emission_factor_g_per_kwh",
    "issuance__is_storage",
    "issuance__issued_at",
    "issuance__issuing_body_id",
)


def bundle_detail_queryset() -> QuerySet[Bundle]:
    """Any bundle, with what its public face shows (the API's one-bundle read)."""
    return Bundle.objects.select_related(*BUNDLE_RELATED).only(*BUNDLE_OUTPUT_FIELDS)


def bundle_detail(*, bundle_id: int) -> Bundle | None:
    """Any bundle with what its public face shows (the API's one-bundle read), or None.

    One hand-written statement (certificates/storage.py); `bundle_detail_queryset` is the
    same read through the ORM.
    """
    return bundle_with_face(bundle_id)


def bundle_public(*, bundle_id: int) -> Bundle | None:
    """Any bundle, for the public lookup: its holder and history are in the public ledger."""
    return Bundle.objects.select_related(*BUNDLE_RELATED).filter(pk=bundle_id).first()


def bundle_for_unit(*, device_id: int, unit: int) -> Bundle | None:
    """The current (unsplit) bundle holding unit `unit` of a device, if it was issued."""
    bundle = (
        Bundle.objects.select_related(*BUNDLE_RELATED)
        .filter(device_id=device_id, unit_start__lte=unit)
        .exclude(status=Bundle.Status.SPLIT)
        .order_by("-unit_start")
        .first()
    )
    if bundle is None or bundle.unit_end <= unit:
        return None
    return bundle


def bundle_ancestry(*, bundle_id: int) -> list[int]:
    """Ids from the issued root down to `bundle_id` (one recursive query, any depth)."""
    return bundle_ancestor_ids(bundle_id)


def bundle_children(*, bundle_id: int) -> list[Bundle]:
    """Bundles split from this one, in unit order."""
    return list(Bundle.objects.filter(parent_id=bundle_id).order_by("unit_start"))


def transfer_list(*, user: User | None) -> QuerySet[Transfer]:
    """Transfers out of or into the user's organisations' accounts."""
    qs = Transfer.objects.select_related(
        "from_account__organisation", "to_account__organisation", "bundle"
    )
    orgs = _scope_ids(user)
    if orgs is None:
        return qs
    return qs.filter(
        Q(from_account__organisation_id__in=orgs) | Q(to_account__organisation_id__in=orgs)
    )


def issuance_request_list(*, user: User | None) -> QuerySet[IssuanceRequest]:
    """The user's organisations' requests; the issuing body and auditors see all."""
    qs = IssuanceRequest.objects.select_related("device", "organisation", "issuance")
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(organisation_id__in=orgs)


def retirement_list(*, user: User | None) -> QuerySet[Retirement]:
    """Retirements from the user's organisations' accounts (all: issuing body, auditors)."""
    qs = Retirement.objects.select_related("account__organisation")
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(account__organisation_id__in=orgs)


def retirement_by_public_id(*, public_id: Any) -> Retirement | None:
    """The retirement behind a public statement id, or None."""
    return (
        Retirement.objects.select_related("account__organisation")
        .filter(public_id=public_id)
        .first()
    )


def withdrawal_list(*, user: User | None) -> QuerySet[Withdrawal]:
    """Withdrawals are public: they correct the public record."""
    return Withdrawal.objects.all()


def export_list(*, user: User | None) -> QuerySet[CertificateExport]:
    """Exports from the user's organisations' accounts; the issuing body and auditors see all."""
    qs = CertificateExport.objects.select_related("destination", "from_account")
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(from_account__organisation_id__in=orgs)


def import_list(*, user: User | None) -> QuerySet[CertificateImport]:
    """Imports into the user's organisations' accounts; the issuing body and auditors see all."""
    qs = CertificateImport.objects.select_related("account")
    orgs = _scope_ids(user)
    return qs if orgs is None else qs.filter(account__organisation_id__in=orgs)


def transfer_policy_for(*, organisation_id: int) -> TransferPolicy:
    """The organisation's transfer policy, or an unsaved default (no acceptance needed)."""
    policy = TransferPolicy.objects.filter(organisation_id=organisation_id).first()
    return policy or TransferPolicy(organisation_id=organisation_id, require_acceptance=False)


def devices_for_auto_issuance() -> list[int]:
    """Ids of approved or active devices whose policy is automatic hourly issuance, in id order."""
    from assets.models import Device

    return list(
        Device.objects.filter(
            issuance_policy=Device.IssuancePolicy.AUTOMATIC_HOURLY,
            status__in=[Device.Status.APPROVED, Device.Status.ACTIVE],
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# ---------------------------------------------------------------- ledger histories


@dataclass
class HistoryStep:
    """One ledger entry of a history: the decoded event and its inclusion proof."""

    seq: int | None
    kind: str
    at: str
    actor: str
    data: dict[str, Any]
    event_b64: str
    proof: list[str] | None  # base64 hashes; None until a checkpoint covers the entry


@dataclass
class History:
    bundle_ids: list[int]
    steps: list[HistoryStep]
    checkpoint_note: str | None
    checkpoint_size: int
    pending: int = 0
    children: list[int] = field(default_factory=list)
    imported: CertificateImport | None = None
    exported: CertificateExport | None = None
    completeness: dict[str, Any] | None = None  # ledger.selectors.subject_completeness

    def verify_bundle(self) -> dict[str, Any]:
        """What `python -m ledger.verify history --file` takes: entries the checkpoint
        covers, and the proof that none of their subjects' entries was left out."""
        return {
            "checkpoint": self.checkpoint_note,
            "completeness": self.completeness,
            "entries": [
                {"seq": s.seq, "event_b64": s.event_b64, "proof": s.proof}
                for s in self.steps
                if s.proof is not None
            ],
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def ledger_history(
    *, keys: list[str], at_size: int | None = None
) -> tuple[list[HistoryStep], str | None, int, int]:
    """Every entry about any of `keys`, oldest first, with proofs in the latest checkpoint
    (or in the checkpoint of `at_size` entries: then only the entries it covers).

    Entries newer than the checkpoint come without a proof; events the integrator has
    not numbered yet are counted (`pending`) but not listed. One query for the entries
    and one for all the proof hashes, whatever the number of keys.
    """
    from ledger import storage
    from ledger.merkle import inclusion_proof_ranges, nodes_needed, range_hashes
    from ledger.models import Checkpoint, LedgerEntry, PendingEvent

    checkpoints = Checkpoint.objects.order_by("-size")
    if at_size is not None:
        checkpoints = checkpoints.filter(size=at_size)
    checkpoint = checkpoints.first()
    size = checkpoint.size if checkpoint is not None else 0
    found = LedgerEntry.objects.filter(subject_rows__key__in=keys)
    if at_size is not None:
        found = found.filter(seq__lt=size)
    entries = list(found.distinct().order_by("seq").values_list("seq", "kind", "actor", "event"))
    covered = [seq for seq, *_ in entries if seq < size]
    ranges = {seq: inclusion_proof_ranges(seq, size) for seq in covered}
    nodes = storage.fetch_nodes(nodes_needed(r for rs in ranges.values() for r in rs))
    steps = []
    for seq, kind, actor, raw in entries:
        raw = bytes(raw)
        event = json.loads(raw)
        proof = None
        if seq in ranges:
            proof = [_b64(h) for h in range_hashes(ranges[seq], nodes)]
        steps.append(
            HistoryStep(
                seq=seq,
                kind=kind,
                at=event.get("at", ""),
                actor=actor,
                data=event.get("data", {}),
                event_b64=_b64(raw),
                proof=proof,
            )
        )
    pending = 0
    if connection.vendor == "postgresql":
        pending = PendingEvent.objects.filter(
            Q.create([("subjects__contains", [key]) for key in keys], connector=Q.OR)
        ).count()
    return steps, (checkpoint.note if checkpoint is not None else None), size, pending


def _history_keys(chain: list[int]) -> list[str]:
    """Subject keys of every event in the chains' histories: the bundles, and the
    issuances of their roots (issuance events name the issuance, not each bundle)."""
    issuances = Bundle.objects.filter(pk__in=chain, parent__isnull=True).values_list(
        "issuance_id", flat=True
    )
    return [f"bundle:{pk}" for pk in chain] + [f"issuance:{pk}" for pk in sorted(set(issuances))]


def bundle_history(*, bundle_id: int) -> History:
    """The ownership chain of a bundle from issuance to now: every issuance, split, transfer,
    retirement, expiry and withdrawal of it and of the bundles it was split from."""
    chain = bundle_ancestry(bundle_id=bundle_id)
    keys = _history_keys(chain)
    steps, note, size, pending = ledger_history(keys=keys)
    children = list(
        Bundle.objects.filter(parent_id=bundle_id)
        .order_by("unit_start")
        .values_list("pk", flat=True)
    )
    return History(
        bundle_ids=chain,
        steps=steps,
        checkpoint_note=note,
        checkpoint_size=size,
        pending=pending,
        children=children,
        imported=CertificateImport.objects.filter(bundle_id=chain[0]).first(),
        exported=CertificateExport.objects.select_related("destination")
        .filter(bundle_id=bundle_id)
        .first(),
        completeness=subject_completeness(keys=keys, size=size),
    )


def retirement_history(*, retirement: Retirement) -> History:
    """The histories of every bundle a retirement claimed, merged (for its statement)."""
    bundle_ids = list(retirement.items.order_by("bundle_id").values_list("bundle_id", flat=True))
    chain: list[int] = []
    for pk in bundle_ids:
        chain += [b for b in bundle_ancestry(bundle_id=pk) if b not in chain]
    keys = [*_history_keys(chain), f"retirement:{retirement.pk}"]
    steps, note, size, pending = ledger_history(keys=keys)
    return History(
        bundle_ids=chain,
        steps=steps,
        checkpoint_note=note,
        checkpoint_size=size,
        pending=pending,
        completeness=subject_completeness(keys=keys, size=size),
    )


def retirement_statement(*, retirement: Retirement) -> dict[str, Any]:
    """Everything a third party needs to check a retirement without trusting the registry.

    The top-level `checkpoint` and `entries` make the statement itself a history bundle
    for `python -m ledger.verify history --file`; `claim` opens the event's commitment.
    """
    from certificates.claims import retirement_claim
    from certificates.models import WithdrawalItem
    from ledger.canonical import to_event_value
    from ledger.keys import registry_signer

    history = retirement_history(retirement=retirement)
    bundles = list(
        Bundle.objects.select_related(*BUNDLE_RELATED)
        .filter(retirement_item__retirement=retirement)
        .order_by("pk")
    )
    withdrawals = list(
        WithdrawalItem.objects.select_related("withdrawal")
        .filter(bundle__in=bundles)
        .order_by("pk")
    )
    vkey = registry_signer().vkey
    verify = history.verify_bundle()
    return {
        "checkpoint": verify["checkpoint"],
        "entries": verify["entries"],
        "completeness": verify["completeness"],
        "retirement": retirement,
        "certificates": bundles,
        # As hashed: canonical strings, so sha256(RFC 8785 of this) is the commitment.
        "claim": to_event_value(retirement_claim(retirement) | {"salt": retirement.claim_salt}),
        "withdrawn": bool(withdrawals),
        "withdrawals": withdrawals,
        "history": history.steps,
        "checkpoint_size": history.checkpoint_size,
        "verifier_key": vkey,
        "verify_command": (
            f"python -m ledger.verify history --file statement-{retirement.public_id}.json "
            f"--key '{vkey}'"
        ),
    }


# ---------------------------------------------------------------- holdings and figures


def account_holdings(*, account_ids: list[int]) -> list[dict[str, Any]]:
    """Units per account, technology, country, vintage and status, in one grouped query.

    Split bundles are left out: their children hold the same units.
    """
    from django.db.models import Count, F, Sum
    from django.db.models.functions import ExtractYear

    rows = (
        Bundle.objects.filter(account_id__in=account_ids)
        .exclude(status=Bundle.Status.SPLIT)
        .values(
            "account_id",
            technology=F("issuance__technology_code"),
            country=F("issuance__country"),
            vintage=ExtractYear("period_start"),
            status_code=F("status"),
        )
        .annotate(volume_wh=Sum(F("unit_end") - F("unit_start")), bundles=Count("id"))
        .order_by("account_id", "technology", "country", "vintage", "status_code")
    )
    labels = dict(Bundle.Status.choices)
    return [{**row, "status": labels[row.pop("status_code")]} for row in rows]


def holdings_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of account_holdings rows by status, technology, country and vintage."""
    totals: dict[str, Any] = {"volume_wh": 0, "active_wh": 0, "bundles": 0}
    for dimension in ("status", "technology", "country", "vintage"):
        totals["by_" + dimension] = {}
    for row in rows:
        totals["volume_wh"] += row["volume_wh"]
        totals["bundles"] += row["bundles"]
        if row["status"] == Bundle.Status.ACTIVE.label:
            totals["active_wh"] += row["volume_wh"]
        for dimension in ("status", "technology", "country", "vintage"):
            bucket = totals["by_" + dimension]
            bucket[row[dimension]] = bucket.get(row[dimension], 0) + row["volume_wh"]
    for dimension in ("status", "technology", "country", "vintage"):
        key = "by_" + dimension
        totals[key] = [
            {dimension: name, "volume_wh": wh} for name, wh in sorted(totals[key].items())
        ]
    return totals


def certificate_figures(*, since: Any) -> dict[str, int]:
    """Wh issued, transferred (completed or accepted) and retired since a moment."""
    from django.db.models import Sum

    from certificates.models import Issuance

    done = (Transfer.Status.COMPLETED, Transfer.Status.ACCEPTED)
    return {
        "issued_wh": Issuance.objects.filter(issued_at__gte=since).aggregate(wh=Sum("volume_wh"))[
            "wh"
        ]
        or 0,
        "transferred_wh": Transfer.objects.filter(created_at__gte=since, status__in=done).aggregate(
            wh=Sum("volume_wh")
        )["wh"]
        or 0,
        "retired_wh": Retirement.objects.filter(retired_at__gte=since).aggregate(
            wh=Sum("volume_wh")
        )["wh"]
        or 0,
    }


def certificate_monthly(*, since: Any) -> dict[str, list[dict[str, Any]]]:
    """Wh issued and retired per calendar month (UTC) since a moment, two grouped queries."""
    import datetime as dt

    from django.db.models import Sum
    from django.db.models.functions import TruncMonth

    from certificates.models import Issuance

    def monthly(qs, field: str) -> list[dict[str, Any]]:
        return list(
            qs.filter(**{f"{field}__gte": since})
            .annotate(month=TruncMonth(field, tzinfo=dt.UTC))
            .values("month")
            .annotate(wh=Sum("volume_wh"))
            .order_by("month")
        )

    return {
        "issued": monthly(Issuance.objects.all(), "issued_at"),
        "retired": monthly(Retirement.objects.all(), "retired_at"),
    }


def bundle_storage_origin(*, bundle: Bundle) -> StorageOrigin | None:
    """The origin of a storage certificate's units (None for any other bundle): the range
    of the storage issuance that holds the bundle's units, from its charge."""
    if not bundle.issuance.is_storage:
        return None
    return (
        StorageOrigin.objects.filter(
            device_id=bundle.device_id,
            unit_start__lte=bundle.unit_start,
            unit_end__gte=bundle.unit_end,
        )
        .order_by("unit_start")
        .first()
    )
