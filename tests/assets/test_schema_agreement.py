"""The schema says what the API sends: the three disagreements a schema fuzzer found."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_device_coordinates_are_decimal_strings_in_both(schema, producer, device):
    # when
    body = client_for(producer).get(f"/api/v1/devices/{device.pk}/").json()
    # then
    documented = schema["components"]["schemas"]["DeviceOutput"]["properties"]
    for field in ("latitude", "longitude"):
        assert documented[field]["type"] == "string"
        assert isinstance(body[field], str)
        assert float(body[field]) == pytest.approx(float(getattr(device, field)))


def test_replaced_by_is_null_until_replaced_and_documented_nullable(schema, producer, meter):
    # when
    body = client_for(producer).get(f"/api/v1/meters/{meter.serial}/").json()
    # then
    assert body["replaced_by"] is None
    assert schema["components"]["schemas"]["MeterOutput"]["properties"]["replaced_by"]["nullable"]


def test_meter_keys_are_a_plain_list_in_both(schema, producer, meter):
    # when
    body = client_for(producer).get(f"/api/v1/meters/{meter.serial}/keys/").json()
    # then
    assert isinstance(body, list) and len(body) == 1
    operation = schema["paths"]["/api/v1/meters/{serial}/keys/"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


def test_every_operation_documents_the_common_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert {"400", "429", "503"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(
    ("query", "status"),
    [("page=0", 400), ("page=abc", 400), ("page_size=0", 400), ("page_size=1001", 400),
     ("page_size=x", 400), ("page=2", 404), ("page=1&page_size=1000", 200)],
)  # fmt: skip
def test_page_and_page_size_mean_what_the_schema_says(schema, producer, device, query, status):
    # when
    response = client_for(producer).get(f"/api/v1/devices/?{query}")
    # then
    assert response.status_code == status, response.content
    parameters = {
        p["name"]: p["schema"] for p in schema["paths"]["/api/v1/devices/"]["get"]["parameters"]
    }
    assert parameters["page"]["minimum"] == parameters["page_size"]["minimum"] == 1
    assert parameters["page_size"]["maximum"] == 1000


def test_a_batch_of_several_meters_has_no_meter_and_the_schema_says_so(schema, producer, meter):
    # given: a batch whose readings are of two meters (the household upload does this)
    from assets.models import Meter, ReadingBatch
    from tests.assets.factories import MeterFactory

    second = MeterFactory(device=meter.device, kind=Meter.Kind.CONSUMPTION)
    batch = ReadingBatch.objects.create(
        organisation=meter.device.organisation,
        device=meter.device,
        meter=None,
        status=ReadingBatch.Status.ACCEPTED,
        size=2,
        merkle_root="0" * 64,
    )
    # when
    body = client_for(producer).get(f"/api/v1/reading-batches/{batch.pk}/").json()
    # then
    assert body["meter"] is None and second.serial != meter.serial
    documented = schema["components"]["schemas"]["ReadingBatchOutput"]["properties"]["meter"]
    assert documented["nullable"]
