"""Many writers and several integrators at once (PostgreSQL): no gaps, no duplicates."""

import json
import threading

import pytest
from django.db import connection, transaction

from ledger.integrity import ledger_verify
from ledger.models import LedgerEntry, PendingEvent
from ledger.services import ledger_append, ledger_integrate
from tests.conftest import requires_postgres
from tests.ledger.factories import integrate_all

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

WRITERS, EVENTS_EACH = 6, 25


def test_concurrent_commits_and_integrators_number_every_event_once():
    # given: writers commit one event per transaction (each commit also integrates, as
    # without a broker), while two more threads integrate in small batches
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def writer(index: int) -> None:
        try:
            for n in range(EVENTS_EACH):
                with transaction.atomic():
                    ledger_append(
                        kind="test.happened",
                        actor="system:test",
                        subject=("writer", index),
                        data={"n": n},
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def integrator() -> None:
        try:
            while not writers_done.is_set():
                ledger_integrate(max_batch=3)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    integrators = [threading.Thread(target=integrator) for _ in range(2)]

    # when
    for thread in writers + integrators:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in integrators:
        thread.join()
    integrate_all()

    # then
    assert errors == []
    total = WRITERS * EVENTS_EACH
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(total))
    assert LedgerEntry.objects.values("pending_id").distinct().count() == total
    assert not PendingEvent.objects.exists()
    for index in range(WRITERS):
        # one writer's events keep their commit order
        events = LedgerEntry.objects.filter(subject_rows__key=f"writer:{index}").order_by("seq")
        assert [json.loads(bytes(e.event))["data"]["n"] for e in events] == list(range(EVENTS_EACH))
    ledger_verify()
