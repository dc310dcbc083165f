"""Real threads against PostgreSQL: row locks must keep every Wh single."""

import datetime as dt
from collections import Counter
from fractions import Fraction

import pytest

from certificates import errors, services
from certificates.models import Bundle, IssuedPeriod, Transfer
from certificates.replay import replay_ledger
from certificates.storage import bundle_tree_ids as _descendants
from registry.errors import DomainError
from tests.certificates.conftest import THREADS, active_rest, run_together
from tests.certificates.factories import DAY, add_readings, device_with_owners
from tests.conftest import client_for, requires_postgres
from tests.factories import issuing_body_user

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def _leaves_partition(root: Bundle) -> list[Bundle]:
    """The current pieces of root: they must tile [unit_start, unit_end) exactly."""
    pieces = sorted(
        (b for b in Bundle.objects.filter(pk__in=_descendants([root.pk])) if b.status != 3),
        key=lambda b: b.unit_start,
    )
    at = root.unit_start
    for piece in pieces:
        assert piece.unit_start == at, "a gap or an overlap between pieces"
        at = piece.unit_end
    assert at == root.unit_end
    return pieces


def test_parallel_transfers_of_one_bundle_never_overdraw_it(race_world):
    # given a 1,000 Wh bundle and 20 buyers who each want 150 Wh (3,000 Wh in all)
    _device, _account, producer, bundle, receivers, _ib = race_world

    # when all 20 transfer at the same moment
    def work(i: int):
        return services.certificate_transfer(
            actor=producer, bundle_id=bundle.pk, to_account_id=receivers[i].pk, volume_wh=150
        )

    results = run_together(work)

    # then one wins; the others see the bundle split (409) and nothing is lost or doubled
    won = [r for r in results if isinstance(r, Transfer)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == THREADS - 1, results
    assert {type(e) for e in lost} == {errors.BundleNotActive}
    pieces = _leaves_partition(bundle)
    assert sum(p.volume_wh for p in pieces) == 1_000
    assert Transfer.objects.count() == 1
    assert replay_ledger().ok


def test_parallel_clients_taking_the_rest_each_time_sell_exactly_what_is_there(race_world):
    # given 20 buyers who each want 150 Wh of a 1,000 Wh bundle, retrying on the new rest
    _device, account, producer, bundle, receivers, _ib = race_world

    def work(i: int):
        for _attempt in range(500):
            rest = active_rest(bundle, account)
            if rest is None:
                return "nothing left"
            try:
                return services.certificate_transfer(
                    actor=producer, bundle_id=rest.pk, to_account_id=receivers[i].pk, volume_wh=150
                )
            except errors.BundleNotActive:
                continue  # someone split it first: look again
        return "gave up"

    results = run_together(work)

    # then six sales of 150 Wh fit in 1,000 Wh, the rest are refused, every Wh is accounted
    won = [r for r in results if isinstance(r, Transfer)]
    assert len(won) == 6, results
    assert all(
        isinstance(r, errors.InsufficientVolume) or r == "nothing left"
        for r in results
        if not isinstance(r, Transfer)
    ), results
    pieces = _leaves_partition(bundle)
    sold = sum(p.volume_wh for p in pieces if p.account_id != account.pk)
    assert sold == 900 and sum(p.volume_wh for p in pieces) == 1_000
    assert len({p.account_id for p in pieces if p.account_id != account.pk}) == 6
    assert replay_ledger().ok


def test_parallel_issuance_of_the_same_period_issues_once():
    # given a day of readings
    device, _accounts = device_with_owners([Fraction(1, 2), Fraction(1, 2)])
    add_readings(device)
    ib = issuing_body_user()

    # when eight issuers issue the same day at once
    def work(i: int):
        return services.certificate_issue(
            actor=ib, device_id=device.pk, period_start=DAY, period_end=DAY + dt.timedelta(days=1)
        )

    results = run_together(work, n=8)

    # then exactly one issuance; the others are refused as double issuance
    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes["Issuance"] == 1, results
    assert all(isinstance(r, errors.DoubleIssuance) for r in results if not hasattr(r, "unit_end"))
    assert IssuedPeriod.objects.filter(device=device).count() == 24
    assert Bundle.objects.filter(device=device).count() == 48
    assert replay_ledger().ok


def test_the_exclusion_constraint_refuses_overlaps_the_service_did_not_see(race_world):
    # given an issued hour; when a row overlapping it is written behind the service's back
    from django.db import IntegrityError, transaction

    device, _account, _producer, _bundle, _receivers, _ib = race_world
    period = IssuedPeriod.objects.filter(device=device).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        IssuedPeriod.objects.create(
            device=device,
            issuance=period.issuance,
            period_start=period.period_start + dt.timedelta(minutes=30),
            period_end=period.period_end + dt.timedelta(minutes=30),
            unit_start=10**9,
            unit_end=10**9 + 1,
        )


def test_a_retried_request_with_one_idempotency_key_transfers_once(race_world):
    # given the same POST sent 10 times at once with one Idempotency-Key
    _device, _account, producer, bundle, receivers, _ib = race_world
    url = f"/api/v1/bundles/{bundle.pk}/transfers/"
    body = {"to_account": receivers[0].number, "volume_wh": 100}

    def work(i: int):
        response = client_for(producer).post(
            url, body, format="json", HTTP_IDEMPOTENCY_KEY="order-2025-0001"
        )
        return response.status_code, response.json()

    results = run_together(work, n=10)

    # then one transfer happened and every answer is that transfer
    assert Transfer.objects.count() == 1
    transfer = Transfer.objects.get()
    for status, body_ in results:
        assert status == 201, body_
        assert body_["id"] == transfer.pk
    assert replay_ledger().ok
