"""What every app's replay needs from the ledger: its events in log order, in one snapshot.

The replays (`certificates.replay`, `market.replay`, `consumers.replay`) rebuild their state
from the log alone and compare it with their tables; each reads the same way.
"""

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from ledger.models import LedgerEntry, PendingEvent

MAX_LISTED = 50
"""Problems a replay report lists; it counts them all."""


@dataclass
class ReplayProblems:
    """What every replay report shares: the problems it found (the first MAX_LISTED kept)
    and whether there were none."""

    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


def events_of_kinds(kinds: Iterable[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, kind, data) of every event of these kinds: the numbered entries in log order,
    then those still queued for the integrator, in commit order."""
    for where, event in log_events(kinds):
        yield where, event["type"], event["data"]


def log_events(kinds: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, event) as `events_of_kinds`, with the whole event (`actor`, `subject`, `at`)
    for a replay that compares who acted."""
    kinds = list(kinds)
    numbered = (
        LedgerEntry.objects.filter(kind__in=kinds)
        .order_by("seq")
        .values_list("seq", "event")
        .iterator(chunk_size=2000)
    )
    for seq, raw in numbered:
        yield f"entry {seq}", json.loads(bytes(raw))
    queued = (
        PendingEvent.objects.filter(kind__in=kinds)
        .order_by("pk")
        .values_list("pk", "event")
        .iterator(chunk_size=2000)
    )
    for pk, raw in queued:
        yield f"queued event {pk}", json.loads(bytes(raw))


@contextmanager
def replay_snapshot() -> Iterator[None]:
    """One read-only snapshot of the log and the tables for the whole replay.

    Only the first statement of a transaction may choose its isolation level: inside an
    enclosing transaction (a test, a caller's block) that transaction's snapshot applies.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield
