"""`rows_update` writes what `bulk_update` writes (JSON, times, nulls, text), by primary
key, in one statement on PostgreSQL that may travel with the next one."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contracts.models import ContractExecution
from contracts.services.execution import OUTCOME_FIELDS
from registry.deferred_writes import deferred_writes
from registry.row_updates import rows_update
from tests.contracts.conftest import build_world, make_forward, make_ppa

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 12, 6, 14, 0, tzinfo=dt.UTC)
STATUSES = [ContractExecution.Status.APPLIED, ContractExecution.Status.FAILED]


def executions(n: int) -> list[ContractExecution]:
    world = build_world()
    contracts = [make_ppa(world, share_bp=1_000), make_forward(world, world.buyer_account, 1_000)]
    return [
        ContractExecution.objects.create(
            contract=contracts[i % 2],
            trigger=f"test:{i}",
            version=1,
            status=ContractExecution.Status.PARKED,
            created_at=START,
            updated_at=START,
        )
        for i in range(n)
    ]


def changed(rows: list[ContractExecution]) -> None:
    at = START + dt.timedelta(days=1)
    for i, row in enumerate(rows):
        row.status = STATUSES[i % 2]
        row.reason_code = "" if i % 2 == 0 else "units_short"
        row.reason_detail = f'it\'s {i}% done; {{braces}} and "quotes"'
        row.result = {"i": i, "nested": [1, None, "x"], "none": None} if i % 3 else {}
        row.attempts = i + 1
        row.updated_at = at + dt.timedelta(minutes=i)


def stored(rows: list[ContractExecution]) -> list[tuple]:
    found = ContractExecution.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")
    return list(found.values_list("pk", *OUTCOME_FIELDS))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_rows_update_writes_what_bulk_update_writes(n):
    # given n executions changed in memory
    rows = executions(n)
    changed(rows)

    # when written by bulk_update (undone), then by rows_update
    with transaction.atomic():
        ContractExecution.objects.bulk_update(rows, OUTCOME_FIELDS)
        expected = stored(rows)
        transaction.set_rollback(True)
    assert stored(rows) != expected
    rows_update(ContractExecution, rows, OUTCOME_FIELDS)

    # then the rows hold the same values
    assert stored(rows) == expected


def test_rows_update_touches_only_the_rows_and_fields_named():
    # given three executions, one of them changed
    rows = executions(3)
    before = stored(rows)
    rows[1].attempts, rows[1].status = 9, ContractExecution.Status.PARKED

    # when only that row's attempts are written
    rows_update(ContractExecution, [rows[1]], ["attempts"])

    # then nothing else moved
    after = stored(rows)
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1][OUTCOME_FIELDS.index("attempts") + 1] == 9
    assert after[1][OUTCOME_FIELDS.index("status") + 1] == before[1][1]


def test_inside_deferred_writes_the_update_travels_with_the_next_statement():
    # given two changed executions
    rows = executions(2)
    changed(rows)

    # when written inside a deferred_writes block, then read
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), deferred_writes():
        rows_update(ContractExecution, rows, OUTCOME_FIELDS)
        statuses = list(
            ContractExecution.objects.filter(pk__in=[r.pk for r in rows])
            .order_by("pk")
            .values_list("status", flat=True)
        )

    # then the read saw the update; on PostgreSQL both went in one round trip
    assert statuses == STATUSES
    sql = [q["sql"] for q in queries.captured_queries if "contracts_contractexecution" in q["sql"]]
    if connection.vendor == "postgresql":
        assert len(sql) == 1 and sql[0].startswith("UPDATE")
    else:
        assert len(sql) == 2
