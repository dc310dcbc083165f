"""Concurrent writers on PostgreSQL: two stop events for one session bill it once; two
receipt requests for one session retire once."""

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from django.db import connection

from certificates.models import Retirement
from charging import services
from charging.models import Bill, Receipt
from registry.errors import DomainError
from tests.charging.factories import DAY, charge, charging_world, renewable_hours, tx_event
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
START = DAY + dt.timedelta(hours=10, minutes=30)


def run_together(work: Callable[[int], object], n: int = 2) -> list[object]:
    """Run work(i) in n threads released at once; each result or the exception raised."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_concurrent_stop_events_bill_the_session_exactly_once():
    # given
    world = charging_world()
    charge(world, start=START, readings=[(0, 1000)])
    stops = [
        tx_event("Ended", 5 + i, START + dt.timedelta(minutes=40 + i), 6000 + i) for i in range(2)
    ]

    # when
    results = run_together(
        lambda i: services.transaction_event_record(
            actor=world.operator, station_id=world.station.pk, message=stops[i]
        )
    )

    # then
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], DomainError), results
    assert errors[0].code == "session_ended"
    assert Bill.objects.count() == 1


def test_two_concurrent_receipt_requests_retire_once():
    # given
    world = charging_world()
    account = renewable_hours(world, hours={10: 50_000})
    session = charge(world, start=START, readings=[(0, 0), (20, 3000)])

    # when
    results = run_together(
        lambda i: services.session_match(
            actor=world.operator, session_id=session.pk, account_id=account.pk
        )
    )

    # then
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and getattr(errors[0], "code", None) == "receipt_exists", results
    assert Receipt.objects.count() == 1
    assert list(Retirement.objects.values_list("volume_wh", flat=True)) == [3000]
