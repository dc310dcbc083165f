"""Server-side prepared statements for the hottest fixed statements, on PostgreSQL.

PostgreSQL parses and plans every statement it is sent. For the four-table join of a
one-bundle read that was about 0.3 ms of a 0.45 ms statement, for the token lookup 0.1 of
0.2 ms, both on every request (benchmarks/README.md, "One-bundle read"). A statement
executed here is prepared once per connection (`PREPARE name AS …`, its own round trip on
first use, not counted among the caller's queries) and then run as `EXECUTE name(…)`:
PostgreSQL reuses the parse and, after a few executions, a generic plan.

Prepared statements belong to the server session. The names a connection has prepared are
kept on the connection wrapper (registry/postgresql/base.py) and forgotten whenever it
connects anew. A PREPARE is not undone by a ROLLBACK, so a failed transaction leaves the
statement prepared, as recorded. A pooler that hands one client's transactions to
different server sessions (PgBouncer in transaction mode) would lose them:
`DATABASE_PREPARED_STATEMENTS=false` sends the plain statement instead (docs/operations.md).

Elsewhere (SQLite, or PostgreSQL through Django's own backend) the statement runs as is.
"""

from collections.abc import Sequence
from typing import Any

from django.conf import settings

_TEXTS: dict[str, str] = {}


def _positional(sql: str) -> str:
    """`%s` placeholders as `$1`, `$2`, … (the statements here have no literal `%`)."""
    pieces = sql.split("%s")
    if any("%" in piece for piece in pieces):
        raise ValueError("a prepared statement's text may hold no % but its placeholders")
    out = pieces[0]
    for number, piece in enumerate(pieces[1:], start=1):
        out += f"${number}{piece}"
    return out


def execute_prepared(cursor: Any, name: str, sql: str, params: Sequence[Any]) -> None:
    """Run `sql` with `params` on `cursor` as the connection's prepared statement `name`.

    One name, one text: a second text under a name already used raises ValueError."""
    db = cursor.db  # the cursor's connection wrapper: `connection` is a per-thread proxy
    prepared = getattr(db, "prepared_statements", None)
    if prepared is None or not settings.DATABASE_PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    if name not in prepared:
        known = _TEXTS.setdefault(name, sql)
        if known != sql:
            raise ValueError(f"prepared statement {name!r} was used with another text")
        # Bookkeeping of the session, not a statement of the caller's: sent past Django's
        # query log and counters (a request's statements count the same, warm or cold).
        with db.wrap_database_errors:
            cursor.cursor.execute(f"PREPARE {name} AS {_positional(sql)}")
        prepared.add(name)
    placeholders = ", ".join(["%s"] * len(params))
    cursor.execute(f"EXECUTE {name}({placeholders})", params)
