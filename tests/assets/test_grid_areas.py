"""grid_area_create / grid_area_update: issuing body only, validated, one event each."""

import json
from decimal import Decimal

import pytest

from accounts.errors import NotIssuingBody
from assets import services
from assets.errors import GridAreaExists
from assets.models import GridArea
from ledger.models import PendingEvent
from registry.errors import InvalidInput

AREA = {
    "code": "10Y1001A1001A82H",
    "name": "DE-LU",
    "country": "DE",
    "time_zone": "Europe/Berlin",
    "emission_factor_g_per_kwh": Decimal("380.500"),
    "expiry_months": 12,
}


def test_issuing_body_creates_a_grid_area(issuer, snapshot):
    # given
    before = snapshot()
    # when
    area = services.grid_area_create(actor=issuer, **AREA)
    # then
    assert area.code == "10Y1001A1001A82H" and area.expiry_months == 12
    after = snapshot()
    assert after["GridArea"] == before["GridArea"] + 1
    assert after["ledger_events"] == before["ledger_events"] + 1
    event = json.loads(bytes(PendingEvent.objects.latest("id").event))
    assert event["type"] == "grid_area.created"
    assert event["subject"] == [f"grid_area:{area.pk}"]
    assert event["data"]["emission_factor_g_per_kwh"] == "380.500"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "10Y1001A1001A82X"),
        ("code", "SHORT"),
        ("time_zone", "Mars/Olympus_Mons"),
        ("country", "Germany"),
        ("country", "ZZ"),
        ("country", "de"),
        ("emission_factor_g_per_kwh", Decimal("-1")),
        ("emission_factor_g_per_kwh", Decimal("1.2345")),
        ("expiry_months", 0),
        ("name", "  "),
    ],
)
def test_invalid_grid_area_is_refused_and_nothing_stored(issuer, snapshot, field, value):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        services.grid_area_create(actor=issuer, **{**AREA, field: value})
    assert field in caught.value.extra["fields"]
    assert snapshot() == before


def test_only_the_issuing_body_manages_grid_areas(producer, snapshot):
    before = snapshot()
    with pytest.raises(NotIssuingBody):
        services.grid_area_create(actor=producer, **AREA)
    assert snapshot() == before


def test_duplicate_code_is_a_conflict(issuer, snapshot):
    services.grid_area_create(actor=issuer, **AREA)
    before = snapshot()
    with pytest.raises(GridAreaExists):
        services.grid_area_create(actor=issuer, **AREA)
    assert snapshot() == before


def test_update_changes_policy_with_one_event(issuer, snapshot):
    area = services.grid_area_create(actor=issuer, **AREA)
    before = snapshot()
    services.grid_area_update(actor=issuer, grid_area_id=area.pk, expiry_months=18)
    assert GridArea.objects.get(pk=area.pk).expiry_months == 18
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    with pytest.raises(InvalidInput):
        services.grid_area_update(actor=issuer, grid_area_id=area.pk, code="10YDE-VE-------2")
    with pytest.raises(InvalidInput):
        services.grid_area_update(actor=issuer, grid_area_id=area.pk, time_zone="Nowhere")
    assert GridArea.objects.get(pk=area.pk).time_zone == "Europe/Berlin"
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
