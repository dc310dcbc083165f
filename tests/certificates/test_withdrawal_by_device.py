"""Withdrawal by device and period: every certificate a device produced in [start, end),
wherever it is held, in one transaction with one `certificate.withdrawn` event."""

import datetime as dt

import pytest

from certificates import services
from certificates.models import Bundle, IssuedPeriod, Transfer, Withdrawal, WithdrawalItem
from registry.errors import DomainError
from tests.certificates.conftest import snapshot
from tests.certificates.factories import DAY
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def refused(call, code: str, status: int) -> DomainError:
    """Run `call`, expect `code` and `status`, and check that nothing was written."""
    before, event = snapshot(), last_event_id()
    with pytest.raises(DomainError) as info:
        call()
    assert (info.value.code, info.value.status) == (code, status), info.value.detail
    assert snapshot() == before
    assert events_since(event) == []
    return info.value


def _withdraw(issued, start, end, **kwargs):
    return services.certificate_withdraw_for_device(
        **{
            "actor": issued.ib,
            "device_id": issued.device.pk,
            "period_start": start,
            "period_end": end,
            "reason": "Meter miscalibrated",
            **kwargs,
        }
    )


def _spread(issued):
    """Hour 2 partly sold and partly retired by the buyer; hour 3 partly pending to the
    buyer (reserved at the producer). Returns (sold-and-retired, pending transfer)."""
    sold = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[2].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=300,
    ).bundle
    services.certificate_retire(
        actor=issued.buyer,
        items=[(sold.pk, 100)],
        beneficiary_name="B",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + HOUR,
        purpose="disclosure",
    )
    pending = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[3].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=50,
        require_acceptance=True,
    )
    return sold, pending


def test_every_certificate_of_the_period_is_withdrawn_wherever_it_is_held(issued):
    # given hours 2 and 3 spread over holders, one piece retired, one transfer pending
    _sold, pending = _spread(issued)
    start, end = DAY + 2 * HOUR, DAY + 4 * HOUR
    in_period = Bundle.objects.filter(
        device=issued.device, period_start__gte=start, period_end__lte=end
    ).exclude(status=Bundle.Status.SPLIT)
    leaves = {b.pk: b for b in in_period}
    outside = list(
        Bundle.objects.filter(device=issued.device)
        .exclude(pk__in=leaves)
        .values_list("pk", "status")
    )
    before = last_event_id()
    # when
    result = _withdraw(issued, start, end)
    # then every live piece is withdrawn, the retired one flagged and still retired
    retired = [pk for pk, b in leaves.items() if b.status == Bundle.Status.RETIRED]
    assert len(retired) == 1
    assert [b.pk for b in result.flagged] == retired
    assert sorted(b.pk for b in result.withdrawn) == sorted(set(leaves) - set(retired))
    statuses = dict(Bundle.objects.filter(pk__in=leaves).values_list("pk", "status"))
    assert statuses[retired[0]] == Bundle.Status.RETIRED
    assert {st for pk, st in statuses.items() if pk != retired[0]} == {Bundle.Status.WITHDRAWN}
    assert WithdrawalItem.objects.filter(withdrawal=result.withdrawal).count() == len(leaves)
    assert result.withdrawal.volume_wh == sum(b.volume_wh for b in leaves.values())
    assert result.volume_wh == result.withdrawal.volume_wh
    assert Transfer.objects.get(pk=pending.pk).status == Transfer.Status.CANCELLED
    # nothing outside the period changed
    assert (
        list(
            Bundle.objects.filter(device=issued.device)
            .exclude(pk__in=leaves)
            .values_list("pk", "status")
        )
        == outside
    )
    # both hours are released for a corrected re-issue
    assert (
        IssuedPeriod.objects.filter(
            device=issued.device, period_start__in=[start, start + HOUR], withdrawn_at__isnull=False
        ).count()
        == 2
    )
    # one event naming the withdrawal, every bundle hit, every holder's account changed
    [event] = events_since(before)
    assert event["type"] == "certificate.withdrawn"
    subjects = set(event["subject"])
    assert f"withdrawal:{result.withdrawal.pk}" in subjects
    assert {f"bundle:{pk}" for pk in leaves} <= subjects
    holders = {b.account_id for b in leaves.values() if b.pk not in retired}
    assert {f"account:{pk}" for pk in holders} <= subjects
    assert f"transfer:{pending.pk}" in subjects
    assert event["data"]["flagged_bundle_ids"] == retired
    assert event["data"]["device_period"]["device_id"] == issued.device.pk


def test_a_dry_run_lists_the_same_and_writes_nothing(issued):
    # given
    _spread(issued)
    start, end = DAY + 2 * HOUR, DAY + 4 * HOUR
    state, before = snapshot(), last_event_id()
    # when
    plan = _withdraw(issued, start, end, dry_run=True)
    # then
    assert plan.withdrawal is None
    assert snapshot() == state and events_since(before) == []
    done = _withdraw(issued, start, end)
    assert sorted(b.pk for b in plan.withdrawn) == sorted(b.pk for b in done.withdrawn)
    assert [b.pk for b in plan.flagged] == [b.pk for b in done.flagged]
    assert plan.volume_wh == done.withdrawal.volume_wh


def test_withdrawn_pieces_are_skipped_and_an_all_withdrawn_period_is_refused(issued):
    # given hour 5 (both owners' bundles) withdrawn by bundle already
    start = DAY + 5 * HOUR
    hour_5 = Bundle.objects.filter(device=issued.device, period_start=start)
    services.certificate_withdraw(
        actor=issued.ib, reason="first", bundle_ids=list(hour_5.values_list("pk", flat=True))
    )
    # when the device's hours 5 and 6 are withdrawn
    result = _withdraw(issued, start, start + 2 * HOUR)
    # then hour 5 is skipped, hour 6 withdrawn
    assert {b.period_start for b in result.skipped} == {start}
    assert {b.period_start for b in result.withdrawn} == {start + HOUR}
    # and again: nothing is left to withdraw
    refused(lambda: _withdraw(issued, start, start + 2 * HOUR), "nothing_to_withdraw", 409)
    refused(
        lambda: _withdraw(issued, start, start + 2 * HOUR, dry_run=True), "nothing_to_withdraw", 409
    )


def test_a_period_without_certificates_is_refused(issued):
    later = DAY + dt.timedelta(days=3)
    refused(lambda: _withdraw(issued, later, later + HOUR), "nothing_to_withdraw", 409)


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"reason": "  "}, "reason_required", 400),
        ({"period_end": DAY}, "invalid_period", 400),
        ({"period_end": DAY - HOUR}, "invalid_period", 400),
        ({"period_start": DAY.replace(tzinfo=None)}, "invalid_period", 400),
        ({"device_id": 10**9}, "device_not_found", 404),
    ],
    ids=["no reason", "empty period", "end before start", "no time zone", "unknown device"],
)
def test_bad_input_is_refused_and_changes_nothing(issued, change, code, status):
    arguments = {"period_start": DAY, "period_end": DAY + 2 * HOUR, **change}
    start, end = arguments.pop("period_start"), arguments.pop("period_end")
    refused(lambda: _withdraw(issued, start, end, **arguments), code, status)


def test_only_the_issuing_body_withdraws(issued):
    refused(
        lambda: _withdraw(issued, DAY, DAY + HOUR, actor=issued.producer),
        "not_issuing_body",
        403,
    )
    refused(
        lambda: _withdraw(issued, DAY, DAY + HOUR, actor=issued.producer, dry_run=True),
        "not_issuing_body",
        403,
    )


def test_a_period_that_cuts_a_daily_bundle_is_refused_with_the_covering_period(plant):
    # given the day issued as one period (one bundle per owner for the whole day)
    services.certificate_issue(
        actor=plant.ib,
        device_id=plant.device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(days=1),
        granularity="period",
    )
    # when half the day is asked for
    error = refused(
        lambda: services.certificate_withdraw_for_device(
            actor=plant.ib,
            device_id=plant.device.pk,
            period_start=DAY + 6 * HOUR,
            period_end=DAY + 18 * HOUR,
            reason="meter fault",
        ),
        "period_cuts_bundle",
        400,
    )
    # then the refusal names the bundles and the period that covers them
    assert len(error.extra["bundles"]) == 2
    assert error.extra["covering_period_start"] == DAY.isoformat()
    assert error.extra["covering_period_end"] == (DAY + dt.timedelta(days=1)).isoformat()
    # and the covering period withdraws them
    result = services.certificate_withdraw_for_device(
        actor=plant.ib,
        device_id=plant.device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(days=1),
        reason="meter fault",
    )
    assert len(result.withdrawn) == 2
    assert Withdrawal.objects.count() == 1


def test_the_api_dry_runs_then_withdraws_a_device_period(issued):
    from tests.conftest import client_for

    # given hours 2 and 3 spread over holders
    _spread(issued)
    ib = client_for(issued.ib)
    body = {
        "device": issued.device.pk,
        "period_start": (DAY + 2 * HOUR).isoformat(),
        "period_end": (DAY + 4 * HOUR).isoformat(),
        "reason": "Meter miscalibrated",
    }
    state = snapshot()
    # when: a dry run
    dry = ib.post("/api/v1/withdrawals/by-device/", {**body, "dry_run": True}, format="json")
    # then: 200 with the lists, nothing written
    assert dry.status_code == 200, dry.content
    plan = dry.json()
    assert plan["withdrawal"] is None and snapshot() == state
    assert [row["status"] for row in plan["flagged"]] == ["retired"]
    assert {row["account"] for row in plan["withdrawn"]} >= {issued.buyer_account.number}
    # when: for real
    done = ib.post("/api/v1/withdrawals/by-device/", body, format="json")
    # then
    assert done.status_code == 201, done.content
    result = done.json()
    assert result["withdrawal"] == Withdrawal.objects.get().pk
    assert result["volume_wh"] == plan["volume_wh"]
    again = ib.post("/api/v1/withdrawals/by-device/", body, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "nothing_to_withdraw")
    # the general endpoint applies the same rules to a device and period
    same = ib.post("/api/v1/withdrawals/", body, format="json")
    assert (same.status_code, same.json()["code"]) == (409, "nothing_to_withdraw")


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"period_end": "tomorrow"}, "invalid", 400),
        ({"period_end": DAY.isoformat()}, "invalid_period", 400),
        ({"device": 10**9}, "device_not_found", 404),
        ({"reason": ""}, "invalid", 400),  # a blank reason: the serializer refuses it
    ],
)
def test_the_api_refuses_bad_input_with_its_code(issued, change, code, status):
    from tests.conftest import client_for

    body = {
        "device": issued.device.pk,
        "period_start": DAY.isoformat(),
        "period_end": (DAY + HOUR).isoformat(),
        "reason": "x",
        **change,
    }
    state = snapshot()
    response = client_for(issued.ib).post("/api/v1/withdrawals/by-device/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert snapshot() == state
