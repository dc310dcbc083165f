"""Model instances of several tables from one hand-written SELECT, decoded as the ORM would.

`Model.objects.raw()` converts only the columns of its own model; the other tables of a
join come back as the driver returns them (on SQLite, dates and datetimes as text).
`JoinedSelect` names the columns of each model once, writes the SELECT list, applies the
backend's converters to every column and builds each model with `Model.from_db`, the
ORM's own constructor. Nothing is compiled per call: on the hot reads (an API token with
its user, a bundle with its issuance and holder) compiling the ORM query cost more than
the query (benchmarks/README.md, "One-bundle read").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Field, Model

from registry.prepared import execute_prepared


@dataclass(frozen=True)
class Part:
    """One table of the join: its model, the alias the SQL gives it, the fields to read."""

    model: type[Model]
    alias: str
    fields: tuple[Field, ...]


def part(model: type[Model], alias: str, names: Sequence[str] | None = None) -> Part:
    """The fields by attname (`account_id`, `legal_name`); none: every concrete field.

    Kept in the model's field order, the order `Model.from_db` expects values in.
    """
    wanted = None if names is None else set(names)
    fields = tuple(f for f in model._meta.concrete_fields if wanted is None or f.attname in wanted)
    if wanted is not None and len(fields) != len(wanted):
        missing = wanted - {f.attname for f in fields}
        raise ValueError(f"{model.__name__} has no concrete fields {sorted(missing)}")
    return Part(model, alias, fields)


class JoinedSelect:
    """`SELECT <the parts' columns> <tail>`, one row read into one instance per part.

    `extra` SQL expressions follow the parts' columns, as the driver returns them (ids,
    counts: values no backend converts); `rows` gives every row's decoded values."""

    def __init__(self, *parts: Part, extra: Sequence[str] = ()) -> None:
        self.parts = parts
        self.columns = ", ".join(
            [f"{p.alias}.{f.column}" for p in parts for f in p.fields] + list(extra)
        )
        self._names = [[f.attname for f in p.fields] for p in parts]
        self._converters: dict[str, list[tuple[int, list, object]]] = {}

    def _converters_for(self, conn) -> list[tuple[int, list, object]]:
        """(position, converters, column) of each column the backend or field decodes."""
        found = self._converters.get(conn.alias)
        if found is None:
            found = []
            position = 0
            for p in self.parts:
                for f in p.fields:
                    col = f.get_col(p.model._meta.db_table)
                    converters = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
                    if converters:
                        found.append((position, converters, col))
                    position += 1
            self._converters[conn.alias] = found
        return found

    def one(self, tail: str, params: Sequence, *, prepared: str = "") -> list[Model] | None:
        """The instances of the first row of `SELECT … <tail>` (FROM, JOIN, WHERE), or None.

        `prepared`: run it as the prepared statement of that name (registry/prepared.py);
        the tail must then be the same text on every call."""
        sql = f"SELECT {self.columns} {tail}"
        with connection.cursor() as cursor:
            if prepared:
                execute_prepared(cursor, prepared, sql, params)
            else:
                cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return self._instances(self._decoded(row))

    def each(
        self, tail: str, params: Sequence, *, prepared: str = ""
    ) -> list[tuple[list[Model], list]]:
        """Every row of `SELECT … <tail>`: its instances (one per part, as `one` gives
        them) and its `extra` values (as the driver returns them). `prepared` as in `one`."""
        width = sum(len(names) for names in self._names)
        rows = self.rows(tail, params, prepared=prepared)
        return [(self._instances(values), values[width:]) for values in rows]

    def _instances(self, values: list) -> list[Model]:
        instances = []
        start = 0
        for p, names in zip(self.parts, self._names, strict=True):
            end = start + len(names)
            instances.append(p.model.from_db(connection.alias, names, values[start:end]))
            start = end
        return instances

    def rows(self, tail: str, params: Sequence, *, prepared: str = "") -> list[list]:
        """The values of every row of `SELECT … <tail>`, decoded as the ORM would."""
        sql = f"SELECT {self.columns} {tail}"
        with connection.cursor() as cursor:
            if prepared:
                execute_prepared(cursor, prepared, sql, params)
            else:
                cursor.execute(sql, params)
            return [self._decoded(row) for row in cursor.fetchall()]

    def _decoded(self, row: Sequence) -> list:
        values = list(row)
        for position, converters, col in self._converters_for(connection):
            value = values[position]
            for convert in converters:
                value = convert(value, col, connection)
            values[position] = value
        return values
