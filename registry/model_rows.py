"""Model rows through hand-written SQL: the column list, the row read back as a model
instance, the instance written with one INSERT … RETURNING.

Building a queryset costs more Python than the statement costs the database on the
order placement path (measured: benchmarks/README.md, "Market") and on a retirement
("Retirement response"), so the market's hot statements are written by hand
(market/storage.py, market/locks.py) and use these to stay in models, and a retirement
inserts its rows with `insert`. Values go through the fields' own `get_db_prep_save` on
the way in and the backend's converters on the way out (SQLite returns date-times as
text), so PostgreSQL and SQLite read and write the same values as through the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models.expressions import DatabaseDefault
from django.db.models.sql import Query

from registry.deferred_writes import execute_or_defer

M = TypeVar("M", bound=models.Model)


def marks(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


@cache
def attnames(model: type[models.Model]) -> tuple[str, ...]:
    """The model's concrete fields' attribute names, in field order (what `from_db` wants)."""
    return tuple(f.attname for f in model._meta.concrete_fields)


@cache
def select_list(model: type[models.Model], alias: str) -> str:
    """`alias.column, …` of every concrete field, in field order."""
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


@cache
def _converters(model: type[models.Model], vendor: str) -> tuple[tuple[int, list, Any], ...]:
    compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, connection.alias)
    table = model._meta.db_table
    found = compiler.get_converters([f.get_col(table) for f in model._meta.concrete_fields])
    return tuple((i, convs, expr) for i, (convs, expr) in found.items())


def converter(model: type[models.Model], offset: int = 0) -> Callable[[Sequence], list]:
    """A function from a result row to the model's values, for the columns of
    `select_list(model, …)` starting at `offset` in the row."""
    convs = _converters(model, connection.vendor)
    width = len(attnames(model))

    def convert(row: Sequence) -> list:
        values = list(row[offset : offset + width])
        for i, functions, expression in convs:
            value = values[i]
            for function in functions:
                value = function(value, expression, connection)
            values[i] = value
        return values

    return convert


def load(model: type[M], values: Sequence) -> M:
    """An instance from already-converted values in field order."""
    return model.from_db(connection.alias, attnames(model), values)


def fetch(model: type[M], sql: str, params: Sequence) -> list[M]:
    """Instances from a statement that selects `select_list(model, …)` and nothing else."""
    convert = converter(model)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [load(model, convert(row)) for row in cursor.fetchall()]


@cache
def _insert_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key)


def insert(instances: Iterable[models.Model], *, ids: bool = True) -> None:
    """INSERT the new instances of one model (auto primary key) in one statement; each gets
    its id, in order, as `bulk_create` does. `ids=False`: the caller never reads the new
    rows' ids, so the statement may travel with the next one (registry.deferred_writes)."""
    instances = list(instances)
    if not instances:
        return
    model = type(instances[0])
    fields = _insert_fields(model)
    params: list[Any] = []
    for instance in instances:
        for f in fields:
            value = f.pre_save(instance, True)
            if isinstance(value, DatabaseDefault):
                # A constant db_default (the only kind the market has), as the ORM's
                # RETURNING would have read it back.
                value = getattr(f.db_default, "value", f.db_default)
                setattr(instance, f.attname, value)
            params.append(f.get_db_prep_save(value, connection))
    one = f"({marks(fields)})"
    sql = (
        f"INSERT INTO {model._meta.db_table} "  # noqa: S608
        f"({', '.join(f.column for f in fields)}) "
        f"VALUES {', '.join([one] * len(instances))}"
    )
    if not ids:
        execute_or_defer(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING id", params)
        new_ids = [row[0] for row in cursor.fetchall()]
    for instance, pk in zip(instances, new_ids, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
