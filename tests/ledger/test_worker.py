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


def _node_locks(*, waiting: bool) -> int:
    """Other sessions' locks on the tree nodes table (waiting for one, or any)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = 'ledger_treenode'::regclass "
            "AND pid <> pg_backend_pid() AND NOT (granted AND %s)",
            [waiting],
        )
        return cursor.fetchone()[0]


def test_a_worker_killed_mid_integration_loses_nothing(celery_worker_process):
    # given: another session holds a lock that stops the integrator after it has
    # written entries and before it can write tree nodes
    blocker = _raw_connection()
    blocker.cursor().execute("LOCK TABLE ledger_treenode IN SHARE MODE")
    try:
        append_events(20)  # commits and kicks the worker
        wait_for(
            lambda: _node_locks(waiting=True) == 1,
            "the worker to block inside its integration transaction",
        )

        # when
        os.killpg(celery_worker_process.pid, signal.SIGKILL)
        celery_worker_process.wait()
    finally:
        blocker.rollback()
        blocker.close()
    wait_for(lambda: _node_locks(waiting=False) == 0, "the dead worker's transaction to end")

    # then: the batch is all there or not at all (a batch whose COMMIT travelled with its
    # rows, ledger_integrate_queued on PostgreSQL, may still commit once unblocked)
    integrated = LedgerEntry.objects.count()
    assert (integrated, PendingEvent.objects.count()) in {(0, 20), (20, 0)}
    head = TreeHead.objects.filter(pk=1).first()
    assert (head.size if head else 0) == integrated

    # and integrating again numbers every event once
    assert integrate_all() == 20 - integrated
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(20))
    ledger_verify()
