"""Helpers for ledger tests: queue events, integrate them, and bypass the triggers."""

from contextlib import contextmanager

from django.db import connection, transaction

from ledger import triggers
from ledger.merkle import leaf_hash
from ledger.models import LedgerEntry
from ledger.services import ledger_append, ledger_integrate


def append_events(count: int, *, kind: str = "test.happened", subject=None, start: int = 0):
    """Queue `count` events in one transaction (numbered by the integrator later)."""
    with transaction.atomic():
        return [
            ledger_append(
                kind=kind,
                actor="system:test",
                subject=subject if subject is not None else ("bundle", (start + i) % 3),
                data={"n": start + i},
            )
            for i in range(count)
        ]


def integrate_all(max_batch: int = 5000) -> int:
    total = 0
    while done := ledger_integrate(max_batch=max_batch):
        total += done
    return total


def ledger_with(count: int, **kwargs) -> list[bytes]:
    """A log of `count` entries; returns their leaf hashes in order."""
    append_events(count, **kwargs)
    integrate_all()
    return leaf_hashes()


def leaf_hashes() -> list[bytes]:
    return [leaf_hash(bytes(e)) for e in LedgerEntry.objects.values_list("event", flat=True)]


@contextmanager
def triggers_lifted():
    """Let this connection change append-only rows, as an attacker with DB access could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            try:
                yield cursor
            finally:
                cursor.execute("SET session_replication_role = origin")
        else:
            tables = (triggers.LEDGER_TABLES, triggers.INDEX_TABLES)
            for statement in (s for t in tables for s in t.drop_sql(connection.vendor)):
                cursor.execute(statement)
            try:
                yield cursor
            finally:
                for statement in (s for t in tables for s in t.create_sql(connection.vendor)):
                    cursor.execute(statement)


def flip_byte(value: bytes, index: int = 0) -> bytes:
    data = bytearray(value)
    data[index] ^= 0x01
    return bytes(data)
