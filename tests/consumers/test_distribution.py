"""Certificates of a community's shared devices to its members, hour by hour, by the key."""

import datetime as dt
from fractions import Fraction

import numpy as np
import pytest

from assets.models import Reading
from certificates import services as certificate_services
from certificates.models import Bundle
from certificates.replay import replay_ledger
from consumers import allocation, services
from consumers.models import CommunityDistribution, DataAccess
from registry.errors import DomainError
from tests.certificates.factories import DAY, device_with_owners
from tests.consumers.factories import (
    CONSUMPTION,
    PRODUCTION,
    QUARTER,
    CommunityFactory,
    SiteFactory,
    consent,
    member,
    quarter_readings,
    site_meter,
)
from tests.factories import member_of
from tests.registry.support import events_since, last_event_id, row_counts

HOURS = 3


def _readings(meter, values, start=DAY, skip=()):
    quarter_readings(meter, values, start, skip)


@pytest.fixture
def world():
    """A community whose operator owns a plant metered per quarter hour, with two household
    members (consenting) metered per quarter hour; the plant's certificates issued."""
    community = CommunityFactory()
    operator = member_of(community.organisation)
    plant, (operator_account,) = device_with_owners(
        [Fraction(1)], producer=community.organisation, grid_area=community.grid_area,
        interval_minutes=15,
    )  # fmt: skip
    production = plant.meters.create(serial=f"PLANT-{plant.pk}", kind="generation")
    services.community_device_add(actor=operator, community_id=community.pk, device_id=plant.pk)
    members, links = [], []
    for values in CONSUMPTION:
        site = SiteFactory(grid_area=community.grid_area)
        link = site_meter(site)
        link.meter.device.interval_minutes = 15
        link.meter.device.save(update_fields=["interval_minutes"])
        members.append(member(community, site.household.organisation, link.meter, site=site))
        consent(site, community.organisation, [link], purpose="community")
        _readings(link.meter, values)
        links.append(link)
    _readings(production, PRODUCTION)
    end = DAY + dt.timedelta(hours=HOURS)
    certificate_services.certificate_issue(
        actor="system:test", device_id=plant.pk, period_start=DAY, period_end=end
    )
    return community, operator, operator_account, plant, members, links


def _held(account_id, hour):
    return sum(
        b.volume_wh
        for b in Bundle.objects.filter(
            account_id=account_id, status=Bundle.Status.ACTIVE, period_start=hour
        )
    )


def _expected_per_hour():
    """The allocation's Wh per member, summed over each hour's four quarter hours."""
    result = allocation.allocate(
        production=np.array(PRODUCTION),
        consumption=np.array(CONSUMPTION).T,
        active=np.ones((len(PRODUCTION), 2), dtype=bool),
        key="dynamic",
    )
    return result.allocated.reshape(HOURS, 4, 2).sum(axis=1)


@pytest.mark.django_db
def test_each_hour_is_distributed_by_the_dynamic_key_without_losing_a_wh(world):
    # given
    community, operator, operator_account, _plant, members, _links = world
    before = last_event_id()
    end = DAY + dt.timedelta(hours=HOURS)

    # when
    report = services.community_certificates_distribute(
        actor=operator, community_id=community.pk, start=DAY, end=end
    )

    # then every hour: the members get exactly their allocation, the operator keeps the rest
    expected = _expected_per_hour()
    assert [row.hour for row in report.distributions] == [
        DAY + dt.timedelta(hours=h) for h in range(HOURS)
    ]
    for h, row in enumerate(report.distributions):
        issued = sum(PRODUCTION[4 * h : 4 * h + 4])
        assert row.issued_wh == issued
        assert row.member_wh == {
            str(m.pk): int(expected[h, j]) for j, m in enumerate(members) if expected[h, j]
        }
        assert row.distributed_wh + row.kept_wh == issued
        for j, m in enumerate(members):
            assert _held(m.account_id, row.hour) == expected[h, j]
        assert _held(operator_account.pk, row.hour) == row.kept_wh
        assert (
            sum(_held(a, row.hour) for a in [operator_account.pk, *(m.account_id for m in members)])
            == issued
        )
    assert report.skipped == []
    # one event naming the community, each distribution, every bundle and account changed
    (event,) = events_since(before)
    assert event["type"] == "community.certificates_distributed"
    assert event["actor"] == f"user:{operator.pk}"
    assert f"community:{community.pk}" in event["subject"]
    for row in report.distributions:
        assert f"community_distribution:{row.pk}" in event["subject"]
    for account in [operator_account.pk, *(m.account_id for m in members)]:
        assert f"account:{account}" in event["subject"]
    changed = Bundle.objects.filter(period_start__gte=DAY).exclude(
        pk__in=Bundle.objects.filter(parent__isnull=True, status=Bundle.Status.ACTIVE)
    )
    for bundle in changed:
        assert f"bundle:{bundle.pk}" in event["subject"]
    assert [h["kept_wh"] for h in event["data"]["hours"]] == [
        r.kept_wh for r in report.distributions
    ]
    # and the certificates replay follows the units through the event
    assert replay_ledger().ok


@pytest.mark.django_db
def test_an_hour_is_distributed_once(world):
    # given
    community, operator, *_ = world
    period = {"start": DAY, "end": DAY + dt.timedelta(hours=HOURS)}
    services.community_certificates_distribute(actor=operator, community_id=community.pk, **period)
    counts = row_counts(Bundle, CommunityDistribution)
    before = last_event_id()

    # when
    again = services.community_certificates_distribute(
        actor=operator, community_id=community.pk, **period
    )

    # then
    assert again.distributions == []
    assert {reason for _hour, reason in again.skipped} == {"already_distributed"}
    assert row_counts(Bundle, CommunityDistribution) == counts
    assert events_since(before) == []


@pytest.mark.django_db
def test_hours_with_incomplete_readings_or_no_certificates_are_skipped(world):
    # given a missing quarter hour of a member in hour 1, and hour 3 produced but not issued
    community, operator, _account, plant, _members, links = world
    Reading.objects.filter(meter=links[0].meter, start=DAY + dt.timedelta(minutes=75)).delete()
    late = DAY + dt.timedelta(hours=HOURS)
    _readings(plant.meters.get(), [100, 100, 100, 100], start=late)
    for link in links:
        _readings(link.meter, [10, 10, 10, 10], start=late)

    # when
    report = services.community_certificates_distribute(
        actor=operator, community_id=community.pk, start=DAY, end=late + dt.timedelta(hours=1)
    )

    # then
    assert [r.hour for r in report.distributions] == [DAY, DAY + dt.timedelta(hours=2)]
    assert report.skipped == [
        (DAY + dt.timedelta(hours=1), "readings_incomplete"),
        (late, "certificates_not_issued"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "hours", "fields"),
    [
        (DAY + QUARTER, HOURS, {"start": ["on the hour"], "end": ["on the hour"]}),
        (DAY - dt.timedelta(days=40), 24 * 40, {"end": ["at most 31 days after start"]}),
        (DAY + dt.timedelta(hours=HOURS), -HOURS, {"end": ["after start"]}),
        (DAY, 24 * 365 * 20, {"end": ["at most 31 days after start", "not in the future"]}),
    ],
)
def test_a_refused_period_names_what_is_wrong_with_which_end(world, start, hours, fields):
    community, operator, *_ = world
    with pytest.raises(DomainError) as exc:
        services.community_certificates_distribute(
            actor=operator,
            community_id=community.pk,
            start=start,
            end=start + dt.timedelta(hours=hours),
        )
    assert (exc.value.code, exc.value.extra["fields"]) == ("period_invalid", fields)


@pytest.mark.django_db
def test_refusals_change_nothing(world):
    # given
    community, operator, _account, _plant, _members, links = world
    viewer = member_of(community.organisation, role="viewer")
    stranger = member_of(CommunityFactory().organisation)
    counts = row_counts(Bundle, CommunityDistribution)
    before = last_event_id()
    end = DAY + dt.timedelta(hours=HOURS)
    cases = [
        ({"actor": viewer, "start": DAY, "end": end}, "not_community_operator"),
        ({"actor": stranger, "start": DAY, "end": end}, "not_community_operator"),
        ({"actor": operator, "start": DAY + QUARTER, "end": end}, "period_invalid"),
        ({"actor": operator, "start": DAY, "end": DAY + dt.timedelta(days=40)}, "period_invalid"),
        ({"actor": operator, "start": end, "end": DAY}, "period_invalid"),
    ]

    # when / then
    for kwargs, code in cases:
        with pytest.raises(DomainError) as exc:
            services.community_certificates_distribute(community_id=community.pk, **kwargs)
        assert exc.value.code == code, kwargs
    with pytest.raises(DomainError) as exc:
        services.community_certificates_distribute(
            actor=operator, community_id=community.pk + 1000, start=DAY, end=end
        )
    assert exc.value.code == "community_not_found"
    # a household that did not consent to the community's reads
    links[1].consents.update(revoked_at=DAY)
    with pytest.raises(DomainError) as exc:
        services.community_certificates_distribute(
            actor=operator, community_id=community.pk, start=DAY, end=end
        )
    assert exc.value.code in ("consent_required", "consent_revoked")
    assert DataAccess.objects.filter(what="community_distribution", outcome="refused").exists()
    assert row_counts(Bundle, CommunityDistribution) == counts
    assert events_since(before) == []


@pytest.mark.django_db
def test_fewer_certificates_than_allocated_are_split_by_the_allocation(world):
    # given the operator retired all but 500 Wh of hour 0's certificates before distributing
    community, operator, operator_account, _plant, members, _links = world
    (bundle,) = Bundle.objects.filter(account=operator_account, period_start=DAY)
    certificate_services.certificate_retire(
        actor=operator, items=[(bundle.pk, bundle.volume_wh - 500)],
        beneficiary_name="Elsewhere", beneficiary_country="DE", consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(hours=1), purpose="disclosure",
    )  # fmt: skip

    # when
    report = services.community_certificates_distribute(
        actor=operator, community_id=community.pk, start=DAY, end=DAY + dt.timedelta(hours=1)
    )

    # then the 500 Wh left go to the members in proportion to their allocation
    (row,) = report.distributions
    expected = _expected_per_hour()[0]
    assert row.issued_wh == 500 and row.distributed_wh == 500 and row.kept_wh == 0
    split = allocation.split_largest_remainder(np.array([500]), expected[None, :])[0]
    assert row.member_wh == {str(m.pk): int(split[j]) for j, m in enumerate(members)}


@pytest.mark.django_db
def test_the_operator_distributes_through_the_api(world, client):
    # given
    community, operator, *_ = world
    client.force_login(operator)
    end = DAY + dt.timedelta(hours=HOURS)

    # when
    response = client.post(
        f"/api/v1/communities/{community.pk}/distributions/",
        {"start": DAY.isoformat(), "end": end.isoformat()},
        content_type="application/json",
    )

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["issued_wh"] == sum(PRODUCTION)
    assert body["distributed_wh"] + body["kept_wh"] == sum(PRODUCTION)
    assert body["distributed_wh"] == int(_expected_per_hour().sum())
    assert len(body["hours"]) == HOURS and body["skipped"] == []


@pytest.mark.django_db
def test_the_periodic_run_distributes_every_community_and_is_harmless_twice(world):
    # given
    from io import StringIO

    from django.conf import settings
    from django.core.management import call_command

    from registry.celery import app

    community, *_ = world
    days = (dt.datetime.now(dt.UTC) - DAY).days + 1
    out = StringIO()

    # when the command runs over the world's days, then the task (its last 7 days)
    call_command("distribute_community_certificates", days=days, stdout=out)
    again = services.community_certificates_distribute_due(days=days)

    # then
    assert CommunityDistribution.objects.filter(community=community).count() == HOURS
    assert f"community {community.pk}" in out.getvalue()
    assert [run.refused for run in again] == [""]
    assert sum(len(run.report.distributions) for run in again) == 0
    entry = settings.CELERY_BEAT_SCHEDULE["consumers-distribute-certificates"]
    app.loader.import_default_modules()
    assert app.tasks[entry["task"]].apply().get() == 0  # the scheduled task finds it done


@pytest.mark.django_db
def test_a_member_account_that_cannot_receive_refuses_the_whole_call(world):
    # given the second member's account closed after the first member's units would move
    from accounts.models import Account

    community, operator, _account, _plant, members, _links = world
    Account.objects.filter(pk=members[1].account_id).update(status=Account.Status.CLOSED)
    counts = row_counts(Bundle, CommunityDistribution)
    before = last_event_id()

    # when
    with pytest.raises(DomainError) as exc:
        services.community_certificates_distribute(
            actor=operator, community_id=community.pk, start=DAY, end=DAY + dt.timedelta(hours=1)
        )

    # then nothing is half-written: the first member's moves are rolled back too
    assert (exc.value.code, exc.value.status) == ("account_closed", 409)
    assert row_counts(Bundle, CommunityDistribution) == counts
    assert _held(members[0].account_id, DAY) == 0
    assert events_since(before) == []
