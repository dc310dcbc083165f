"""The schema fuzzer's findings on query parameters and text formats (issue 16), each
request sent again: a parameter the schema types (a time, a boolean, an id, a sequence
number, a format) is never quietly read as "not given" when its value does not fit, and
what the API refuses the schema refuses too.
"""

import importlib.util
import json
import re
from pathlib import Path

import jsonschema_rs
import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator

from registry.api.openapi import NON_BLANK_TEXT
from tests.conftest import client_for
from tests.factories import OrganisationFactory, member_of
from tests.registry.test_schema_fuzz_findings import body_schema, parameter, schema_allows

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def producer():
    return member_of(OrganisationFactory())


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/market/orders/", "slot_start="),
        ("/api/v1/market/orders/", "status="),
        ("/api/v1/bundles/", "period_after="),
        ("/api/v1/organisations/", "is_issuing_body="),
        ("/api/v1/devices/", "organisation="),
    ],
)
def test_an_empty_value_for_a_typed_filter_is_400(schema, producer, path, query):
    # given: the schema's type or pattern has no empty value
    name = query.split("=")[0]
    documented = parameter(schema, path, name)["schema"]
    assert not schema_allows(schema, documented, "")
    # when: django-filter used to skip it and answer the unfiltered list
    response = client_for(producer).get(f"{path}?{query}")
    # then
    assert response.status_code == 400, response.content
    assert list(response.json()["extra"]["fields"]) == [name]


def test_an_empty_value_for_a_free_text_filter_still_filters(schema, producer):
    documented = parameter(schema, "/api/v1/readings/", "meter")["schema"]
    assert schema_allows(schema, documented, "")
    response = client_for(producer).get("/api/v1/readings/?meter=")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("value", "status"), [("%C3%96G%C2%AD", 400), ("1", 400), ("true", 200)])
def test_the_unread_flag_takes_true_or_false_only(schema, producer, value, status):
    documented = parameter(schema, "/api/v1/notifications/", "unread")["schema"]
    assert documented["type"] == "boolean"
    response = client_for(producer).get(f"/api/v1/notifications/?unread={value}")
    assert response.status_code == status, response.content


@pytest.mark.parametrize(
    ("query", "field"), [("device=-179", "device"), ("accept_valid=yes", "accept_valid")]
)
def test_a_readings_upload_refuses_what_its_parameters_schema_refuses(
    schema, producer, query, field
):
    # given
    name, value = query.split("=")
    documented = parameter(schema, "/api/v1/readings/", name, method="post")["schema"]
    typed = int(value) if documented["type"] == "integer" else value
    assert not schema_allows(schema, documented, typed)
    # when
    response = client_for(producer).post(f"/api/v1/readings/?{query}", [], format="json")
    # then: the parameter is named, not `readings_malformed`
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"]


def test_a_dry_run_issuance_is_an_id_from_1(schema):
    documented = parameter(schema, "/api/v1/contracts/{id}/dry-run/", "issuance")["schema"]
    assert not schema_allows(schema, documented, -1)
    assert not schema_allows(schema, documented, 2**63)
    assert schema_allows(schema, documented, 1)


def test_a_list_under_one_object_documents_no_filter_it_ignores(schema):
    # given: the paginated lists under one object (an agent's decisions, a settlement
    # account's journal, a contract's executions) read the page only; the first two used
    # to inherit their viewset's list filters and ordering in the schema, which they
    # ignore (?status=bogus on an agent's decisions: a 200 the schema rules out)
    nested = {}
    for path, operations in schema["paths"].items():
        names = {p["name"] for p in operations.get("get", {}).get("parameters", [])}
        if re.search(r"\}/[a-z-]+/$", path) and "page" in names:
            nested[path] = names - {"id", "page", "page_size"}
    assert "/api/v1/market/agents/{id}/decisions/" in nested
    assert "/api/v1/market/settlement-accounts/{id}/journal/" in nested
    # then: none documents a parameter it does not read
    assert {path: names for path, names in nested.items() if names} == {}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/federation/log/entries/", "start=48570248974028295042710288465920"),
        ("/api/v1/ledger/entries/", "start=9223372036854775808"),
        ("/api/v1/ledger/proofs/inclusion/", "seq=0&size=9223372036854775808"),
    ],
)
def test_a_sequence_number_beyond_64_bits_is_400(schema, path, query):
    name, value = query.split("&")[-1].split("=")
    assert not schema_allows(schema, parameter(schema, path, name)["schema"], int(value))
    response = client_for(None).get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert name in response.json()["extra"]["fields"]


def test_an_empty_format_is_400(schema):
    # given: the schema lists the formats; DRF would ignore an empty one
    formats = parameter(schema, "/api/v1/federation/log/entries/", "format")["schema"]
    assert not schema_allows(schema, formats, "")
    # when
    response = client_for(None).get("/api/v1/federation/log/entries/?format=")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "format_blank")


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("base_url", "https://peer.example.org/", "http://z/Pw\x00"),
        ("base_url", "\x0b https://peer.example.org/a\r\t", "http://hq:391/\x1c\xd4V"),
        ("origin", "peer.example.org/registry", "peer\x00.example.org"),
    ],
)
def test_peer_texts_document_what_the_api_refuses(schema, field, good, bad):
    # DRF refuses NUL in any text; the peer's own patterns allowed it. A space inside the
    # URL's path is refused by Python's `\s`, which in the fuzzer's validator (Rust's
    # regex) lacks \x1c-\x1f.
    peer = body_schema(schema, "/api/v1/federation/peers/", "post")
    properties = schema["components"]["schemas"][peer["$ref"].split("/")[-1]]["properties"]
    rust = jsonschema_rs.validator_for(properties[field])
    assert not schema_allows(schema, properties[field], bad) and not rust.is_valid(bad)
    assert schema_allows(schema, properties[field], good) and rust.is_valid(good)


def test_a_consent_names_at_least_one_meter(schema, producer):
    consent = body_schema(schema, "/api/v1/consents/", "post")
    meters = schema["components"]["schemas"][consent["$ref"].split("/")[-1]]["properties"][
        "site_meter_ids"
    ]
    assert not schema_allows(schema, meters, [])
    body = {
        "site_id": 2,
        "purpose": "audit",
        "resolution": "daily",
        "grantee_id": 0,
        "site_meter_ids": [],
        "valid_to": "2030-01-01T00:00:00Z",
    }
    response = client_for(producer).post(
        "/api/v1/consents/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 400, response.content
    assert "site_meter_ids" in response.json()["extra"]["fields"]


def test_a_non_blank_text_is_one_that_strip_leaves_something_of():
    # the fuzzer offered "\x1e" as non-blank (Rust's `\s` lacks it); DRF trims it away and
    # answers "blank". Python's re and the fuzzer's validator must both agree with strip().
    python = re.compile(NON_BLANK_TEXT)
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": NON_BLANK_TEXT})
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    non_blank = {c for c in characters if c.strip() != "" and c != "\x00"}
    assert {c for c in characters if python.match(c)} == non_blank
    assert {c for c in characters if rust.is_valid(c)} == non_blank


def test_the_fuzzer_leaves_a_body_its_schema_refuses_to_the_other_checks(schema):
    # the stateful phase put a 400's `extra` object into a reject body and called the case
    # positive; the API's "Unknown field." is then no schema-valid request refused
    spec = importlib.util.spec_from_file_location("fuzz_rules", REPO / "scripts/fuzz_rules.py")
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(schema, default=str)))
    reject = loaded["/api/v1/devices/{id}/reject/"]["POST"]
    with_extra = reject.Case(body={"reason": "r", "extra": {}}, media_type="application/json")
    plain = reject.Case(body={"reason": "r"}, media_type="application/json")
    assert rules._body_outside_schema(with_extra)
    assert not rules._body_outside_schema(plain)


@pytest.mark.parametrize(
    ("path", "field", "bad"),
    [
        ("/api/v1/market/orders/{id}/amend/", "limit_price", -30909206),
        ("/api/v1/market/orders/{id}/amend/", "quantity_wh", -9223372036854775807),
        ("/api/v1/market/orders/", "limit_price", 10**9 + 1),
        ("/api/v1/charging/tokens/", "type", "\u00f2\u00b1"),
    ],
)
def test_bounds_the_services_check_are_in_the_schema(schema, path, field, bad):
    # the fuzzer amended order 1 with a negative price: the service's invalid_price
    body = body_schema(schema, path, "post")
    properties = schema["components"]["schemas"][body["$ref"].split("/")[-1]]["properties"]
    assert not schema_allows(schema, properties[field], bad)
