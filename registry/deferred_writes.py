"""Writes whose result nobody reads, sent in front of the next statement (PostgreSQL).

A hot service such as placing an order runs about fifteen short statements, and on
PostgreSQL each costs a network round trip whatever its size. Several of them are plain
UPDATEs or INSERTs whose outcome the service never reads (a sequence number moved on,
balances stored, journal lines inserted). Inside `deferred_writes()`, `execute_or_defer`
queues such a statement; the connection sends it in the same round trip as the next
statement of the transaction (psycopg2 sends a string with several statements as one
query, and PostgreSQL runs them in order), or on its own when the block ends.

Why it keeps the transaction's meaning:
- order: a queued statement runs before every statement issued after it, so every later
  read in the transaction sees its effect, exactly as if it had run at once;
- savepoints: Django's SAVEPOINT, RELEASE and ROLLBACK TO are statements too, so what was
  queued before a savepoint runs before it, and what was queued inside runs inside;
- errors: a statement that fails (a CHECK constraint that the service's own checks
  should have made unreachable) raises from the statement it travelled with, the same
  IntegrityError in the same transaction, which is rolled back as before. Queue only
  statements whose failure no caller catches to carry on;
- an exception inside the block drops what is still queued: the enclosing atomic block
  rolls back everything since its start anyway.

On SQLite (no round trips to save, and its driver refuses several statements in one
call) and outside the block, `execute_or_defer` executes at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection


class _Queue:
    """The connection's execute wrapper while a `deferred_writes()` block is open."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Sequence[Any]]] = []

    def rendered(self, cursor) -> str:
        """The queued statements with their parameters bound by the driver, emptied."""
        raw = cursor.cursor  # psycopg2's own cursor: mogrify quotes as execute would
        text = "".join(
            raw.mogrify(sql, params).decode(raw.connection.encoding) + ";\n"
            for sql, params in self.statements
        )
        self.statements.clear()
        return text

    def __call__(self, execute, sql, params, many, context):
        if self.statements:
            prefix = self.rendered(context["cursor"])
            if many:  # executemany repeats its statement: the queue goes first, alone
                context["cursor"].execute(prefix)
            else:
                # The prefix is literal SQL; with parameters, its % signs must be escaped.
                sql = prefix + sql if params is None else prefix.replace("%", "%%") + sql
        return execute(sql, params, many, context)


def _open_queue() -> _Queue | None:
    for wrapper in connection.execute_wrappers:
        if isinstance(wrapper, _Queue):
            return wrapper
    return None


@contextmanager
def deferred_writes() -> Iterator[None]:
    """Within the block (and a transaction), `execute_or_defer` statements are queued and
    sent with the next statement; what is left is sent when the block ends normally."""
    if connection.vendor != "postgresql" or _open_queue() is not None:
        yield
        return
    queue = _Queue()
    with connection.execute_wrapper(queue):
        yield
        if queue.statements:
            with connection.cursor() as cursor:
                cursor.execute(queue.rendered(cursor))


def execute_or_defer(sql: str, params: Sequence[Any]) -> None:
    """Execute a write whose result (rows, row count) the caller does not read: queued
    inside `deferred_writes()` on PostgreSQL, at once otherwise."""
    queue = _open_queue()
    if queue is not None and connection.in_atomic_block:
        queue.statements.append((sql, list(params)))
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
