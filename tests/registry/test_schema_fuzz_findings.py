"""The schema fuzzer's ST201/ST202 findings (issue 16): each request the schema called valid
but the API refused, or the reverse, sent again; the schema and the API now agree on it.

`schema_allows` validates a request against the generated schema the way the fuzzer reads
it, so each test checks both sides: what the schema says, and what the API answers.
"""

import importlib.util
import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.assets.factories import DeviceFactory, MeterFactory
from tests.conftest import client_for
from tests.factories import OrganisationFactory, issuing_body_user, member_of

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _openapi_to_json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type (what schemathesis does too)."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_json_schema(value) for key, value in node.items()}
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def schema_allows(schema: dict, part: dict, instance) -> bool:
    document = _openapi_to_json_schema(schema)
    validator = jsonschema.Draft7Validator(
        {**_openapi_to_json_schema(part), "components": document["components"]}
    )
    return validator.is_valid(instance)


def body_schema(schema: dict, path: str, method: str, media: str = "application/json") -> dict:
    return schema["paths"][path][method]["requestBody"]["content"][media]["schema"]


def parameter(schema: dict, path: str, name: str, method: str = "get") -> dict:
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)


@pytest.fixture
def producer():
    return member_of(OrganisationFactory())


# -- filters: a foreign key is an integer; an id nobody has matches nothing -------------


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/devices/", "organisation=1992989"),
        ("/api/v1/exports/", "bundle=-3306405475&from_account=-356"),
        ("/api/v1/market/trades/", "market=-1525555590"),
        ("/api/v1/accounts/", "organisation=-9223372036854775808"),
    ],
)
def test_an_unknown_id_in_a_filter_is_an_empty_page(schema, producer, path, query):
    # given: the schema calls each value a 64-bit integer
    for name in (pair.split("=")[0] for pair in query.split("&")):
        assert parameter(schema, path, name)["schema"]["type"] == "integer"
    # when
    response = client_for(producer).get(f"{path}?{query}")
    # then: not django-filter's 400 "Select a valid choice"
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    "query", ["device=-2.294557281112494e%2B57", "device=1.5", "organisation=6.3e16"]
)
def test_a_number_that_is_no_integer_in_an_id_filter_is_400(schema, producer, query):
    # given
    assert parameter(schema, "/api/v1/bundles/", "device")["schema"]["type"] == "integer"
    # when
    response = client_for(producer).get(f"/api/v1/bundles/?{query}")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


@pytest.mark.parametrize(("value", "status"), [("1.3e16", 400), ("yes", 400), ("true", 200)])
def test_a_boolean_filter_takes_true_or_false_only(schema, value, status):
    # given
    assert parameter(schema, "/api/v1/organisations/", "is_issuing_body")["schema"] == {
        "type": "boolean"
    }
    # when: the word used to be ignored, listing every organisation
    response = client_for(issuing_body_user()).get(
        f"/api/v1/organisations/?is_issuing_body={value}"
    )
    # then
    assert response.status_code == status, response.content


def test_a_status_list_filter_is_documented_as_names(schema):
    status = parameter(schema, "/api/v1/bundles/", "status")["schema"]
    assert status["items"]["type"] == "string" and "active" in status["items"]["enum"]


def test_a_text_parameter_documents_the_input_limits(schema, producer, settings):
    # given
    meter = parameter(schema, "/api/v1/readings/", "meter")["schema"]
    assert meter["maxLength"] == settings.API_PARAMETER_MAX_LENGTH
    assert not schema_allows(schema, meter, "a\x00b")
    # when
    response = client_for(producer).get("/api/v1/readings/?meter=a%00b")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "invalid_characters")


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00%2B01:00", "9999-12-31T23:00:00-05:00"])
def test_a_date_time_filter_beyond_the_calendar_in_utc_is_400(schema, producer, moment):
    # given: the schema's date-times stay within years 1000-8999
    documented = parameter(schema, "/api/v1/readings/", "period_start")["schema"]
    assert not schema_allows(schema, documented, moment.replace("%2B", "+"))
    assert schema_allows(schema, documented, "2026-01-01T00:00:00+15:59")
    # when: it used to be an OverflowError, a 500
    response = client_for(producer).get(f"/api/v1/readings/?period_start={moment}")
    # then
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_meter_keys_document_no_list_filters(schema):
    names = {
        p["name"] for p in schema["paths"]["/api/v1/meters/{serial}/keys/"]["get"]["parameters"]
    }
    assert names == {"serial"}


# -- bodies: JSON only; what the serializers and services check, the schema says -----------


def test_a_form_encoded_body_is_415(producer):
    # when: a form cannot say false (an absent checkbox is false), null or a list
    response = client_for(producer).put(
        "/api/v1/notifications/preferences/",
        "email_enabled=false",
        content_type="application/x-www-form-urlencoded",
    )
    # then
    assert response.status_code == 415, (response.status_code, response.content)


def test_an_empty_body_sent_as_a_form_misses_its_required_fields(producer):
    # when: DRF reads no body as an empty form, where a missing boolean meant false
    response = client_for(producer).put(
        "/api/v1/notifications/preferences/", "", content_type="application/x-www-form-urlencoded"
    )
    # then
    assert response.status_code == 400, response.content
    assert "email_enabled" in response.json()["extra"]["fields"]


def test_a_reason_is_required_where_the_service_requires_one(schema, producer):
    # given
    device = DeviceFactory(organisation=producer.memberships.first().organisation)
    decommission = body_schema(schema, "/api/v1/devices/{id}/decommission/", "post")
    assert not schema_allows(schema, decommission, {})
    assert schema_allows(schema, body_schema(schema, "/api/v1/devices/{id}/submit/", "post"), {})
    # when
    response = client_for(producer).post(
        f"/api/v1/devices/{device.pk}/decommission/", {}, format="json"
    )
    # then
    assert response.status_code == 400
    assert "reason" in response.json()["extra"]["fields"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/transfers/batch/", {"items": [], "to_account": "0"}),
        ("/api/v1/devices/{id}/owners/", {"owners": []}),
        ("/api/v1/readings/", []),
    ],
)
def test_an_empty_list_is_schema_invalid_where_the_api_refuses_it(schema, producer, path, body):
    # given
    method = "put" if path.endswith("owners/") else "post"
    assert not schema_allows(schema, body_schema(schema, path, method), body)
    device = DeviceFactory(organisation=producer.memberships.first().organisation)
    # when
    response = getattr(client_for(producer), method)(
        path.replace("{id}", str(device.pk)), body, format="json"
    )
    # then
    assert response.status_code == 400, response.content


def test_an_amendment_must_change_something(schema):
    amend = body_schema(schema, "/api/v1/market/orders/{id}/amend/", "post")
    assert not schema_allows(schema, amend, {})
    assert schema_allows(schema, amend, {"limit_price": 5})
    patch = schema["paths"]["/api/v1/market/agents/{id}/"]["patch"]["requestBody"]
    assert patch["required"] is True


@pytest.mark.parametrize(
    ("component", "field", "bad", "good"),
    [
        ("DeviceRegisterInputRequest", "latitude", "", "52.520008"),
        ("DeviceRegisterInputRequest", "name", "a\x00b", "Roof"),
        ("UserRegisterInputRequest", "username", "0", "ada.l"),
        ("MeterKeyRotateInputRequest", "public_key", "0", "ab" * 32),
        ("DeviceOwnerInputRequest", "share", "x", "1/3"),
        ("BatchItemInputRequest", "volume_wh", -14553, 5),
    ],
)
def test_field_constraints_the_api_checks_are_in_the_schema(schema, component, field, bad, good):
    documented = schema["components"]["schemas"][component]["properties"][field]
    assert not schema_allows(schema, documented, bad)
    assert schema_allows(schema, documented, good)


def test_a_retirement_names_its_beneficiary(schema):
    retire = schema["components"]["schemas"]["RetireBundleInputRequest"]
    assert {"beneficiary_name", "beneficiary_country"} <= set(retire["required"])


def test_the_transaction_event_body_is_the_ocpp_schema(schema):
    body = schema["paths"]["/api/v1/charging/stations/{id}/transaction-events/"]["post"]
    assert body["requestBody"]["required"] is True
    documented = body["requestBody"]["content"]["application/json"]["schema"]
    assert {"eventType", "timestamp", "triggerReason", "seqNo", "transactionInfo"} <= set(
        documented["required"]
    )
    assert not schema_allows(schema, documented, {})


def test_a_reading_row_is_an_interval_or_a_counter(schema):
    rows = body_schema(schema, "/api/v1/readings/", "post")
    start, end = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
    assert schema_allows(schema, rows, [{"meter": "M-1", "start": start, "end": end, "wh": 5}])
    assert schema_allows(schema, rows, [{"meter": "M-1", "time": start, "counter_wh": 5}])
    assert not schema_allows(schema, rows, [{"meter": "0"}])
    assert not schema_allows(schema, rows, [{"meter": "M-1", "time": start, "wh": 5}])


def test_an_unknown_community_membership_is_404(producer):
    # when
    response = client_for(producer).post("/api/v1/community-members/987654/leave/", {}, "json")
    # then
    assert (response.status_code, response.json()["code"]) == (404, "community_member_not_found")


def test_the_meter_serial_filter_and_row_serial_share_one_pattern(schema):
    row = schema["components"]["schemas"]["ReadingCounterInputRequest"]["properties"]["meter"]
    assert schema_allows(schema, row, MeterFactory.build().serial)


# -- the fuzzer's list of refusals no schema can express names real operations ---------------


def fuzz_rules():
    """scripts/fuzz_rules.py, the refusals the fuzzer accepts beyond the schema."""
    spec = importlib.util.spec_from_file_location("fuzz_rules", REPO / "scripts/fuzz_rules.py")
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    return rules


def test_every_rule_of_the_fuzzer_names_a_documented_operation(schema):
    rules = fuzz_rules()
    for key in rules.RULES:
        method, path = key.split(" [")[0].split(" ", 1)
        assert method.lower() in schema["paths"].get(path, {}), key


# -- contracts: one body per kind; the registry's data refuses with its own code ----------


def test_each_contract_kind_has_its_terms_shape(schema):
    create = schema["components"]["schemas"]["ContractCreateInputRequest"]
    assert create["discriminator"]["propertyName"] == "kind"
    community = {"$ref": create["discriminator"]["mapping"]["community_sharing"]}
    body = {"kind": "community_sharing", "start_at": "2026-01-01T00:00:00Z"}
    body["end_at"] = "2027-01-01T00:00:00Z"
    assert not schema_allows(schema, community, body | {"terms": {}})
    assert schema_allows(schema, community, body | {"terms": {"community_id": 10**9}})


def test_terms_of_the_right_shape_for_no_community_are_terms_unmet(producer):
    # when: the schema allows it; only the registry's data refuses it
    response = client_for(producer).post(
        "/api/v1/contracts/",
        {
            "kind": "community_sharing",
            "terms": {"community_id": 10**9},
            "start_at": "2026-01-01T00:00:00Z",
            "end_at": "2027-01-01T00:00:00Z",
        },
        format="json",
    )
    # then
    assert (response.status_code, response.json()["code"]) == (400, "terms_unmet")


# -- the issuing body's operations --------------------------------------------------------


def test_a_community_price_beyond_its_column_is_400_not_500(schema, producer):
    # given
    create = schema["components"]["schemas"]["CommunityCreateInputRequest"]["properties"]
    assert create["internal_price_minor_per_kwh"]["maximum"] == 2**31 - 1
    organisation = producer.memberships.first().organisation
    # when: 6535556762250745 overflowed the 32-bit column (a 500 on PostgreSQL)
    response = client_for(producer).post(
        "/api/v1/communities/",
        {
            "organisation_id": organisation.pk,
            "name": "Sonnenweg",
            "grid_area_id": 1,
            "key_kind": "static",
            "internal_price_minor_per_kwh": 6535556762250745,
        },
        format="json",
    )
    # then
    assert response.status_code == 400, response.content
    assert "internal_price_minor_per_kwh" in response.json()["extra"]["fields"]


@pytest.mark.parametrize(
    ("component", "field", "bad", "good"),
    [
        ("MoneyMovementInputRequest", "currency", "0", "EUR"),
        ("MoneyMovementInputRequest", "amount_minor", 0, 1),
        ("GridAreaCreateInputRequest", "code", "0", "10YDE-VE-------2"),
        ("GridAreaCreateInputRequest", "time_zone", "0", "Europe/Berlin"),
        ("GridAreaCreateInputRequest", "emission_factor_g_per_kwh", "-1", "0.5"),
        ("MeterReplaceInputRequest", "new_serial", "é", "MTR-2"),
        ("ExportCreateInputRequest", "destination_account", "a b", "GP-1"),
    ],
)
def test_issuing_body_field_constraints_are_in_the_schema(schema, component, field, bad, good):
    documented = schema["components"]["schemas"][component]["properties"][field]
    assert not schema_allows(schema, documented, bad)
    assert schema_allows(schema, documented, good)


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/v1/organisations/{id}/suspend/", "SuspendInputRequest"),
        ("/api/v1/issuance-requests/{id}/reject/", "RejectInputRequest"),
        ("/api/v1/withdrawals/", "WithdrawalInputRequest"),
        ("/api/v1/withdrawals/by-device/", "DeviceWithdrawalInputRequest"),
    ],
)
def test_the_issuing_body_gives_a_reason_where_one_is_required(schema, path, component):
    assert body_schema(schema, path, "post")["$ref"].endswith(component)
    assert "reason" in schema["components"]["schemas"][component]["required"]


def test_a_suspension_without_reason_is_refused_by_the_serializer(producer):
    # when
    organisation = producer.memberships.first().organisation
    response = client_for(issuing_body_user()).post(
        f"/api/v1/organisations/{organisation.pk}/suspend/", {}, format="json"
    )
    # then
    assert response.status_code == 400, response.content
    assert "reason" in response.json()["extra"]["fields"]


def test_a_number_where_the_schema_says_text_is_400(producer):
    # when: DRF's CharField used to store 5270272549782211.0 as the reason's text
    organisation = producer.memberships.first().organisation
    response = client_for(issuing_body_user()).post(
        f"/api/v1/organisations/{organisation.pk}/suspend/",
        {"reason": 5270272549782211.0},
        format="json",
    )
    # then
    assert response.status_code == 400, response.content
    assert response.json()["extra"]["fields"]["reason"] == ["Not a valid string."]


def _text_alternatives(node):
    """Every `oneOf` of a text and the empty text, as drf-spectacular writes a text field
    that may be blank and carries a pattern, anywhere in the schema."""
    if isinstance(node, list):
        for item in node:
            yield from _text_alternatives(item)
    elif isinstance(node, dict):
        one_of = node.get("oneOf")
        if isinstance(one_of, list) and {"type": "string", "maxLength": 0} in one_of:
            yield one_of
        for value in node.values():
            yield from _text_alternatives(value)


def test_a_blank_text_matches_exactly_one_alternative_everywhere(schema):
    """A blank text matched both alternatives, so the schema called "" invalid (oneOf wants
    exactly one) while the API took it: seed 7 sent {"reason": ""} to an approval, 200."""
    found = list(_text_alternatives(schema))
    assert found, "no field may be blank any more: the sweep checks nothing"
    for alternatives in found:
        assert sum(schema_allows(schema, part, "") for part in alternatives) == 1, alternatives


def test_an_approval_with_an_empty_reason_is_valid_and_taken(schema):
    # given: the fuzzer's request
    organisation = OrganisationFactory(status="pending")
    body = {"reason": ""}
    # then: the schema calls it valid ...
    approval = body_schema(schema, "/api/v1/organisations/{id}/approve/", "post")
    assert schema_allows(schema, approval, body)
    # ... and the API takes it
    response = client_for(issuing_body_user()).post(
        f"/api/v1/organisations/{organisation.pk}/approve/", body, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"


def test_a_body_over_the_byte_limit_is_a_documented_413_the_fuzzer_counts_as_refused(
    schema, settings
):
    """Seed 10 sent an onboarding `csv` past its maxLength in JSON escapes (12 bytes a
    character), over the 8 MiB body limit: 413, which schemathesis's list of refusals left
    out (ST201). The runner's config adds it; a schema-valid body can be over the limit
    too (maxLength counts characters), so the ST202 check accepts it as well."""
    # given: a body just over the limit, every character of it written as an escape
    settings.API_JSON_MAX_BYTES = 120_000
    csv = "\U00010437" * 10_001  # "\\ud801\\udc37" in the JSON: 120,012 bytes
    admin = member_of(OrganisationFactory(), role="admin")
    # when
    response = client_for(admin).post(
        "/api/v1/devices/onboard/", json.dumps({"csv": csv}), content_type="application/json"
    )
    # then: refused for its size, as documented
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "request_too_large"
    assert "413" in schema["paths"]["/api/v1/devices/onboard/"]["post"]["responses"]
    # and the fuzzer counts it as a refusal, of invalid and of valid data alike
    config = tomllib.loads((REPO / "scripts/schemathesis.toml").read_text())
    assert "413" in config["checks"]["negative_data_rejection"]["expected-statuses"]
    case = SimpleNamespace(
        operation=SimpleNamespace(label="POST /api/v1/devices/onboard/"),
        media_type="application/json",
    )
    answer = SimpleNamespace(status_code=413, json=response.json)
    assert fuzz_rules()._explained(case, answer)
    other = SimpleNamespace(status_code=413, json=lambda: {"code": "something_else"})
    assert not fuzz_rules()._explained(case, other)


def test_an_untrimmed_text_that_may_not_be_blank_refuses_only_the_empty_one(schema):
    """A password is taken as typed (no trimming): "" is blank, eight spaces are not."""
    token = schema["components"]["schemas"]["ApiTokenCreateInputRequest"]["properties"]
    assert not schema_allows(schema, token["password"], "")
    assert schema_allows(schema, token["password"], " ")
    response = client_for(None).post(
        "/api/v1/auth/tokens/",
        {"name": "cli", "username": "nobody", "password": ""},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["extra"]["fields"]["password"] == ["This field may not be blank."]


def test_a_retirement_naming_a_bundle_twice_is_a_refusal_the_fuzzer_knows(schema, producer):
    """Seed 13 (ST202): two items of one retirement named the same bundle, with different
    volumes, so uniqueItems (whole items) could not have refused it."""
    body = {
        "beneficiary_name": "Ada",
        "beneficiary_country": "DE",
        "purpose": "voluntary",
        "consumption_start": "2026-01-01T00:00:00Z",
        "consumption_end": "2026-02-01T00:00:00Z",
        "items": [{"bundle": 9_000_000_001}, {"bundle": 9_000_000_001, "volume_wh": 5}],
    }
    assert schema_allows(schema, body_schema(schema, "/api/v1/retirements/", "post"), body)
    response = client_for(producer).post("/api/v1/retirements/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "duplicate_bundle")
    case = SimpleNamespace(
        operation=SimpleNamespace(label="POST /api/v1/retirements/"), media_type="application/json"
    )
    assert fuzz_rules()._explained(case, SimpleNamespace(status_code=400, json=response.json))
