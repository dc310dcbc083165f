"""Subject keys: how ledger events name what they are about ("device:7", "bundle:12").

`SUBJECT_KINDS` is every kind of subject an event of this registry may name; the subject
endpoint answers 404 `unknown_subject_kind` for any other. A new kind of subject is added
here (and to ledger/EVENTS.md) with the event that first names it.

`subjects_v1` is the first version of the map from an entry to the subjects an index lists
it under: the entry's own `subject` list, plus the subjects its data proves it changed
where the list of an old entry was short (entries can never be rewritten). It is a pure
function of the entry, so anyone holding the log can recompute it; a later rule is a new
version (`subjects_v2`), never an edit of this one. The rules are documented in
ledger/EVENTS.md, "Subjects of old entries".
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

Subject = models.Model | tuple[str, Any] | str

SUBJECT_KINDS = frozenset(
    {
        # ledger: the log's signing keys (by hex key ID), named by ledger.key_rotated
        "log_key",
        # accounts
        "user",
        "organisation",
        "account",
        # assets
        "grid_area",
        "device",
        "meter",
        "reading_batch",
        # certificates
        "issuance_request",
        "issuance",
        "bundle",
        "transfer",
        "retirement",
        "withdrawal",
        "certificate_export",
        "certificate_import",
        # federation
        "peer",
        # market
        "market",
        "order",
        "trade",
        "settlement_account",
        "journal_entry",
        "slot_clearing",
        # consumers
        "household",
        "site",
        "consent",
        "community",
        "community_member",
        "community_distribution",
        # contracts
        "contract",
        "contract_key",
        "contract_agreement",
        "contract_execution",
        "settlement_obligation",
        # charging
        "charging_tariff",
        "charging_station",
        "charging_token",
        "charging_session",
        "charging_bill",
        "charging_receipt",
        # notifications
        "webhook_endpoint",
    }
)


def subject_key(subject: Subject) -> str:
    if isinstance(subject, str):
        return subject
    if isinstance(subject, tuple):
        kind, ident = subject
        return f"{kind}:{ident}"
    kind = getattr(subject, "ledger_subject_type", None) or subject._meta.model_name
    return f"{kind}:{subject.pk}"


def subject_keys(subject: Subject | Iterable[Subject] | None) -> list[str]:
    if subject is None:
        return []
    if isinstance(subject, models.Model | str | tuple):
        return [subject_key(subject)]
    return list(dict.fromkeys(subject_key(item) for item in subject))


def subject_kind_known(kind: str) -> bool:
    """Whether events of this registry can name subjects of this kind."""
    return kind in SUBJECT_KINDS


# ---------------------------------------------------------------- index map, version 1


def _ids(kind: str, values: Iterable[Any]) -> list[str]:
    return [f"{kind}:{value}" for value in values if type(value) is int]  # not bool


def _move_bundles(move: Mapping[str, Any]) -> list[str]:
    return _ids("bundle", (move.get(f) for f in ("bundle_id", "moved_bundle_id", "rest_bundle_id")))


def _issuance_keys(issuance: Any) -> list[str]:
    """Every bundle and account of an issuance object's periods."""
    if not isinstance(issuance, Mapping):
        return []
    keys = _ids("issuance", [issuance.get("issuance_id")])
    for period in issuance.get("periods") or []:
        if not isinstance(period, list) or len(period) < 5 or not isinstance(period[4], list):
            continue
        for owner in period[4]:
            if isinstance(owner, list) and len(owner) >= 2:
                keys += _ids("bundle", owner[:1]) + _ids("account", owner[1:2])
    return keys


ISSUANCE_KINDS = ("certificate.issued", "issuance_request.created", "issuance_request.approved")


def _derived_v1(event_type: str, data: Mapping[str, Any]) -> list[str]:
    if event_type in ISSUANCE_KINDS:
        return _issuance_keys(data.get("issuance"))
    if event_type == "certificate.transferred":
        return _move_bundles(data) + _ids(
            "account", (data.get("from_account_id"), data.get("to_account_id"))
        )
    if event_type == "certificate.batch_transferred":
        keys: list[str] = _ids("account", [data.get("to_account_id")])
        for item in data.get("transfers") or []:
            if isinstance(item, Mapping):
                keys += _derived_v1("certificate.transferred", item)
                keys += _ids("transfer", [item.get("transfer_id")])
        return keys
    if event_type == "certificate.retired":
        keys = _ids("account", [data.get("account_id")])
        for item in data.get("items") or []:
            if isinstance(item, Mapping):
                keys += _move_bundles(item)
        return keys
    if event_type == "certificate.withdrawn":
        return (
            _ids("bundle", data.get("withdrawn_bundle_ids") or [])
            + _ids("bundle", data.get("flagged_bundle_ids") or [])
            + _ids("transfer", data.get("cancelled_transfer_ids") or [])
        )
    if event_type == "certificate.expired":
        return _ids("bundle", data.get("bundle_ids") or [])
    return []


def subjects_v1(event_type: str, data: Mapping[str, Any], listed: Iterable[str]) -> list[str]:
    """The subjects an index (version 1) files an entry under: those it lists, in order,
    then those its data shows it changed that the list left out (old entries)."""
    keys = list(dict.fromkeys(str(key) for key in listed))
    if not isinstance(data, Mapping):
        return keys
    seen = set(keys)
    for key in _derived_v1(event_type, data):
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys
