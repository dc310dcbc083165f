"""Bad input answers 4xx with a code before it can reach a decoder or the database.

Each case sends the request that used to answer 500 (issue: hardening).
"""

import logging

import pytest
from django.db import OperationalError, connection
from django.test import Client

from tests.conftest import client_for
from tests.factories import AccountFactory, OrganisationFactory, member_of

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def producer_client():
    organisation = OrganisationFactory()
    user = member_of(organisation)
    return client_for(user), AccountFactory(organisation=organisation)


def test_deep_json_to_an_anonymous_endpoint_is_400_json_too_deep(api_client):
    # when
    response = api_client.post("/api/v1/auth/tokens/", DEEP, content_type="application/json")
    # then
    assert_error(response, 400, "json_too_deep")


def test_deep_json_inside_an_object_is_400_json_too_deep(producer_client):
    # given
    client, account = producer_client
    body = '{"to_account": ' + DEEP + "}"
    # when
    response = client.post(
        f"/api/v1/bundles/{account.pk}/transfers/", body, content_type="application/json"
    )
    # then
    assert_error(response, 400, "json_too_deep")


def test_json_nested_past_the_setting_is_refused_even_within_the_stack(api_client, settings):
    # given
    settings.API_JSON_MAX_DEPTH = 4
    body = '{"username": [[[["x"]]]]}'
    # when
    response = api_client.post("/api/v1/auth/tokens/", body, content_type="application/json")
    # then
    assert_error(response, 400, "json_too_deep")


def test_json_body_over_the_size_limit_is_413(api_client, settings):
    # given
    settings.API_JSON_MAX_BYTES = 100
    body = '{"username": "' + "x" * 200 + '"}'
    # when
    response = api_client.post("/api/v1/auth/tokens/", body, content_type="application/json")
    # then
    assert_error(response, 413, "request_too_large")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ledger/subjects/bundle/%00/",
        "/api/v1/federation/mirrors/%00/checkpoint",
        "/api/v1/federation/mirrors/%00/entries/",
        "/api/v1/bundles/?country=%00",
        "/api/v1/devices/?%00=1",
    ],
)
def test_nul_in_path_or_query_is_400_invalid_characters(api_client, path):
    # when
    response = api_client.get(path)
    # then
    assert_error(response, 400, "invalid_characters")


def test_nul_in_a_page_address_is_a_plain_400(api_client):
    # when
    response = api_client.get("/certificates/%00/")
    # then
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "cookie",
    [
        'sessionid="abcdefgh\\000ijklmnop"',  # the cookie parser unquotes \000 to NUL
        "sessionid=" + "a" * 41,  # longer than any session key
        "sessionid=ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",  # Django issues a-z and 0-9 only
    ],
)
@pytest.mark.parametrize(("path", "status"), [("/api/v1/bundles/", 401), ("/", 200)])
def test_a_session_cookie_no_session_could_have_is_no_session(cookie, path, status):
    # when a page and the API are asked with it
    client = Client(HTTP_COOKIE=cookie, raise_request_exception=False)
    response = client.get(path)
    # then as without a session: not a 500 from the database driver
    assert response.status_code == status


def test_a_logged_in_session_still_works(client):
    # given a user logged in through the session
    user = member_of(OrganisationFactory())
    client.force_login(user)
    # then the API answers as that user
    assert client.get("/api/v1/me/").json()["user"]["username"] == user.username


def test_overlong_query_parameter_is_400_parameter_too_long(api_client, settings):
    # given
    settings.API_PARAMETER_MAX_LENGTH = 50
    # when
    response = api_client.get("/api/v1/bundles/?country=" + "D" * 51)
    # then
    body = assert_error(response, 400, "parameter_too_long")
    assert body["extra"]["parameter"] == "country"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bundles/?period_after=2026-01-01T00:00:00%2B18:35",
        "/api/v1/readings/?period_start=2026-01-01T00:00:00%2B20:00",
    ],
)
def test_time_zone_offset_beyond_1559_is_400(producer_client, path):
    # given
    client, _account = producer_client
    # when
    response = client.get(path)
    # then
    body = assert_error(response, 400, "invalid")
    assert set(body["extra"]["fields"]) & {"period_after", "period_start"}


def test_a_legal_offset_filters_like_its_utc_time(producer_client):
    # given
    client, _account = producer_client
    # when
    response = client.get("/api/v1/bundles/?period_after=2026-01-01T00:00:00%2B14:00")
    # then
    assert response.status_code == 200, response.content


def test_integer_filter_beyond_bigint_is_400(producer_client):
    # given
    client, _account = producer_client
    # when
    response = client.get(f"/api/v1/bundles/?device={2**70}")
    # then
    assert_error(response, 400, "invalid")


@pytest.fixture
def database_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refuse)


@pytest.mark.parametrize("path", ["/api/v1/bundles/1/", "/api/v1/ledger/checkpoints/"])
def test_database_outage_is_503_database_unavailable_on_the_api(database_down, path, caplog):
    # given
    client = Client(raise_request_exception=False)
    # when
    with caplog.at_level(logging.ERROR):
        response = client.get(path)
    # then
    body = assert_error(response, 503, "database_unavailable")
    assert response["Retry-After"].isdigit()
    assert "Connection refused" not in response.content.decode()
    assert body["extra"]["retry_after_seconds"] == int(response["Retry-After"])


def test_database_outage_is_503_on_pages(database_down):
    # given
    client = Client(raise_request_exception=False)
    # when
    response = client.get("/certificates/1/")
    # then
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert "Connection refused" not in response.content.decode()


def test_responses_carry_a_request_id_and_echo_a_given_one(api_client):
    # when
    fresh = api_client.get("/healthz")
    echoed = api_client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    bogus = api_client.get("/healthz", HTTP_X_REQUEST_ID="bad id\twith spaces")
    # then
    assert len(fresh["X-Request-ID"]) == 32
    assert echoed["X-Request-ID"] == "abc-123"
    assert bogus["X-Request-ID"] != "bad id\twith spaces"
