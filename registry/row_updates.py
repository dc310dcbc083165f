"""Many rows updated by primary key in one statement, which may travel with the next one.

`QuerySet.bulk_update` builds a CASE expression per field and row and compiles it: about
3 ms of Python for two contract executions, more than the round trip it saves
(benchmarks/README.md, "Contracts"). Here the values go through each field's own
`get_db_prep_save`, as the ORM would send them, and the statement through
`execute_or_defer`, so inside `deferred_writes()` it is sent with the next statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, models

from registry.deferred_writes import execute_or_defer


def update_from_values(table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Set each row's values by id. `columns` are `name::type` in the rows' order, the
    last one the id. PostgreSQL: one UPDATE joined to a VALUES list (where `executemany`
    would send one statement per row); elsewhere one statement per row."""
    if not rows:
        return
    names = [column.split("::")[0] for column in columns]
    sets = ", ".join(f"{name} = %s" for name in names[:-1])
    by_id = f"UPDATE {table} SET {sets} WHERE {names[-1]} = %s"  # noqa: S608 - model names
    if len(rows) == 1:
        execute_or_defer(by_id, list(rows[0]))
        return
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.executemany(by_id, [list(row) for row in rows])
        return
    sets = ", ".join(
        f"{name} = v.{column}" for name, column in zip(names[:-1], columns[:-1], strict=True)
    )
    one = f"({', '.join(['%s'] * len(columns))})"
    sql = (
        f"UPDATE {table} AS t SET {sets} "  # noqa: S608 - model names, values bound
        f"FROM (VALUES {', '.join([one] * len(rows))}) AS v({', '.join(names)}) "
        f"WHERE t.{names[-1]} = v.{columns[-1]}"
    )
    execute_or_defer(sql, [value for row in rows for value in row])


def rows_update(model: type[models.Model], objects: Iterable[models.Model], fields: Sequence[str]):
    """Write `fields` of `objects` (instances of `model`, saved before) by primary key:
    what `bulk_update(objects, fields)` writes, in one statement on PostgreSQL."""
    meta = model._meta
    chosen = [meta.get_field(name) for name in fields]
    pk = meta.pk
    columns = [f"{field.column}::{field.cast_db_type(connection)}" for field in [*chosen, pk]]
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in chosen]
        + [pk.get_db_prep_save(obj.pk, connection)]
        for obj in objects
    ]
    update_from_values(meta.db_table, columns, rows)
