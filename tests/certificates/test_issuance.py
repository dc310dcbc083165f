import datetime as dt
import json
from fractions import Fraction

import pytest

from accounts.errors import NotIssuingBody
from accounts.models import Account
from assets.models import Device, Reading
from certificates import errors, services
from certificates.allocation import add_months
from certificates.models import Bundle, DeviceUnitCounter, IssuanceRequest, IssuedPeriod
from ledger.models import PendingEvent
from tests.certificates.conftest import last_event_id, new_events, snapshot
from tests.certificates.factories import (
    DAY,
    MeterFactory,
    add_readings,
    device_with_owners,
    holder,
)

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)
NEXT_DAY = DAY + dt.timedelta(days=1)


def _issue(plant, **kwargs):
    args = {
        "actor": plant.ib,
        "device_id": plant.device.pk,
        "period_start": DAY,
        "period_end": NEXT_DAY,
    }
    return services.certificate_issue(**(args | kwargs))


def _event(before: int) -> dict:
    (row,) = PendingEvent.objects.filter(pk__gt=before)
    return json.loads(bytes(row.event))


def test_hourly_issuance_splits_each_hour_by_shares_without_losing_a_wh(plant):
    # given a day of hourly readings of a plant owned 2/3 : 1/3
    before = last_event_id()
    # when
    issuance = _issue(plant)
    # then one period per hour, each cut into the owners' bundles, units numbered on
    periods = list(IssuedPeriod.objects.filter(device=plant.device).order_by("period_start"))
    assert len(periods) == 24
    readings = list(Reading.objects.filter(device=plant.device).order_by("start"))
    unit = 0
    for period, reading in zip(periods, readings, strict=True):
        assert (period.period_start, period.period_end) == (reading.start, reading.end)
        assert (period.unit_start, period.unit_end) == (unit, unit + reading.wh)
        bundles = list(
            Bundle.objects.filter(device=plant.device, period_start=period.period_start).order_by(
                "unit_start"
            )
        )
        assert [b.account_id for b in bundles] == [
            plant.producer_account.pk,
            plant.neighbour_account.pk,
        ]
        assert bundles[0].unit_start == unit and bundles[-1].unit_end == unit + reading.wh
        assert bundles[0].unit_end == bundles[1].unit_start
        assert abs(bundles[0].volume_wh - Fraction(2, 3) * reading.wh) < 1
        unit += reading.wh
    assert issuance.volume_wh == unit == sum(r.wh for r in readings)
    assert (issuance.unit_start, issuance.unit_end) == (0, unit)
    assert DeviceUnitCounter.objects.get(device=plant.device).next_unit == unit
    assert all(r.issued_at is not None for r in Reading.objects.filter(device=plant.device))
    # the certificate attributes are a snapshot of the device at issuance
    assert issuance.technology_code == "T020001"
    assert issuance.country == "DE" and issuance.grid_area_code == plant.device.grid_area.code
    assert str(issuance.emission_factor_g_per_kwh) == "380.000"
    assert issuance.issuing_body is not None and issuance.issuing_body.is_issuing_body
    first = Bundle.objects.filter(device=plant.device).order_by("pk").first()
    assert first.expires_on == add_months(DAY.date() + dt.timedelta(days=1), 12)
    # and exactly one ledger event carries every bundle and range
    assert new_events(before) == ["certificate.issued"]
    event = _event(before)
    data = event["data"]["issuance"]
    assert data["unit_end"] == unit and len(data["periods"]) == 24
    assert sum(len(p[4]) for p in data["periods"]) == 48
    # it names the device, the issuance, every bundle it created and every account credited
    issued = Bundle.objects.filter(issuance=issuance).order_by("pk")
    assert event["subject"] == [
        f"device:{plant.device.pk}",
        f"issuance:{issuance.pk}",
        *(f"bundle:{pk}" for pk in issued.values_list("pk", flat=True)),
        f"account:{plant.producer_account.pk}",
        f"account:{plant.neighbour_account.pk}",
    ]
    assert data["periods"][0][4][0] == [first.pk, plant.producer_account.pk, 0, first.unit_end]
    assert data["readings"] == [[readings[0].pk, readings[-1].pk]]


def test_equal_co_owners_take_turns_with_the_odd_wh():
    # given three equal owners and hours of 1,000 Wh (a third is not a whole number)
    from tests.factories import issuing_body_user

    device, accounts = device_with_owners([Fraction(1, 3)] * 3)
    add_readings(device, wh=lambda i: 1000)
    # when
    services.certificate_issue(
        actor=issuing_body_user(), device_id=device.pk, period_start=DAY, period_end=NEXT_DAY
    )
    # then every hour sums exactly and over the day nobody is more than a Wh ahead
    totals = [
        sum(b.volume_wh for b in Bundle.objects.filter(account=account)) for account in accounts
    ]
    assert sum(totals) == 24_000
    assert max(totals) - min(totals) <= 1


def test_period_granularity_issues_one_period(plant):
    issuance = _issue(plant, granularity=IssuanceRequest.Granularity.PERIOD)
    (period,) = IssuedPeriod.objects.filter(device=plant.device)
    assert (period.period_start, period.period_end) == (DAY, NEXT_DAY)
    assert Bundle.objects.filter(issuance=issuance).count() == 2


def test_issuing_twice_is_refused_and_changes_nothing(plant):
    # given the day was issued, and a second generation meter reports the same hours
    _issue(plant)
    add_readings(plant.device, meter=MeterFactory(device=plant.device))
    before = snapshot()
    # when / then
    with pytest.raises(errors.DoubleIssuance):
        _issue(plant)
    with pytest.raises(errors.DoubleIssuance):
        _issue(plant, granularity=IssuanceRequest.Granularity.PERIOD)
    assert snapshot() == before


def test_an_incomplete_hour_waits_for_its_missing_readings(plant):
    # given quarter-hour readings of another device with 12:30-12:45 missing
    device, _ = device_with_owners()
    add_readings(device, minutes=15)
    Reading.objects.filter(device=device, start=DAY + dt.timedelta(hours=12, minutes=30)).delete()
    # when
    services.certificate_issue(
        actor=plant.ib, device_id=device.pk, period_start=DAY, period_end=NEXT_DAY
    )
    # then 23 hours are issued, 12:00 is not, and its readings stay unissued
    starts = set(IssuedPeriod.objects.filter(device=device).values_list("period_start", flat=True))
    assert len(starts) == 23 and DAY + 12 * HOUR not in starts
    assert Reading.objects.filter(device=device, issued_at__isnull=True).count() == 3


def test_zero_hours_get_no_bundle_but_their_readings_are_done(plant):
    device, _ = device_with_owners()
    add_readings(device, wh=lambda i: 0 if i < 6 else 500)
    services.certificate_issue(
        actor=plant.ib, device_id=device.pk, period_start=DAY, period_end=NEXT_DAY
    )
    assert IssuedPeriod.objects.filter(device=device).count() == 18
    assert not Reading.objects.filter(device=device, issued_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda p: Device.objects.filter(pk=p.device.pk).update(status="suspended"),
            errors.DeviceCannotIssue,
        ),
        (lambda p: Reading.objects.filter(device=p.device).delete(), errors.NothingToIssue),
        (
            lambda p: p.device.owners.filter(account=p.neighbour_account).delete(),
            errors.OwnershipIncomplete,
        ),
        (
            lambda p: Account.objects.filter(pk=p.neighbour_account.pk).update(status="closed"),
            errors.OwnershipIncomplete,
        ),
    ],
    ids=["device-suspended", "no-readings", "shares-short", "owner-account-closed"],
)
def test_issuance_refusals_change_nothing(plant, change, error):
    change(plant)
    before = snapshot()
    with pytest.raises(error):
        _issue(plant)
    assert snapshot() == before
    assert not Reading.objects.filter(issued_at__isnull=False).exists()


def test_only_the_issuing_body_issues_directly(plant):
    before = snapshot()
    with pytest.raises(NotIssuingBody):
        _issue(plant, actor=plant.producer)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (DAY + dt.timedelta(minutes=30), NEXT_DAY),  # not on a whole hour
        (NEXT_DAY, DAY),  # backwards
        (DAY, dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)),  # not over yet
    ],
    ids=["unaligned", "backwards", "future"],
)
def test_bad_periods_are_invalid(plant, start, end):
    before = snapshot()
    with pytest.raises(errors.InvalidPeriod):
        _issue(plant, period_start=start, period_end=end)
    assert snapshot() == before


# ---------------------------------------------------------------- requests


def _request(plant, **kwargs):
    args = {
        "actor": plant.producer,
        "device_id": plant.device.pk,
        "period_start": DAY,
        "period_end": NEXT_DAY,
    }
    return services.issuance_request_create(**(args | kwargs))


def test_request_waits_for_approval_then_issues(plant):
    # given a device whose policy asks for approval
    before = last_event_id()
    req = _request(plant)
    assert req.status == IssuanceRequest.Status.PENDING
    assert new_events(before) == ["issuance_request.created"]
    assert not Bundle.objects.exists()
    # when the issuing body approves
    before = last_event_id()
    services.issuance_request_approve(actor=plant.ib, request_id=req.pk)
    # then the certificates are issued in the same transaction, under one event
    req.refresh_from_db()
    assert req.status == IssuanceRequest.Status.APPROVED and req.decided_by == plant.ib
    assert req.issuance.volume_wh == sum(r.wh for r in Reading.objects.filter(device=plant.device))
    assert new_events(before) == ["issuance_request.approved"]
    assert "issuance" in _event(before)["data"]
    # and a second decision is refused
    state = snapshot()
    with pytest.raises(errors.IssuanceRequestNotPending):
        services.issuance_request_approve(actor=plant.ib, request_id=req.pk)
    with pytest.raises(errors.IssuanceRequestNotPending):
        services.issuance_request_reject(actor=plant.ib, request_id=req.pk, reason="late")
    assert snapshot() == state


def test_device_without_approval_is_issued_on_request(plant):
    Device.objects.filter(pk=plant.device.pk).update(issuance_requires_approval=False)
    before = last_event_id()
    req = _request(plant)
    assert req.status == IssuanceRequest.Status.APPROVED
    assert new_events(before) == ["issuance_request.created"]
    assert _event(before)["data"]["issuance"]["request_id"] == req.pk
    assert Bundle.objects.filter(issuance__request=req).count() == 48


def test_request_of_a_day_without_readings_is_refused_when_issued_at_once(plant):
    Device.objects.filter(pk=plant.device.pk).update(issuance_requires_approval=False)
    before = snapshot()
    with pytest.raises(errors.NothingToIssue):
        _request(plant, period_start=DAY - dt.timedelta(days=1), period_end=DAY)
    assert snapshot() == before
    assert not IssuanceRequest.objects.exists()


def test_reject_needs_a_reason_and_the_issuing_body(plant):
    req = _request(plant)
    before = snapshot()
    with pytest.raises(errors.ReasonRequired):
        services.issuance_request_reject(actor=plant.ib, request_id=req.pk, reason=" ")
    with pytest.raises(NotIssuingBody):
        services.issuance_request_reject(actor=plant.producer, request_id=req.pk, reason="no")
    assert snapshot() == before
    last = last_event_id()
    services.issuance_request_reject(actor=plant.ib, request_id=req.pk, reason="meter seal broken")
    assert new_events(last) == ["issuance_request.rejected"]


def test_only_the_producer_requests(plant):
    before = snapshot()
    with pytest.raises(errors.NotDeviceProducer):
        _request(plant, actor=plant.neighbour)  # a co-owner, not the registrant
    assert snapshot() == before


def test_automatic_hourly_issuance_takes_complete_hours_once(plant):
    Device.objects.filter(pk=plant.device.pk).update(
        issuance_policy=Device.IssuancePolicy.AUTOMATIC_HOURLY
    )
    before = last_event_id()
    issuance = services.certificate_auto_issue(device_id=plant.device.pk)
    assert issuance is not None and new_events(before) == ["certificate.issued"]
    assert _event(before)["actor"] == "system:auto-issuance"
    # new readings of the next day arrive; the sweep issues them, and only them
    add_readings(plant.device, start=NEXT_DAY, hours=3)
    second = services.certificate_auto_issue(device_id=plant.device.pk)
    assert second.period_start == NEXT_DAY and second.unit_start == issuance.unit_end
    before = last_event_id()
    assert services.certificate_auto_issue(device_id=plant.device.pk) is None
    assert new_events(before) == []


def test_periodic_task_issues_every_automatic_device(plant):
    from certificates.tasks import certificates_auto_issue_task

    Device.objects.filter(pk=plant.device.pk).update(
        issuance_policy=Device.IssuancePolicy.AUTOMATIC_HOURLY
    )
    manual, _ = device_with_owners()
    add_readings(manual)
    assert certificates_auto_issue_task() > 0
    assert Bundle.objects.filter(device=plant.device).exists()
    assert not Bundle.objects.filter(device=manual).exists()


def test_withdrawn_period_can_be_issued_again_under_new_units(plant):
    # given an issued day, withdrawn in full for a meter fault
    first = _issue(plant)
    services.certificate_withdraw(
        actor=plant.ib,
        reason="meter fault",
        device_id=plant.device.pk,
        period_start=DAY,
        period_end=NEXT_DAY,
    )
    assert not IssuedPeriod.objects.filter(device=plant.device, withdrawn_at__isnull=True).exists()
    # when corrected readings (another meter) arrive and are issued
    add_readings(plant.device, meter=MeterFactory(device=plant.device), wh=lambda i: 900)
    second = _issue(plant)
    # then the same hours have certificates again, with new unit numbers
    assert second.unit_start == first.unit_end
    assert second.volume_wh == 24 * 900
    live = Bundle.objects.filter(device=plant.device, status=Bundle.Status.ACTIVE)
    assert sum(b.volume_wh for b in live) == 24 * 900


def test_producer_of_another_organisation_cannot_request(plant):
    other = holder(plant.neighbour_account)
    with pytest.raises(errors.NotDeviceProducer):
        _request(plant, actor=other)


def test_an_accepted_readings_batch_starts_automatic_issuance_on_commit(
    plant, django_capture_on_commit_callbacks
):
    from assets.services import READINGS_ACCEPTED_HOOKS
    from certificates.tasks import auto_issue_on_readings_accepted

    # given an automatic-policy device whose new readings batch was just accepted
    assert auto_issue_on_readings_accepted in READINGS_ACCEPTED_HOOKS
    Device.objects.filter(pk=plant.device.pk).update(
        issuance_policy=Device.IssuancePolicy.AUTOMATIC_HOURLY
    )
    batch = plant.device.readings.first().batch
    # when the readings hook runs and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        auto_issue_on_readings_accepted(batch)
    # then the device's complete hours are issued, without anyone asking
    assert Bundle.objects.filter(device=plant.device).exists()


def test_a_manual_device_is_not_issued_by_the_readings_hook(
    plant, django_capture_on_commit_callbacks
):
    from certificates.tasks import auto_issue_on_readings_accepted

    batch = plant.device.readings.first().batch
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        auto_issue_on_readings_accepted(batch)
    assert callbacks == []
    assert not Bundle.objects.filter(device=plant.device).exists()
