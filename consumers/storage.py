"""The consumers app's hand-written SQL: the consent check's one SELECT and one INSERT
(and their forms for many sites and many records, for reports over many sites).

Every read of household data by someone else passes here, so the check is two statements
instead of the ORM's query building (measured: the ORM version cost several times the
read it guards; see benchmarks/consumers_bench.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db import connection

_GRANTS = (
    "SELECT c.id, c.grantee_id, c.resolution, c.revoked_at IS NOT NULL, m.sitemeter_id "
    "FROM consumers_consent c "
    "JOIN consumers_consent_meters m ON m.consent_id = c.id "
    "WHERE c.site_id = %s AND c.grantee_id IN ({orgs}) AND c.purpose {op} %s "
    "AND c.valid_from <= %s AND c.valid_to > %s "
    "ORDER BY c.id"
)

# The reader's approved organisations and, in the same round trip, the site's grants to
# them whose period holds now: one statement instead of a membership query and a grants
# query (measured in benchmarks/consumers_bench.py). Membership rows have a NULL consent id.
_READER_GRANTS = (
    "WITH orgs AS (SELECT m.organisation_id FROM accounts_membership m "
    "JOIN accounts_organisation o ON o.id = m.organisation_id "
    "WHERE m.user_id = %s AND o.status = 'approved') "
    "SELECT NULL, organisation_id, NULL, NULL, NULL FROM orgs "
    "UNION ALL "
    "SELECT c.id, c.grantee_id, c.resolution, c.revoked_at IS NOT NULL, m.sitemeter_id "
    "FROM consumers_consent c "
    "JOIN consumers_consent_meters m ON m.consent_id = c.id "
    "WHERE c.site_id = %s AND c.grantee_id IN (SELECT organisation_id FROM orgs) "
    "AND c.purpose {op} %s AND c.valid_from <= %s AND c.valid_to > %s"
)

# `_READER_GRANTS` for many sites at once (reports over many sites or members); the site id
# comes first in every row.
_READER_GRANTS_MANY = (
    "WITH orgs AS (SELECT m.organisation_id FROM accounts_membership m "
    "JOIN accounts_organisation o ON o.id = m.organisation_id "
    "WHERE m.user_id = %s AND o.status = 'approved') "
    "SELECT NULL, NULL, organisation_id, NULL, NULL, NULL FROM orgs "
    "UNION ALL "
    "SELECT c.site_id, c.id, c.grantee_id, c.resolution, c.revoked_at IS NOT NULL, "
    "m.sitemeter_id "
    "FROM consumers_consent c "
    "JOIN consumers_consent_meters m ON m.consent_id = c.id "
    "WHERE c.site_id IN ({sites}) AND c.grantee_id IN (SELECT organisation_id FROM orgs) "
    "AND c.purpose {op} %s AND c.valid_from <= %s AND c.valid_to > %s"
)

_INSERT_MANY = (
    "INSERT INTO consumers_dataaccess (household_id, site_id, consent_id, reader_id, "
    "reader_organisation_id, at, what, meter_ids, resolution, period_start, period_end, "
    "outcome, reason) VALUES {rows}"
)
_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
INSERT_ROWS = 500  # rows per multi-row INSERT (SQLite allows 32,766 parameters)

_INSERT = (
    "INSERT INTO consumers_dataaccess (household_id, site_id, consent_id, reader_id, "
    "reader_organisation_id, at, what, meter_ids, resolution, period_start, period_end, "
    "outcome, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _db_time(value: dt.datetime | None) -> Any:
    if value is None or connection.vendor == "postgresql":
        return value
    return connection.ops.adapt_datetimefield_value(value)


def consent_grant_rows(
    *, site_id: int, org_ids: list[int], community: bool, now: dt.datetime, purpose: str = ""
) -> list[tuple[int, int, str, bool, int]]:
    """(consent id, grantee id, resolution, revoked?, site meter id) of the site's grants to
    these organisations whose period holds `now`, one row per meter, oldest grant first:
    grants for `purpose` when given, else community grants or all others."""
    if purpose:
        op, value = "=", purpose
    else:
        op, value = ("=" if community else "<>"), "community"
    sql = _GRANTS.format(orgs=", ".join(["%s"] * len(org_ids)), op=op)
    with connection.cursor() as cursor:
        cursor.execute(sql, [site_id, *org_ids, value, _db_time(now), _db_time(now)])
        return [(row[0], row[1], row[2], bool(row[3]), row[4]) for row in cursor.fetchall()]


def reader_grant_rows(
    *, user_id: int, site_id: int, community: bool, now: dt.datetime, purpose: str = ""
) -> tuple[list[int], list[tuple[int, int, str, bool, int]]]:
    """The user's approved organisations, and the rows of `consent_grant_rows` for them, in
    one statement."""
    if purpose:
        op, value = "=", purpose
    else:
        op, value = ("=" if community else "<>"), "community"
    with connection.cursor() as cursor:
        cursor.execute(
            _READER_GRANTS.format(op=op), [user_id, site_id, value, _db_time(now), _db_time(now)]
        )
        rows = cursor.fetchall()
    orgs = [row[1] for row in rows if row[0] is None]
    grants = sorted(
        (row[0], row[1], row[2], bool(row[3]), row[4]) for row in rows if row[0] is not None
    )
    return orgs, grants


def reader_grant_rows_many(
    *, user_id: int, site_ids: list[int], community: bool, now: dt.datetime, purpose: str = ""
) -> tuple[list[int], list[tuple[int, int, int, str, bool, int]]]:
    """`reader_grant_rows` for many sites in one statement: the user's approved
    organisations, and (site id, consent id, grantee id, resolution, revoked?, site meter
    id) of the sites' grants to them in force now, by site and grant."""
    if purpose:
        op, value = "=", purpose
    else:
        op, value = ("=" if community else "<>"), "community"
    if not site_ids:
        site_ids = [0]  # no site: the organisations alone
    sql = _READER_GRANTS_MANY.format(sites=", ".join(["%s"] * len(site_ids)), op=op)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, *site_ids, value, _db_time(now), _db_time(now)])
        rows = cursor.fetchall()
    orgs = [row[2] for row in rows if row[1] is None]
    grants = sorted(
        (row[0], row[1], row[2], row[3], bool(row[4]), row[5]) for row in rows if row[1] is not None
    )
    return orgs, grants


def _values(record: dict[str, Any]) -> list[Any]:
    return [
        record["household_id"],
        record["site_id"],
        record["consent_id"],
        record["reader_id"],
        record["reader_organisation_id"],
        _db_time(record["at"]),
        record["what"],
        json.dumps(record["meter_ids"]),
        record["resolution"],
        _db_time(record["period_start"]),
        _db_time(record["period_end"]),
        record["outcome"],
        record["reason"],
    ]


def data_access_insert_many(records: list[dict[str, Any]]) -> None:
    """Record many reads (the keyword arguments of `data_access_insert` each) in one
    multi-row INSERT per `INSERT_ROWS`, in order."""
    for i in range(0, len(records), INSERT_ROWS):
        chunk = records[i : i + INSERT_ROWS]
        sql = _INSERT_MANY.format(rows=", ".join([_ROW] * len(chunk)))
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for record in chunk for value in _values(record)])


def data_access_insert(
    *,
    household_id: int,
    site_id: int,
    consent_id: int | None,
    reader_id: int | None,
    reader_organisation_id: int | None,
    at: dt.datetime,
    what: str,
    meter_ids: list[int],
    resolution: str,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
    outcome: str,
    reason: str,
) -> None:
    """Record one read of household data (consumers.models.DataAccess)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [
                household_id,
                site_id,
                consent_id,
                reader_id,
                reader_organisation_id,
                _db_time(at),
                what,
                json.dumps(meter_ids),
                resolution,
                _db_time(period_start),
                _db_time(period_end),
                outcome,
                reason,
            ],
        )
