"""The issuing body's form that withdraws a device's certificates for a period: a dry run
that lists what would happen and writes nothing, then the withdrawal itself."""

import datetime as dt

import pytest
from django.db.models import Max, Min
from django.urls import reverse

from certificates.models import Bundle, Withdrawal
from tests.certificates.conftest import snapshot
from tests.registry.support import events_since, last_event_id

URL = "web:issuing-withdraw-device"


def _period(world):
    bounds = Bundle.objects.filter(device=world.device).aggregate(
        start=Min("period_start"), end=Max("period_end")
    )
    return bounds["start"], bounds["end"]


def _form(world, *, start=None, end=None, action="check", **extra):
    first, last = _period(world)
    return {
        "dw-device": world.device.pk,
        "dw-period_start": (start or first).strftime("%Y-%m-%dT%H:%M"),
        "dw-period_end": (end or last).strftime("%Y-%m-%dT%H:%M"),
        "dw-reason": "Meter was miscalibrated",
        "action": action,
        **extra,
    }


@pytest.mark.django_db
def test_the_check_lists_what_would_be_withdrawn_and_writes_nothing(login, world):
    # given
    client = login(world, "issuing_body")
    state, before = snapshot(), last_event_id()
    # when
    response = client.post(reverse(URL), _form(world))
    # then
    assert response.status_code == 200
    plan = response.context["device_plan"]
    live = Bundle.objects.filter(
        device=world.device,
        status__in=[Bundle.Status.ACTIVE, Bundle.Status.RESERVED],
    )
    assert {b.pk for b in plan.withdrawn} == set(live.values_list("pk", flat=True))
    assert [b.pk for b in plan.flagged] == list(
        Bundle.objects.filter(device=world.device, status=Bundle.Status.RETIRED).values_list(
            "pk", flat=True
        )
    )
    body = response.content.decode()
    assert "would be withdrawn" in body and "would be flagged, status kept" in body
    assert world.buyer_account.number in body
    assert "nothing was written" in body
    assert snapshot() == state and events_since(before) == []


@pytest.mark.django_db
def test_withdraw_does_it_in_one_event_and_lists_it(login, world):
    # given
    client = login(world, "issuing_body")
    before = last_event_id()
    # when
    response = client.post(reverse(URL), _form(world, action="withdraw"), follow=True)
    # then
    assert [e["type"] for e in events_since(before)] == ["certificate.withdrawn"]
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.reason == "Meter was miscalibrated"
    assert not Bundle.objects.filter(
        device=world.device, status__in=[Bundle.Status.ACTIVE, Bundle.Status.RESERVED]
    ).exists()
    assert Bundle.objects.filter(device=world.device, status=Bundle.Status.RETIRED).exists()
    body = response.content.decode()
    assert f"Withdrawal {withdrawal.pk} recorded for {world.device.name}" in body
    assert response.context["withdrawals"][0].pk == withdrawal.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dw-device": "999999999"}, "(device_not_found)"),
        ({"dw-period_end": "2020-01-01T00:00"}, "(invalid_period)"),
        ({"dw-period_start": "soon"}, "Enter a valid date/time."),
        ({"dw-reason": ""}, "This field is required."),
    ],
    ids=["unknown device", "end before start", "not a time", "no reason"],
)
def test_bad_input_says_why_and_changes_nothing(login, world, change, message):
    client = login(world, "issuing_body")
    state, before = snapshot(), last_event_id()
    response = client.post(reverse(URL), {**_form(world, action="withdraw"), **change})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert snapshot() == state and events_since(before) == []


@pytest.mark.django_db
def test_a_period_with_nothing_left_is_refused_with_its_code(login, world):
    client = login(world, "issuing_body")
    client.post(reverse(URL), _form(world, action="withdraw"))
    _first, last = _period(world)
    state = snapshot()
    response = client.post(reverse(URL), _form(world, start=last, end=last + dt.timedelta(hours=2)))
    assert "(nothing_to_withdraw)" in response.content.decode()
    assert snapshot() == state


@pytest.mark.django_db
def test_only_the_issuing_body_may_post_it(login, world):
    state = snapshot()
    response = login(world, "producer").post(reverse(URL), _form(world, action="withdraw"))
    assert response.status_code == 403
    assert snapshot() == state


@pytest.mark.django_db
def test_the_form_reads_in_russian(login, world):
    client = login(world, "issuing_body")
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    body = client.post(reverse(URL), _form(world)).content.decode()
    for english in (
        "Withdraw a device's certificates for a period",
        "Check what would be withdrawn",
        "would be withdrawn",
        "Production from (UTC)",
    ):
        assert english not in body
