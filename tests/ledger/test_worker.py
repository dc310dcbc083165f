"""The integrator in a real Celery worker (PostgreSQL + a broker): kicked on commit, and a
worker killed in the middle of an integration loses nothing."""

import os
import signal
import time

import psycopg2
import pytest
from django.db import connection

from ledger import kick as kick_module
from ledger.integrity import ledger_verify
from ledger.kick import kick_flag
from ledger.models import LedgerEntry, PendingEvent, TreeHead
from tests.conftest import requires_postgres
from tests.ledger.factories import append_events, integrate_all

pytestmark = [requires_postgres, pytest.mark.celery_worker]


@pytest.fixture(autouse=True)
def no_stale_kick_flag():
    kick_flag().clear()
    kick_module._quiet_until = 0.0


DEADLINE = 60  # seconds to wait for the worker; a bound on hanging, not a speed assertion


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _raw_connection():
    db = connection.settings_dict
    return psycopg2.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        password=db["PASSWORD"] or None,
    )


def test_the_worker_integrates_events_after_commit(celery_worker_process):
    # when
    append_events(5)
    append_events(3, start=5)

    # then
    wait_for(lambda: LedgerEntry.objects.count() == 8, "8 entries")
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(8))
    assert not PendingEvent.objects.exists()
    ledger_verify()


def test_commits_in_quick_succession_are_all_integrated(celery_worker_process):
    """Most of these kicks find the flag held and stay quiet: the worker still sees them."""
    # when
    for n in range(40):
        append_events(1, start=n)
        time.sleep(0.02 * (n % 7) / 6)  # 0-20 ms apart: around the task's linger and tail

    # then
    wait_for(lambda: LedgerEntry.objects.count() == 40, "40 entries")
    assert not PendingEvent.objects.exists()


def test_a_worker_killed_mid_integration_loses_nothing(celery_worker_process):
    # given: another session holds a lock that stops the integrator after it has
    # written entries and before it can write tree nodes
    blocker = _raw_connection()
    blocker.cursor().execute("LOCK TABLE ledger_treenode IN SHARE MODE")
    try:
        append_events(20)  # commits and kicks the worker

        def worker_waits() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'COPY ledger_treenode%%'"
                )
                return cursor.fetchone()[0] == 1

        wait_for(worker_waits, "the worker to block inside its integration transaction")

        # when
        os.killpg(celery_worker_process.pid, signal.SIGKILL)
        celery_worker_process.wait()
    finally:
        blocker.rollback()
        blocker.close()

    def worker_session_gone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'COPY ledger_%%'"
            )
            return cursor.fetchone()[0] == 0

    wait_for(worker_session_gone, "PostgreSQL to end the dead worker's session")

    # then: the half-done integration rolled back
    assert LedgerEntry.objects.count() == 0
    assert PendingEvent.objects.count() == 20
    head = TreeHead.objects.filter(pk=1).first()
    assert head is None or head.size == 0

    # and integrating again numbers every event once
    assert integrate_all() == 20
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(20))
    ledger_verify()
