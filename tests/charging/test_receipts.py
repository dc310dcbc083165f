"""Renewable receipts: a billed session's hours matched against certificates of those hours,
retired for the driver's organisation with one statement per hour."""

import datetime as dt

import pytest

from certificates.models import Bundle, Retirement
from charging import services
from tests.charging.factories import DAY, charge, charging_world, renewable_hours
from tests.factories import AccountFactory, OrganisationFactory, member_of
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
START = DAY + dt.timedelta(hours=10, minutes=30)


def test_a_session_is_matched_hour_by_hour_and_retired_for_the_driver():
    # given: 7 kWh in hour 10, 15 kWh in hour 11; certificates: 5 kWh and 20 kWh
    world = charging_world()
    account = renewable_hours(world, hours={10: 5000, 11: 20_000})
    session = charge(world, start=START, readings=[(0, 1000), (30, 8000), (90, 23_000)])
    before = last_event_id()

    # when
    receipt = services.session_match(
        actor=world.operator, session_id=session.pk, account_id=account.pk
    )

    # then
    assert (receipt.energy_wh, receipt.renewable_wh) == (22_000, 20_000)
    hours = list(receipt.hours.order_by("hour_start"))
    assert [(h.energy_wh, h.matched_wh) for h in hours] == [(7000, 5000), (15_000, 15_000)]
    for hour in hours:
        retirement = hour.retirement
        assert retirement.beneficiary_name == world.driver.legal_name
        assert retirement.consumption_start == hour.hour_start
        assert retirement.consumption_end == hour.hour_start + dt.timedelta(hours=1)
        assert retirement.volume_wh == hour.matched_wh
        assert retirement.location == world.station.evse_id
    assert Bundle.objects.filter(account=account, status=Bundle.Status.ACTIVE).count() == 1
    kinds = [e["type"] for e in events_since(before)]
    assert kinds == ["certificate.retired", "certificate.retired", "charging.session_matched"]
    matched = events_since(before)[-1]
    assert f"charging_bill:{session.bill.pk}" in matched["subject"]
    assert f"charging_receipt:{receipt.pk}" in matched["subject"]
    assert any(s.startswith("bundle:") for s in matched["subject"])


def test_no_certificates_of_the_hour_gives_a_zero_share_receipt():
    # given: certificates only for hour 14, the session is at 10-12
    world = charging_world()
    account = renewable_hours(world, hours={14: 50_000})
    session = charge(world, start=START, readings=[(0, 0), (60, 4000)])

    # when
    receipt = services.session_match(
        actor=world.operator, session_id=session.pk, account_id=account.pk
    )

    # then
    assert receipt.renewable_wh == 0
    assert Retirement.objects.count() == 0


def test_a_second_receipt_for_a_session_is_refused(refused):
    world = charging_world()
    account = renewable_hours(world, hours={10: 5000})
    session = charge(world, start=START, readings=[(0, 0), (20, 1000)])
    services.session_match(actor=world.operator, session_id=session.pk, account_id=account.pk)
    refused(
        lambda: services.session_match(
            actor=world.operator, session_id=session.pk, account_id=account.pk
        ),
        "receipt_exists",
        409,
    )


def test_an_unbilled_session_has_no_receipt_yet(refused):
    world = charging_world()
    account = renewable_hours(world, hours={10: 5000})
    session = charge(world, start=START, readings=[(0, 0)])
    refused(
        lambda: services.session_match(
            actor=world.operator, session_id=session.pk, account_id=account.pk
        ),
        "session_not_billed",
        409,
    )


def test_an_account_the_actor_does_not_hold_is_refused(refused):
    world = charging_world()
    session = charge(world, start=START, readings=[(0, 0), (20, 1000)])
    foreign = AccountFactory(organisation=OrganisationFactory())
    refused(
        lambda: services.session_match(
            actor=world.operator, session_id=session.pk, account_id=foreign.pk
        ),
        "account_not_usable",
        403,
    )


def test_a_stranger_cannot_match_a_session(refused):
    world = charging_world()
    session = charge(world, start=START, readings=[(0, 0), (20, 1000)])
    stranger_org = OrganisationFactory()
    stranger = member_of(stranger_org)
    account = AccountFactory(organisation=stranger_org)
    refused(
        lambda: services.session_match(
            actor=stranger, session_id=session.pk, account_id=account.pk
        ),
        "not_session_party",
        403,
    )
