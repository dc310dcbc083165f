"""The schema's patterns are ECMA-262 regular expressions; the code reads the same texts
with Python. Where the dialects differ, the API and the schema disagreed (found by hand
after fuzzing, 2026-12-07):

- `\\s`: ECMA-262's takes U+FEFF and not U+001C-U+001F or U+0085, str.strip() the reverse;
- `\\d` and `\\w`: ASCII in ECMA-262, any script's in Python (and int(), Decimal() read
  Arabic-Indic digits);
- `\\Z` and lookbehinds (Django's URL pattern) are not ECMA-262 at all;
- DRF's BooleanField took 0, 1 and "yes" for the schema's boolean, and its IntegerField
  the text "12" or "1.0" for the schema's integer.

Patterns now spell the sets out (registry.text_patterns.SPACE, [0-9]) and the code takes
exactly what they say."""

import re

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from charging import errors as charging_errors
from charging import tariffs
from contracts.errors import InvalidTerms
from contracts.kinds.base import TermsReader
from registry.api.filters import AsciiIntegerField
from registry.api.serializers import InputSerializer
from tests.assets.factories import DeviceFactory, MeterFactory, public_key_b64, signing_key
from tests.conftest import client_for
from tests.factories import OrganisationFactory, member_of
from tests.registry.schema_walk import nodes_taken
from tests.registry.test_schema_fuzz_findings import (
    body_schema,
    schema,  # noqa: F401 (a fixture)
    schema_allows,
)

pytestmark = pytest.mark.django_db
PYTHON_ONLY = re.compile(r"\\[sSdDwWZAbB]|\(\?<")


def test_no_pattern_the_api_takes_uses_python_only_syntax(schema):  # noqa: F811
    found = [
        node["pattern"]
        for _path, node in nodes_taken(schema, lambda node: isinstance(node.get("pattern"), str))
    ]
    assert len(found) > 100, "the sweep found too few patterns"
    assert [p for p in found if PYTHON_ONLY.search(p)] == []


@pytest.mark.parametrize(("pad", "taken"), [("\x1c", True), ("\x85", True), ("\ufeff", False)])
def test_a_meter_key_padded_as_str_strip_pads_is_what_the_schema_says(schema, pad, taken):  # noqa: F811
    organisation = OrganisationFactory()
    meter = MeterFactory(device=DeviceFactory(organisation=organisation))
    body = {"public_key": pad + public_key_b64(signing_key(5)) + pad}
    documented = body_schema(schema, "/api/v1/meters/{serial}/keys/", "post")
    assert schema_allows(schema, documented, body) is taken
    response = client_for(member_of(organisation)).post(
        f"/api/v1/meters/{meter.serial}/keys/", body, format="json"
    )
    assert (response.status_code == 201) is taken, response.content


def test_terms_text_that_str_strip_makes_blank_is_blank_in_the_schema():
    from contracts.api.terms_schema import TEXT

    assert not re.fullmatch(TEXT["pattern"], "\x1c\x85")  # strip() empties it
    assert re.fullmatch(TEXT["pattern"], "\ufeff")  # strip() keeps it
    with pytest.raises(InvalidTerms):
        TermsReader({"name": "\x1c\x85"}, {"name"}).text("name")
    assert TermsReader({"name": "\ufeff"}, {"name"}).text("name") == "\ufeff"


def test_terms_with_a_lone_surrogate_are_invalid_terms_not_a_500():
    """POST /contracts/ with a beneficiary_name holding "\\ud800": the ledger's RFC 8785
    encoding refused it after validation, a 500."""
    with pytest.raises(InvalidTerms):
        TermsReader({"beneficiary_name": "AC\ud800ME"}, {"beneficiary_name"})


def test_a_tariff_element_whose_components_are_no_list_is_invalid_tariff():
    with pytest.raises(charging_errors.InvalidTariff):
        tariffs.tariff_elements_clean([{"price_components": 5}], "EUR")


class _Probe(InputSerializer):
    flag = serializers.BooleanField(required=False)
    amount = serializers.DecimalField(max_digits=6, decimal_places=2, required=False)
    count = serializers.IntegerField(required=False)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"flag": True}, True),
        ({"flag": 0}, False),
        ({"flag": "yes"}, False),
        ({"flag": "true"}, False),
        ({"amount": "12.50"}, True),
        ({"amount": "\u0661\u0662.5"}, False),
        ({"count": 12}, True),
        ({"count": "12"}, False),
        ({"count": "1.0"}, False),
    ],
)
def test_a_boolean_is_true_or_false_a_decimal_ascii_and_an_integer_a_number(body, valid):
    assert _Probe(data=body).is_valid() is valid


def test_the_notification_preference_takes_a_boolean_only():
    client = client_for(member_of(OrganisationFactory()))
    for value in (0, "yes"):
        response = client.put(
            "/api/v1/notifications/preferences/", {"email_enabled": value}, format="json"
        )
        assert response.status_code == 400, (value, response.content)
    assert client.get("/api/v1/notifications/preferences/").json() == {"email_enabled": True}


def test_ids_and_integer_filters_are_ascii_digits():
    client = client_for(member_of(OrganisationFactory()))
    assert client.get("/api/v1/market/orders/%D9%A1/").status_code == 404
    assert client.get("/api/v1/market/orders/?market=%D9%A1").status_code == 400
    with pytest.raises(DjangoValidationError):
        AsciiIntegerField().clean("\u0661")
    assert AsciiIntegerField().clean(" 12 ") == 12


@pytest.mark.parametrize(
    ("username", "status"), [("Ёжик", 201), ("ünï", 201), ("a\u00d7b", 400), ("٣٣٣", 400)]
)
def test_a_username_is_what_the_schema_pattern_says(schema, username, status):  # noqa: F811
    body = {"username": username, "password": "correct horse battery", "email": ""}
    documented = body_schema(schema, "/api/v1/auth/register/", "post")
    assert schema_allows(schema, documented, body) is (status == 201)
    response = client_for(None).post("/api/v1/auth/register/", body, format="json")
    assert response.status_code == status, response.content


def test_a_webhook_url_is_http_or_https(schema):  # noqa: F811
    documented = body_schema(schema, "/api/v1/webhooks/", "post")
    assert not schema_allows(
        schema, documented, {"organisation": 1, "url": "ftp://example.com/x", "kinds": ["x"]}
    )
    organisation = OrganisationFactory()
    response = client_for(member_of(organisation)).post(
        "/api/v1/webhooks/",
        {
            "organisation": organisation.pk,
            "url": "ftp://example.com/x",
            "kinds": ["bundle.transferred"],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "url" in response.json()["extra"]["fields"]


@pytest.mark.parametrize(
    ("email", "status"),
    [("x.y@example.org", 201), ("", 201), ("a@b.c", 400), ("0@0.a", 400), ("x@ex-.org", 400)],
)
def test_a_registration_email_is_what_the_schema_pattern_says(schema, email, status):  # noqa: F811
    """Seed runs sent "0@0.a" and "a@b.c": valid `format: email`, refused by Django's
    EmailValidator (a top-level domain of one letter). The schema now states the form."""
    body = {"username": "mail-test", "password": "correct horse battery", "email": email}
    documented = body_schema(schema, "/api/v1/auth/register/", "post")
    assert schema_allows(schema, documented, body) is (status == 201)
    response = client_for(None).post("/api/v1/auth/register/", body, format="json")
    assert response.status_code == status, response.content


def test_a_path_integer_is_never_negative_in_the_schema(schema):  # noqa: F811
    """The routes take digits only (`-1` matches no route: 404), so the schema's path
    integers start at 0, not at -2**63."""
    found = [
        (path, parameter["schema"])
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["schema"].get("type") == "integer"
    ]
    assert len(found) > 20 and all(s["minimum"] == 0 for _path, s in found), found
    assert client_for(None).get("/api/v1/ledger/entries/-1/").status_code == 404


@pytest.mark.parametrize(
    ("start", "status"), [("5", 200), ("5.0", 400), (" 7 ", 200), ("1e3", 400)]
)
def test_a_query_integer_is_digits_only(start, status):
    """Fuzzing seed 27: `GET /ledger/entries/?start=5828994960684589.0` was answered 200
    (DRF's and Django's integer fields drop a ".0"), for a parameter the schema types
    integer."""
    client = client_for(member_of(OrganisationFactory()))
    response = client.get(f"/api/v1/ledger/entries/?start={start}&limit=5")
    assert response.status_code == status, response.content
    filtered = client.get(f"/api/v1/market/orders/?market={start}")
    assert filtered.status_code == status, filtered.content
