"""One error shape for the whole API: {"code", "detail", "extra"}."""

import json

import pytest
from django.test import RequestFactory
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import Membership, Organisation
from registry.api.exceptions import api_server_error
from tests.conftest import client_for
from tests.factories import AccountFactory, OrganisationFactory, UserFactory, member_of
from tests.registry.support import last_event_id, row_counts

pytestmark = pytest.mark.django_db

REGISTER = {
    "legal_name": "X GmbH",
    "country": "DE",
    "registration_id": "HRB-1",
    "roles": ["trader"],
}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "extra"}
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["extra"], dict)
    return body


@pytest.fixture
def user_client():
    return client_for(UserFactory())


def test_malformed_json_is_400_malformed_request(user_client):
    before = row_counts(Organisation, Membership)
    response = user_client.post(
        "/api/v1/organisations/", '{"legal_name": "X",', content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")
    assert row_counts(Organisation, Membership) == before


def test_unknown_fields_are_refused_by_name(user_client):
    response = user_client.post("/api/v1/organisations/", REGISTER | {"status": "approved"})
    body = assert_error(response, 400, "invalid")
    assert body["extra"] == {"fields": {"status": ["Unknown field."]}}
    assert Organisation.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (REGISTER | {"roles": "producer"}, "roles"),
        (REGISTER | {"roles": ["king"]}, "roles"),
        (REGISTER | {"country": 49}, "country"),
        (REGISTER | {"legal_name": None}, "legal_name"),
        ({k: v for k, v in REGISTER.items() if k != "country"}, "country"),
    ],
    ids=["string for a list", "bad choice", "number for a string", "null", "missing"],
)
def test_wrong_types_name_the_field(user_client, payload, field):
    body = assert_error(user_client.post("/api/v1/organisations/", payload), 400, "invalid")
    assert list(body["extra"]["fields"]) == [field]
    assert Organisation.objects.count() == 0


def test_a_json_list_instead_of_an_object(user_client):
    response = user_client.post("/api/v1/organisations/", [REGISTER])
    body = assert_error(response, 400, "invalid")
    assert "non_field_errors" in body["extra"]["fields"]


def test_a_number_field_given_text():
    organisation = OrganisationFactory()
    client = client_for(member_of(organisation))
    response = client.post(
        "/api/v1/accounts/", {"organisation": "mine", "kind": "trading", "name": "T"}
    )
    body = assert_error(response, 400, "invalid")
    assert list(body["extra"]["fields"]) == ["organisation"]


def test_missing_authentication_is_401_with_www_authenticate():
    for method, url in [("get", "/api/v1/me/"), ("post", "/api/v1/organisations/")]:
        response = getattr(APIClient(), method)(url, {})
        assert_error(response, 401, "not_authenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unsupported_media_type(user_client):
    response = user_client.post("/api/v1/organisations/", "hello", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_method_not_allowed(user_client):
    account = AccountFactory()
    client = client_for(member_of(account.organisation))
    assert_error(client.put(f"/api/v1/accounts/{account.pk}/", {}), 405, "method_not_allowed")
    assert_error(
        client.delete(f"/api/v1/organisations/{account.organisation.pk}/"),
        405,
        "method_not_allowed",
    )
    assert_error(user_client.get("/api/v1/auth/register/"), 405, "method_not_allowed")


def test_an_unknown_api_address_is_404_in_the_same_shape():
    assert_error(APIClient().get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error(APIClient().get("/api/v1/organisations/not-a-number/"), 404, "not_found")


def test_pages_outside_the_api_keep_html_errors():
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


def test_an_uncaught_exception_under_the_api_is_500_in_the_same_shape():
    request = RequestFactory().get("/api/v1/accounts/")
    response = api_server_error(request)
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "code": "server_error",
        "detail": "Internal server error.",
        "extra": {},
    }
    assert (
        api_server_error(RequestFactory().get("/")).headers["Content-Type"].startswith("text/html")
    )


@pytest.fixture
def throttle_rates(settings, monkeypatch):
    """Set throttle rates for one test. DRF copies the rates into a class attribute at
    import time, so changing settings alone does not reach the throttles."""

    def set_rates(**rates: str) -> None:
        merged = dict(api_settings.DEFAULT_THROTTLE_RATES) | rates
        settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": merged}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", merged)

    return set_rates


def test_throttled_logins_are_429_with_retry_after(throttle_rates):
    throttle_rates(login="2/minute")
    client = APIClient()
    payload = {"name": "x", "username": "nobody", "password": "wrong"}

    statuses = [client.post("/api/v1/auth/tokens/", payload).status_code for _ in range(3)]

    assert statuses == [400, 400, 429]
    response = client.post("/api/v1/auth/tokens/", payload)
    body = assert_error(response, 429, "throttled")
    # two in this minute's window: the next fits once they weigh 1 in the next window,
    # half a minute into it (registry/api/throttling.py), so 30 to 90 s from now
    assert 30 <= body["extra"]["retry_after_seconds"] <= 90
    assert int(response.headers["Retry-After"]) == body["extra"]["retry_after_seconds"]


def test_throttled_users_are_429_and_nothing_is_written(throttle_rates):
    throttle_rates(user="2/minute")
    user = UserFactory()
    client = client_for(user)
    client.get("/api/v1/me/")
    client.get("/api/v1/me/")
    before = row_counts(Organisation), last_event_id()

    response = client.post("/api/v1/organisations/", REGISTER)

    assert_error(response, 429, "throttled")
    assert (row_counts(Organisation), last_event_id()) == before
    assert client_for(UserFactory()).get("/api/v1/me/").status_code == 200, "per user"


def test_ledger_and_peer_reads_have_their_own_throttle(throttle_rates):
    throttle_rates(ledger="2/minute", anon="1000/minute")
    client = APIClient()
    statuses = [client.get("/api/v1/ledger/entries/?start=0&limit=1").status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert client.get("/api/v1/federation/log/entries/?start=0&limit=1").status_code == 429
    # the anonymous budget is untouched by the ledger reads
    assert client.get("/api/v1/federation/status/").status_code == 200


def test_the_anonymous_throttle_does_not_limit_peers_replicating(throttle_rates):
    throttle_rates(anon="1/minute", ledger="1000/minute")
    client = APIClient()
    for _ in range(3):
        assert client.get("/api/v1/federation/log/entries/?start=0&limit=1").status_code != 429
        assert client.get("/api/v1/ledger/checkpoint").status_code != 429
    client.get("/api/v1/federation/status/")
    assert client.get("/api/v1/federation/status/").status_code == 429


# -- a bad choice lists the valid ones (extra.choices: field path -> valid values) ----------


def test_a_bad_choice_in_a_list_names_the_valid_roles(user_client):
    response = user_client.post("/api/v1/organisations/", REGISTER | {"roles": ["trader", "king"]})
    body = assert_error(response, 400, "invalid")
    assert list(body["extra"]["fields"]) == ["roles"]
    assert body["extra"]["choices"] == {
        "roles.1": [value for value, _label in Organisation.Role.choices]
    }


def test_other_errors_carry_no_choices(user_client):
    body = assert_error(
        user_client.post("/api/v1/organisations/", REGISTER | {"roles": "x"}), 400, "invalid"
    )
    assert "choices" not in body["extra"]


def test_a_bad_account_kind_lists_the_kinds():
    from accounts.models import Account

    organisation = OrganisationFactory()
    client = client_for(member_of(organisation, role=Membership.Role.ADMIN))
    response = client.post(
        "/api/v1/accounts/",
        {"organisation": organisation.pk, "kind": "piggy-bank", "name": "Savings"},
        format="json",
    )
    body = assert_error(response, 400, "invalid")
    assert body["extra"]["choices"] == {"kind": list(Account.Kind.values)}
    assert not Account.objects.filter(name="Savings").exists()


def test_a_bad_retirement_purpose_lists_the_purposes():
    from certificates.models import Retirement
    from tests.web.world import build_web_world

    world = build_web_world()
    bundle = world.bundles[0]
    response = client_for(world.users["buyer"]).post(
        f"/api/v1/bundles/{bundle.pk}/retirements/",
        {
            "consumption_start": "2026-01-01T00:00:00Z",
            "consumption_end": "2026-01-01T01:00:00Z",
            "purpose": "bragging",
        },
        format="json",
    )
    body = assert_error(response, 400, "invalid")
    assert body["extra"]["choices"] == {"purpose": list(Retirement.Purpose.values)}
    assert Retirement.objects.count() == 1  # the world's own, nothing new


def _device_body(world, **changes):
    organisation = world.producer_account.organisation_id
    return {
        "organisation": organisation,
        "name": "New roof",
        "grid_area": world.device.grid_area_id,
        "technology_code": "T010101",
        "energy_source_code": "F01040100",
        "capacity_w": 10_000,
        "commissioning_date": "2024-01-01",
        "latitude": "52.5",
        "longitude": "13.4",
        "owners": [
            {"organisation": organisation, "account": world.producer_account.pk, "share": "1"}
        ],
    } | changes


def test_a_bad_device_choice_lists_the_valid_values():
    from assets.models import Device
    from tests.web.world import build_web_world

    world = build_web_world()
    before = Device.objects.count()
    response = client_for(world.users["producer"]).post(
        "/api/v1/devices/", _device_body(world, support="bribes", interval_minutes=5), format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert body["extra"]["choices"] == {
        "support": list(Device.Support.values),
        "interval_minutes": list(Device.Interval.values),
    }
    assert Device.objects.count() == before


def test_an_energy_source_eecs_forbids_lists_the_sources_valid_for_the_technology():
    # given: a PV plant (T010101) declared as burning wind (F01050100)
    from assets import codes
    from assets.models import Device
    from tests.web.world import build_web_world

    world = build_web_world()
    before = Device.objects.count()
    # when
    response = client_for(world.users["producer"]).post(
        "/api/v1/devices/", _device_body(world, energy_source_code="F01050100"), format="json"
    )
    # then: the sources EECS allows for photovoltaics, and nothing written; each code is on
    # its list, only the two together are refused (device_inconsistent, not invalid)
    body = assert_error(response, 400, "device_inconsistent")
    sources = body["extra"]["choices"]["energy_source_code"]
    assert "F01040100" in sources
    assert all(codes.combination_allowed("T010101", source) for source in sources)
    assert "F01050100" not in sources
    assert Device.objects.count() == before


def test_an_unknown_technology_lists_every_eecs_technology():
    from assets import codes
    from tests.web.world import build_web_world

    world = build_web_world()
    response = client_for(world.users["producer"]).post(
        "/api/v1/devices/", _device_body(world, technology_code="T999999"), format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert body["extra"]["choices"]["technology_code"] == sorted(codes.technologies())


def test_choices_are_found_in_nested_lists_of_objects():
    # given: a serializer with a list of nested objects, one with a bad choice
    from rest_framework import serializers

    from registry.api.serializers import InputSerializer

    class LegInputSerializer(InputSerializer):
        side = serializers.ChoiceField(choices=["buy", "sell"])

    class LegsInputSerializer(InputSerializer):
        legs = LegInputSerializer(many=True)

    data = LegsInputSerializer(data={"legs": [{"side": "buy"}, {"side": "hold"}]})
    # when / then
    with pytest.raises(serializers.ValidationError) as raised:
        data.is_valid(raise_exception=True)
    assert raised.value.choices == {"legs.1.side": ["buy", "sell"]}
