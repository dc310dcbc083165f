"""PostgreSQL paths: COPY inserts, held-batch moves, and concurrent writers."""

import base64
import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from assets import services
from assets.errors import ReadingsAlreadyIssued, ReadingsConflict
from assets.models import PendingReading, Reading
from assets.readings_io import iter_mapping_rows
from tests.assets.factories import hours_ago, interval_row
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def submit(actor, rows):
    return services.readings_submit(actor=actor, rows=iter_mapping_rows(rows))


def run_in_threads(*jobs):
    """Run each job in its own thread (own connection), started together; return results."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def worker(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except Exception as exc:  # collected for the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_copy_stores_exact_rows_and_signatures(producer, meter, key):
    rows = [interval_row(meter, hours_ago(h), 1000 + h, key=key) for h in range(30, 0, -1)]
    batch = submit(producer, rows).batch
    stored = list(Reading.objects.filter(batch=batch).order_by("index_in_batch"))
    assert [r.wh for r in stored] == [1000 + h for h in range(30, 0, -1)]
    assert [r.start for r in stored] == [hours_ago(h) for h in range(30, 0, -1)]
    assert [base64.b64encode(bytes(r.signature)).decode() for r in stored] == [
        r["signature"] for r in rows
    ]


def test_held_batch_is_copied_then_moved_on_acceptance(producer, issuer, meter, key):
    rows = [interval_row(meter, hours_ago(h), 10**6 if h == 3 else 5, key=key) for h in (4, 3, 2)]
    batch = submit(producer, rows).batch
    assert batch.status == "held"
    assert list(
        PendingReading.objects.filter(batch=batch)
        .order_by("index_in_batch")
        .values_list("flags", flat=True)
    ) == ["", "over_capacity", ""]
    services.reading_batch_accept(actor=issuer, batch_id=batch.pk)
    assert Reading.objects.filter(batch=batch).count() == 3
    assert not PendingReading.objects.filter(batch=batch).exists()


def test_concurrent_conflicting_batches_one_wins(producer, meter, key):
    a = [interval_row(meter, hours_ago(h), 100, key=key) for h in range(48, 0, -1)]
    b = [interval_row(meter, hours_ago(h), 200, key=key) for h in range(48, 0, -1)]
    results = run_in_threads(lambda: submit(producer, a), lambda: submit(producer, b))
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert isinstance(losses[0], ReadingsConflict)
    assert Reading.objects.filter(meter=meter).count() == 48
    assert len(set(Reading.objects.filter(meter=meter).values_list("wh", flat=True))) == 1


def test_concurrent_identical_batches_store_once(producer, meter, key):
    rows = [interval_row(meter, hours_ago(h), 100, key=key) for h in range(24, 0, -1)]
    results = run_in_threads(lambda: submit(producer, rows), lambda: submit(producer, rows))
    assert sorted(r.status for r in results) == ["accepted", "unchanged"], results
    assert Reading.objects.filter(meter=meter).count() == 24


def test_concurrent_issuance_marks_each_reading_once(producer, meter, key):
    batch = submit(
        producer, [interval_row(meter, hours_ago(h), 1, key=key) for h in (3, 2, 1)]
    ).batch
    ids = list(Reading.objects.filter(batch=batch).values_list("pk", flat=True))

    def issue():
        with transaction.atomic():
            return services.readings_mark_issued(reading_ids=ids, at=timezone.now())

    results = run_in_threads(issue, issue)
    assert sorted(type(r).__name__ for r in results) == ["ReadingsAlreadyIssued", "int"], results
    assert any(isinstance(r, ReadingsAlreadyIssued) for r in results)
    assert Reading.objects.filter(pk__in=ids, issued_at__isnull=True).count() == 0


def test_copied_rows_foreign_keys_are_checked_before_the_signatures_are_awaited(
    producer, meter, key, monkeypatch
):
    """The second of work COMMIT would spend checking 100,000 rows' foreign keys runs while
    the signature threads still verify (benchmarks/README.md, Assets)."""
    from assets.ingest import ReadingIngest

    order: list[str] = []
    wait = ReadingIngest.wait_for_signatures

    def waiting(self):
        order.append("wait_for_signatures")
        return wait(self)

    def statement(execute, sql, params, many, context):
        if sql.startswith("SET CONSTRAINTS"):
            with connection.connection.cursor() as raw:  # past this wrapper
                raw.execute("SELECT count(*) FROM assets_reading")
                order.append(f"{sql} ({raw.fetchone()[0]} readings in)")
        return execute(sql, params, many, context)

    monkeypatch.setattr(ReadingIngest, "wait_for_signatures", waiting)
    rows = [interval_row(meter, hours_ago(h), 10 + h, key=key) for h in (3, 2, 1)]
    with connection.execute_wrapper(statement):
        assert submit(producer, rows).status == "accepted"
    assert order == [
        "SET CONSTRAINTS ALL IMMEDIATE (3 readings in)",  # the queued checks run here
        "SET CONSTRAINTS ALL DEFERRED (3 readings in)",
        "wait_for_signatures",
    ]


def test_a_submission_leaves_its_callers_foreign_keys_deferred(producer, meter, key):
    """A caller's transaction still inserts a row before the row it names, as Django's
    DEFERRABLE INITIALLY DEFERRED foreign keys allow, after a submission inside it."""
    rows = [interval_row(meter, hours_ago(h), 10 + h, key=key) for h in (2, 1)]
    missing = 2**62
    updated = []
    with pytest.raises(IntegrityError), transaction.atomic():
        batch = submit(producer, rows).batch
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE assets_reading SET meter_id = %s WHERE batch_id = %s", [missing, batch.pk]
            )  # not refused here: checked at COMMIT
            updated.append(cursor.rowcount)
    assert updated == [2]
    assert not Reading.objects.filter(meter=meter).exists()
