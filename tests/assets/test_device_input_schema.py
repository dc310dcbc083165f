"""A device's input as the schema states it and as the API checks it (issue 16's fuzzer).

The schema fuzzer sent a schema-valid registration (a random technology code, an unknown
grid area, a storage device without efficiency) and got a plain 400 `invalid`. Now the
schema lists the EECS codes and bounds the coordinates, the efficiency and the energy
figures, and what no schema can say (a grid area the registry does not have, values that
do not fit together, a date after today) is refused as `device_inconsistent`, which
scripts/fuzz_rules.py lists for the device operations.
"""

import itertools
import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers as drf

from assets import codes
from assets.api import serializers
from assets.models import Device
from tests.assets.factories import DeviceFactory
from tests.conftest import client_for
from tests.factories import AccountFactory
from tests.registry.test_schema_fuzz_findings import body_schema, fuzz_rules, schema_allows

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _accepts(field: drf.Field, text: str) -> bool:
    try:
        field.run_validation(text)
    except drf.ValidationError:
        return False
    return True


def _decimal_texts(whole_max: int, places: int) -> list[str]:
    """Decimals as clients write them: signs, whole parts up to past the bound, no, some
    and too many fraction digits, a bare point and a leading point."""
    wholes = [*range(0, whole_max + 3), 999]
    fractions = ["", ".", ".0", ".5", "." + "0" * places, "." + "9" * places]
    fractions += ["." + "0" * (places - 1) + "1", "." + "0" * places + "1"]
    texts = [
        f"{sign}{whole}{fraction}"
        for sign, whole, fraction in itertools.product(["", "-"], wholes, fractions)
    ]
    return texts + [f"{sign}{fraction}" for sign in ["", "-"] for fraction in fractions[2:]]


@pytest.mark.parametrize(
    ("field", "pattern", "whole_max", "places"),
    [
        (
            serializers._coordinate(90, serializers.LATITUDE_PATTERN),
            serializers.LATITUDE_PATTERN,
            90,
            6,
        ),
        (
            serializers._coordinate(180, serializers.LONGITUDE_PATTERN),
            serializers.LONGITUDE_PATTERN,
            180,
            6,
        ),
        (serializers._efficiency(), serializers.EFFICIENCY_PATTERN, 1, 4),
    ],
)
def test_a_ranged_decimals_pattern_is_what_its_field_accepts(field, pattern, whole_max, places):
    # given every plainly written decimal around the field's bounds
    texts = _decimal_texts(whole_max, places)
    # then the schema's pattern matches exactly those the field accepts
    disagree = [t for t in texts if bool(re.fullmatch(pattern, t)) != _accepts(field, t)]
    assert disagree == []
    accepted = sum(_accepts(field, t) for t in texts)
    assert accepted >= 8 and len(texts) - accepted >= 8  # both sides are tried


def test_the_schema_lists_the_eecs_codes_and_bounds_the_rest(schema):
    for component in ("DeviceRegisterInputRequest", "PatchedDeviceUpdateInputRequest"):
        fields = schema["components"]["schemas"][component]["properties"]
        for name, listed in (
            ("technology_code", codes.technologies()),
            ("energy_source_code", codes.energy_sources()),
        ):
            (ref,) = fields[name]["allOf"]
            enum = schema["components"]["schemas"][ref["$ref"].split("/")[-1]]["enum"]
            assert enum == sorted(listed)
            assert schema_allows(schema, fields[name], enum[-1])
            assert not schema_allows(schema, fields[name], enum[-1] + "0")
        assert fields["latitude"]["pattern"] == serializers.LATITUDE_PATTERN
        assert fields["longitude"]["pattern"] == serializers.LONGITUDE_PATTERN
        assert fields["round_trip_efficiency"]["pattern"] == serializers.EFFICIENCY_PATTERN
        for name in ("capacity_w", "storage_capacity_wh"):
            assert fields[name]["maximum"] == 2**53 - 1


def _registration(organisation, account, grid_area_id, **overrides) -> dict:
    return {
        "organisation": organisation.pk,
        "name": "Roof",
        "grid_area": grid_area_id,
        "technology_code": "T010101",
        "energy_source_code": "F01040100",
        "capacity_w": 10_886,
        "commissioning_date": "2021-04-01",
        "latitude": "-2.170001",
        "longitude": "-.65",
        "owners": [{"organisation": organisation.pk, "account": account.pk, "share": 1}],
    } | overrides


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        # a grid area nobody registered: the registry's data
        ({"grid_area": 240_672}, {"grid_area"}),
        # the fuzzer's storage device: no efficiency, as the schema allows
        (
            {"grid_area": 240_672, "is_storage": True, "storage_capacity_wh": 209},
            {"grid_area", "round_trip_efficiency"},
        ),
        # wind energy from a PV technology: two fields together
        ({"energy_source_code": "F01050100"}, {"energy_source_code"}),
        ({"commissioning_date": "2999-01-01"}, {"commissioning_date"}),
        ({"round_trip_efficiency": "0.9"}, {"round_trip_efficiency"}),
    ],
)
def test_a_schema_valid_registration_refused_for_data_is_device_inconsistent(
    schema, producer, producer_org, grid_area, overrides, fields
):
    # given a registration the schema calls valid
    account = AccountFactory(organisation=producer_org)
    body = _registration(producer_org, account, grid_area.pk, **overrides)
    assert schema_allows(schema, body_schema(schema, "/api/v1/devices/", "post"), body)
    before = Device.objects.count()
    # when it is sent
    response = client_for(producer).post("/api/v1/devices/", body, format="json")
    # then every problem is named, under the code the fuzzer's rules accept
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "device_inconsistent"
    assert set(response.json()["extra"]["fields"]) == fields
    assert "device_inconsistent" in fuzz_rules().RULES["POST /api/v1/devices/"]
    assert Device.objects.count() == before
    # and the same body with those values put right registers the device
    fixed = _registration(producer_org, account, grid_area.pk)
    assert client_for(producer).post("/api/v1/devices/", fixed, format="json").status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"technology_code": "T999999"}, "technology_code"),
        ({"latitude": "90.5"}, "latitude"),
        ({"longitude": "-180.000001"}, "longitude"),
        ({"capacity_w": 2**53}, "capacity_w"),
        ({"is_storage": True, "storage_capacity_wh": 5, "round_trip_efficiency": "1.5"}, None),
    ],
)
def test_a_value_the_schema_refuses_is_invalid(
    schema, producer, producer_org, grid_area, overrides, field
):
    # given a value outside what the schema states
    account = AccountFactory(organisation=producer_org)
    body = _registration(producer_org, account, grid_area.pk, **overrides)
    assert not schema_allows(schema, body_schema(schema, "/api/v1/devices/", "post"), body)
    # when it is sent
    response = client_for(producer).post("/api/v1/devices/", body, format="json")
    # then it is a plain `invalid`, which the fuzzer's rules do not excuse
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert field is None or field in response.json()["extra"]["fields"]
    assert "invalid" not in fuzz_rules().RULES["POST /api/v1/devices/"]


def test_an_edit_that_no_longer_fits_is_device_inconsistent(producer, producer_org):
    # given a draft PV plant
    device = DeviceFactory(organisation=producer_org, status=Device.Status.DRAFT)
    # when its energy source is changed to one EECS does not allow with its technology
    response = client_for(producer).patch(
        f"/api/v1/devices/{device.pk}/",
        {"technology_code": "T010101", "energy_source_code": "F01050100"},
        format="json",
    )
    # then
    assert (response.status_code, response.json()["code"]) == (400, "device_inconsistent")
    assert "device_inconsistent" in fuzz_rules().RULES["PATCH /api/v1/devices/{id}/"]
    assert Device.objects.get(pk=device.pk).energy_source_code == device.energy_source_code
