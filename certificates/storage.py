"""The certificates app's hand-written SQL: every raw statement of the app lives here.

Moving bundles (transfer, batch transfer, retirement, reservation, export), issuance's
multi-row inserts, and the walks down a bundle's split tree (withdrawal) and up to its
issued root (history).

Measured on the transfer path, the ORM cost more than the work: ten statements and about
4 ms of Python around 2 ms of database time. Here the lock, the holder's permission and
the receiving account's acceptance policy come back in two statements, and the writes go
out as one UPDATE and one INSERT … RETURNING each. Portable SQL (PostgreSQL, SQLite 3.35+);
only the row-lock clauses are PostgreSQL's. Rows come back as model instances
(`Model.from_db`), so the services keep working with models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection

from accounts.models import Account, Membership, Organisation
from certificates.models import Bundle, Issuance, Transfer
from registry.deferred_writes import execute_or_defer
from registry.joined_rows import JoinedSelect, part
from registry.prepared import execute_prepared

_BUNDLE_FIELDS = [
    "id",
    "device_id",
    "issuance_id",
    "account_id",
    "parent_id",
    "unit_start",
    "unit_end",
    "period_start",
    "period_end",
    "expires_on",
    "status",
]
# In the model's field order: Model.from_db pairs names with values in that order.
_ACCOUNT_FIELDS = ["id", "organisation_id", "number", "kind", "status"]
_MOVING_ROLES = (Membership.Role.OPERATOR.value, Membership.Role.ADMIN.value)

# The one-bundle read (GET /api/v1/bundles/{id}/): the bundle and what BundleOutputSerializer
# shows of its issuance, account and organisation, in one statement. Compiling the ORM's
# three-join query cost more than running it (benchmarks/README.md, "One-bundle read").
_BUNDLE_FACE = JoinedSelect(
    part(Bundle, "b", _BUNDLE_FIELDS),
    part(
        Issuance,
        "i",
        (
            "id",
            "device_name",
            "technology_code",
            "energy_source_code",
            "grid_area_code",
            "country",
            "capacity_w",
            "commissioning_date",
            "support",
            "emission_factor_g_per_kwh",
            "is_storage",
            "issued_at",
            "issuing_body_id",
        ),
    ),
    part(Account, "a", ("id", "organisation_id", "number")),
    part(Organisation, "o", ("id", "legal_name")),
)
_BIGINT_MAX = 2**63 - 1


def _may_exist(pk: int | None) -> bool:
    """Whether a row could have this id. One beyond bigint names nothing, and PostgreSQL
    refuses it as a prepared statement's bigint parameter rather than finding no row."""
    return pk is not None and 0 < pk <= _BIGINT_MAX


def holder_may_move(role: str | None, organisation_status: str) -> bool:
    """accounts.permissions.user_can_act_for(role=OPERATOR), from the values the lock read.

    Kept equal to it by tests/certificates/test_storage.py.
    """
    return role in _MOVING_ROLES and organisation_status == Organisation.Status.APPROVED


@dataclass(frozen=True)
class Held:
    """A locked bundle with its account and whether the actor may move it out."""

    bundle: Bundle
    account: Account
    may_move: bool


def _marks(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


# A bundle to move, with its holder's account, the organisation's status and the actor's
# membership role (a LEFT JOIN: no membership, no role). Through `JoinedSelect`, not
# `Model.objects.raw()`: that maps the cursor's columns onto the model again on every
# call: 242 against 188 µs a bundle, and 127 against 91 µs for the receiving account
# (benchmarks/README.md, "Transfer locks").
_MOVE = JoinedSelect(
    part(Bundle, "b", _BUNDLE_FIELDS),
    extra=(
        "a.organisation_id",
        "a.number",
        "a.kind",
        "a.status",
        "o.status",
        "o.legal_name",
        "m.role",
    ),
)
_ORGANISATION_FIELDS = ["id", "legal_name", "status"]  # in the model's order, as from_db reads


def bundles_lock_for_move(bundle_ids: Sequence[int], user_id: int | None) -> dict[int, Held]:
    """Lock bundles FOR UPDATE in primary-key order and read who may move them, in one query.

    The holder's account (with its organisation's status and name loaded) and the actor's
    membership role come back with each bundle (a LEFT JOIN: no membership, no role).
    """
    ids = sorted({pk for pk in bundle_ids if _may_exist(pk)})
    if not ids:
        return {}
    tail = (
        "FROM certificates_bundle b "
        "JOIN accounts_account a ON a.id = b.account_id "
        "JOIN accounts_organisation o ON o.id = a.organisation_id "
        "LEFT JOIN accounts_membership m "
        "ON m.organisation_id = a.organisation_id AND m.user_id = %s "
    )
    lock = " FOR UPDATE OF b" if connection.vendor == "postgresql" else ""
    if len(ids) == 1:
        # The hot case, one text: prepared, PostgreSQL plans the four-table join once
        # (an array parameter would be planned anew on every call). benchmarks/README.md,
        # "Transfer statements, prepared".
        where, params, prepared = "b.id = %s", [user_id, ids[0]], "gp_bundle_lock_for_move"
    else:
        where, params, prepared = f"b.id IN ({_marks(ids)})", [user_id, *ids], ""
    rows = _MOVE.each(tail + f"WHERE {where} ORDER BY b.id{lock}", params, prepared=prepared)
    held: dict[int, Held] = {}
    for (bundle,), (organisation_id, number, kind, status, org_status, name, role) in rows:
        account = Account.from_db(
            connection.alias,
            _ACCOUNT_FIELDS,
            [bundle.account_id, organisation_id, number, kind, status],
        )
        account.organisation = Organisation.from_db(
            connection.alias, _ORGANISATION_FIELDS, [organisation_id, name, org_status]
        )
        may_move = holder_may_move(role, org_status)
        held[bundle.pk] = Held(bundle, account, may_move)
    return held


def bundle_with_face(bundle_id: int) -> Bundle | None:
    """The bundle with its issuance, account and the account's organisation loaded (the
    fields the public read shows; the rest deferred), or None."""
    if not _may_exist(bundle_id):
        return None
    found = _BUNDLE_FACE.one(
        "FROM certificates_bundle b "
        "JOIN certificates_issuance i ON i.id = b.issuance_id "
        "JOIN accounts_account a ON a.id = b.account_id "
        "JOIN accounts_organisation o ON o.id = a.organisation_id "
        "WHERE b.id = %s",
        [bundle_id],
        prepared="gp_bundle_with_face",
    )
    if found is None:
        return None
    bundle, issuance, account, organisation = found
    account.organisation = organisation
    bundle.account = account
    bundle.issuance = issuance
    return bundle


def bundles_lock_rows(bundle_ids: Sequence[int]) -> dict[int, Bundle]:
    """Lock bundles FOR UPDATE in primary-key order (the ones that exist)."""
    ids = sorted(set(bundle_ids))
    if not ids:
        return {}
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    sql = (
        f"SELECT {', '.join(_BUNDLE_FIELDS)} FROM certificates_bundle "  # noqa: S608
        f"WHERE id IN ({_marks(ids)}) ORDER BY id{lock}"
    )
    return {bundle.pk: bundle for bundle in Bundle.objects.raw(sql, ids)}


# A receiving account and whether its organisation's policy asks for acceptance.
_RECEIVING = JoinedSelect(part(Account, "a", _ACCOUNT_FIELDS), extra=("p.require_acceptance",))
_RECEIVING_FROM = (
    "FROM accounts_account a "
    "LEFT JOIN certificates_transferpolicy p ON p.organisation_id = a.organisation_id "
)


def account_lock_for_receiving(
    *, account_id: int | None = None, number: str | None = None
) -> tuple[Account, bool] | None:
    """The receiving account, by id or by public number (FOR KEY SHARE on PostgreSQL), and
    its organisation's policy.

    FOR KEY SHARE waits for a concurrent `account_close` (FOR UPDATE) and then reads the
    account as it committed; transfers into one account do not block each other.
    """
    if number is None and not _may_exist(account_id):
        return None
    lock = " FOR KEY SHARE OF a" if connection.vendor == "postgresql" else ""
    by = "id" if number is None else "number"
    rows = _RECEIVING.each(
        _RECEIVING_FROM + f"WHERE a.{by} = %s{lock}",
        [account_id if number is None else number],
        prepared=f"gp_account_lock_receiving_by_{by}",
    )
    if not rows:
        return None
    (account,), (requires_acceptance,) = rows[0]
    return account, bool(requires_acceptance)


def accounts_lock_for_receiving(numbers: Sequence[str]) -> dict[str, tuple[Account, bool]]:
    """`account_lock_for_receiving` for several accounts by public number, in one
    statement (id order): each found account and its organisation's policy, by number."""
    if not numbers:
        return {}
    lock = " FOR KEY SHARE OF a" if connection.vendor == "postgresql" else ""
    rows = _RECEIVING.each(
        _RECEIVING_FROM + f"WHERE a.number IN ({_marks(numbers)}) ORDER BY a.id{lock}",
        list(numbers),
    )
    return {account.number: (account, bool(extra[0])) for (account,), extra in rows}


def bundles_update(
    bundle_ids: Sequence[int], *, status: int, account_id: int | None = None
) -> None:
    """Set the status (and the account) of bundles."""
    if not bundle_ids:
        return
    sets, params = ["status = %s"], [status]
    if account_id is not None:
        sets.append("account_id = %s")
        params.append(account_id)
    execute_or_defer(
        f"UPDATE certificates_bundle SET {', '.join(sets)} "  # noqa: S608
        f"WHERE id IN ({_marks(bundle_ids)})",
        [*params, *bundle_ids],
    )


PREPARED_INSERT_ROWS = 2
"""Inserts of up to this many rows (a transfer's row; a split's two children) run as
prepared statements, one per table and row count; longer ones vary too much to keep."""


def _insert_returning_ids(table: str, columns: list[str], rows: list[list]) -> list[int]:
    one = f"({_marks(columns)})"
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES {', '.join([one] * len(rows))} RETURNING id"
    )
    params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        if len(rows) <= PREPARED_INSERT_ROWS:
            execute_prepared(cursor, f"gp_{table}_insert_{len(rows)}", sql, params)
        else:
            cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


INSERT_CHUNK = 1000  # rows per statement: 10,000 bound values (SQLite allows 32,766)


def bundle_rows_insert(rows: Sequence[Sequence]) -> list[int]:
    """Insert bundles given as rows in `_BUNDLE_FIELDS[1:]` order; their ids, in order."""
    ops = connection.ops
    ids: list[int] = []
    for offset in range(0, len(rows), INSERT_CHUNK):
        chunk = [
            [
                *row[:6],
                ops.adapt_datetimefield_value(row[6]),
                ops.adapt_datetimefield_value(row[7]),
                ops.adapt_datefield_value(row[8]),
                row[9],
            ]
            for row in rows[offset : offset + INSERT_CHUNK]
        ]
        ids += _insert_returning_ids("certificates_bundle", _BUNDLE_FIELDS[1:], chunk)
    return ids


def issued_periods_insert(rows: Sequence[Sequence]) -> None:
    """Insert issued periods: (device_id, issuance_id, period_start, period_end, unit_start,
    unit_end) rows."""
    ops = connection.ops
    columns = ["device_id", "issuance_id", "period_start", "period_end", "unit_start", "unit_end"]
    one = f"({_marks(columns)})"
    for offset in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[offset : offset + INSERT_CHUNK]
        values = []
        for row in chunk:
            values += [
                row[0],
                row[1],
                ops.adapt_datetimefield_value(row[2]),
                ops.adapt_datetimefield_value(row[3]),
                row[4],
                row[5],
            ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO certificates_issuedperiod ({', '.join(columns)}) "  # noqa: S608
                f"VALUES {', '.join([one] * len(chunk))}",
                values,
            )


def bundles_insert(bundles: Sequence[Bundle]) -> None:
    """Insert new bundles in one statement and give them their ids."""
    if not bundles:
        return
    ops = connection.ops
    columns = _BUNDLE_FIELDS[1:]
    rows = [
        [
            b.device_id,
            b.issuance_id,
            b.account_id,
            b.parent_id,
            b.unit_start,
            b.unit_end,
            ops.adapt_datetimefield_value(b.period_start),
            ops.adapt_datetimefield_value(b.period_end),
            ops.adapt_datefield_value(b.expires_on),
            b.status,
        ]
        for b in bundles
    ]
    for bundle, pk in zip(
        bundles, _insert_returning_ids("certificates_bundle", columns, rows), strict=True
    ):
        bundle.pk = pk
        bundle._state.adding = False
        bundle._state.db = connection.alias


def transfers_insert(transfers: Sequence[Transfer]) -> None:
    """Insert transfer rows in one statement and give them their ids."""
    if not transfers:
        return
    ops = connection.ops
    columns = [
        "bundle_id",
        "source_id",
        "from_account_id",
        "to_account_id",
        "volume_wh",
        "status",
        "created_by_id",
        "created_at",
    ]
    rows = [
        [
            t.bundle_id,
            t.source_id,
            t.from_account_id,
            t.to_account_id,
            t.volume_wh,
            t.status,
            t.created_by_id,
            ops.adapt_datetimefield_value(t.created_at),
        ]
        for t in transfers
    ]
    for transfer, pk in zip(
        transfers, _insert_returning_ids("certificates_transfer", columns, rows), strict=True
    ):
        transfer.pk = pk
        transfer._state.adding = False
        transfer._state.db = connection.alias


def bundle_tree_ids(bundle_ids: Iterable[int]) -> set[int]:
    """The bundles and all bundles split from them, at any depth (a recursive query)."""
    ids = sorted(set(bundle_ids))
    if not ids:
        return set()
    table = Bundle._meta.db_table
    sql = (
        f"WITH RECURSIVE tree(id) AS ("  # noqa: S608 - table name from the model, values bound
        f" SELECT id FROM {table} WHERE id IN ({_marks(ids)})"
        f" UNION SELECT b.id FROM {table} b JOIN tree t ON b.parent_id = t.id"
        f") SELECT id FROM tree"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return {row[0] for row in cursor.fetchall()}


def bundle_ancestor_ids(bundle_id: int) -> list[int]:
    """Ids from the issued root down to `bundle_id` (a recursive query, any depth)."""
    table = Bundle._meta.db_table
    sql = (
        f"WITH RECURSIVE chain(id, parent_id, depth) AS ("  # noqa: S608 - model table name
        f" SELECT id, parent_id, 0 FROM {table} WHERE id = %s"
        f" UNION ALL SELECT b.id, b.parent_id, c.depth + 1 FROM {table} b"
        f" JOIN chain c ON b.id = c.parent_id"
        f") SELECT id FROM chain ORDER BY depth DESC"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [bundle_id])
        return [row[0] for row in cursor.fetchall()]
