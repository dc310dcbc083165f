"""Removing or replacing a meter at a time before its current key started is a 409 with a
code, not an IntegrityError on `meter_key_valid_period` (issue: hardening)."""

import datetime as dt

import pytest

from assets import services
from assets.errors import MeterKeyConflict
from assets.models import Meter, MeterKey
from tests.assets.factories import add_key, hours_ago, signing_key
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def late_key(meter):
    """A second key that started two hours ago (the first one ended then)."""
    start = hours_ago(2)
    MeterKey.objects.filter(meter=meter, valid_to__isnull=True).update(valid_to=start)
    return add_key(meter, signing_key(11), valid_from=start)


def test_meter_remove_before_the_current_key_is_refused(producer, meter, late_key, snapshot):
    # given
    before = snapshot()
    # when
    with pytest.raises(MeterKeyConflict) as caught:
        services.meter_remove(
            actor=producer, meter_id=meter.pk, at=hours_ago(3), reason="Dismantled"
        )
    # then
    assert caught.value.status == 409
    assert caught.value.extra["key_valid_from"] == late_key.valid_from.isoformat()
    assert snapshot() == before
    meter.refresh_from_db()
    assert meter.status == Meter.Status.ACTIVE


def test_meter_replace_before_the_current_key_is_refused(producer, meter, late_key, snapshot):
    # given
    before = snapshot()
    # when
    with pytest.raises(MeterKeyConflict):
        services.meter_replace(
            actor=producer,
            meter_id=meter.pk,
            at=hours_ago(3),
            new_serial="SRC-PV-0002",
            reason="Broken",
        )
    # then
    assert snapshot() == before


def test_the_same_request_over_http_is_409_meter_key_conflict(producer, meter, late_key):
    # given
    at = hours_ago(3).astimezone(dt.UTC).isoformat()
    # when
    response = client_for(producer).post(
        f"/api/v1/meters/{meter.serial}/remove/", {"time": at, "reason": "Dismantled"}
    )
    # then
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "meter_key_conflict"


@pytest.mark.django_db(transaction=True)
def test_replacement_over_http_runs_in_one_transaction(producer, meter):
    # given: the request the fuzzer sent (a 500 on PostgreSQL when the service ran outside a
    # transaction: its row locks need one; the test transaction of other tests hides that)
    at = hours_ago(1).astimezone(dt.UTC).isoformat()
    # when
    response = client_for(producer).post(
        f"/api/v1/meters/{meter.serial}/replacements/",
        {"new_serial": "SRC-PV-0002", "reason": "Broken", "time": at},
    )
    # then
    assert response.status_code == 201, response.content
    meter.refresh_from_db()
    assert meter.status == Meter.Status.REMOVED
