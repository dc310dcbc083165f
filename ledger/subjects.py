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

from collections.abc import Iterable
from typing import Any

from django.db import models

from ledger.verify.subject_map import ISSUANCE_KINDS, subjects_v1  # noqa: F401 (re-exported)

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
        "slot_settlement",
        "market_agent",
        "agent_decision",
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
