"""Writes to the ledger. Every domain service calls `ledger_append` in its transaction."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ledger.canonical import canonical_bytes
from ledger.errors import LedgerAppendOutsideTransaction
from ledger.models import PendingEvent
from ledger.subjects import Subject, subject_keys


def actor_key(actor: Any) -> str:
    """`user:<id>` for a user, the string itself for a system actor ("system:expiry")."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.pk}"


def ledger_append(
    *,
    kind: str,
    actor: Any,
    subject: Subject | Iterable[Subject] | None,
    data: Mapping[str, Any],
) -> PendingEvent:
    """Queue one canonical event in the caller's transaction; the integrator numbers it."""
    if not connection.in_atomic_block:
        raise LedgerAppendOutsideTransaction(kind=kind)
    subjects = subject_keys(subject)
    actor_name = actor_key(actor)
    event = {
        "type": kind,
        "at": timezone.now(),
        "actor": actor_name,
        "subject": subjects,
        "data": dict(data),
    }
    pending = PendingEvent.objects.create(
        kind=kind, subjects=subjects, actor=actor_name, event=canonical_bytes(event)
    )
    transaction.on_commit(_kick_integrator)
    return pending


def _kick_integrator() -> None:
    """Hook for the integrator (a Celery task started on commit); set by the ledger."""
