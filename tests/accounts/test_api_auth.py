"""Logging in: API tokens (Bearer) for programs, sessions for the browsable API and admin."""

import hashlib

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from tests.factories import UserFactory
from tests.registry.matrix import PASSWORD
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def create_token(username: str, password: str = PASSWORD, name: str = "cli") -> dict:
    response = APIClient().post(
        "/api/v1/auth/tokens/", {"name": name, "username": username, "password": password}
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_api_token_lifecycle():
    # given: a user registered through the API
    response = APIClient().post(
        "/api/v1/auth/register/", {"username": "ada", "password": "a long enough passphrase"}
    )
    assert response.status_code == 201
    assert "password" not in response.json()

    # when: they create a token with their password
    created = create_token("ada", "a long enough passphrase")

    # then: the token is shown once and only its SHA-256 is stored
    token = created["token"]
    assert token.startswith(f"gp_{created['prefix']}_")
    row = ApiToken.objects.get(pk=created["id"])
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(value) for value in ApiToken.objects.values().get(pk=row.pk).values()}
    listed = bearer(token).get("/api/v1/auth/tokens/").json()["results"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]

    # and it authenticates as the user, with either scheme name
    assert bearer(token).get("/api/v1/me/").json()["user"]["username"] == "ada"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 200

    # when: the owner revokes it
    response = bearer(token).delete(f"/api/v1/auth/tokens/{created['id']}/")

    # then: it stops working
    assert response.status_code == 204
    response = bearer(token).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_someone_else_cannot_revoke_a_token():
    # given
    owner_token = create_token(UserFactory(username="owner").username)
    intruder_token = create_token(UserFactory(username="intruder").username)["token"]
    before = last_event_id()

    # when
    response = bearer(intruder_token).delete(f"/api/v1/auth/tokens/{owner_token['id']}/")

    # then: not visible to them, and nothing changed
    assert response.status_code == 404
    assert response.json()["code"] == "token_not_found"
    assert ApiToken.objects.get(pk=owner_token["id"]).revoked_at is None
    assert events_since(before) == []
    assert bearer(owner_token["token"]).get("/api/v1/me/").status_code == 200


def test_revoking_a_token_id_that_is_not_a_number_is_not_found():
    token = create_token(UserFactory().username)["token"]
    response = bearer(token).delete("/api/v1/auth/tokens/abc/")
    assert response.status_code == 404
    assert response.json()["code"] == "token_not_found"


def test_a_logged_in_user_creates_a_token_for_themselves():
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)

    response = client.post("/api/v1/auth/tokens/", {"name": "ci"})

    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).user == user


def test_token_create_with_a_wrong_password_creates_nothing():
    UserFactory(username="ada")
    response = APIClient().post(
        "/api/v1/auth/tokens/", {"name": "cli", "username": "ada", "password": "wrong"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize(
    "header",
    ["Bearer gp_0123456789ab_forged", "Bearer not-a-token", "Bearer gp_"],
)
def test_a_forged_token_is_refused(header):
    create_token(UserFactory().username)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_token_of_a_deactivated_user_is_refused():
    user = UserFactory()
    token = create_token(user.username)["token"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert bearer(token).get("/api/v1/me/").status_code == 401


def test_session_login_works_for_the_admin_and_the_browsable_api():
    # given
    UserFactory(username="officer", is_staff=True, is_superuser=True)
    client = Client()

    # when: logging in through the admin login form
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "officer", "password": PASSWORD}
    )

    # then
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/registry/idempotencyrecord/").status_code == 200
    assert client.get("/api/v1/me/").json()["user"]["username"] == "officer"
    page = client.get("/api/v1/me/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")


def test_the_admin_refuses_non_staff_users():
    UserFactory(username="producer")
    client = Client()
    client.login(username="producer", password=PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login/")


def test_session_writes_need_the_csrf_token_and_bearer_writes_do_not():
    # given
    UserFactory(username="ada")
    session = Client(enforce_csrf_checks=True)
    session.login(username="ada", password=PASSWORD)

    # when / then: a session write without the CSRF token is refused
    response = session.post("/api/v1/auth/tokens/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "CSRF" in response.json()["detail"]

    # with the token from the cookie it goes through
    session.get("/admin/login/")  # sets the csrftoken cookie
    response = session.post(
        "/api/v1/auth/tokens/",
        {"name": "x"},
        content_type="application/json",
        headers={"X-CSRFToken": session.cookies["csrftoken"].value},
    )
    assert response.status_code == 201

    # and a Bearer token needs no CSRF token at all
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert client.post("/api/v1/auth/tokens/", {"name": "y"}).status_code == 201


def test_a_password_is_taken_as_typed_spaces_included():
    """The schema allows a password of 8 characters padded with spaces; DRF used to trim it
    to fewer and refuse it (the fuzzer's seed 11, ST202), or to store it without the spaces
    that the browser login (Django's form keeps them) would then send."""
    # when
    response = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "grace", "password": "  in the  middle  "},
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    user = User.objects.get(username="grace")
    assert user.check_password("  in the  middle  ")
    assert not user.check_password("in the  middle")
    assert Client().login(username="grace", password="  in the  middle  ")
    create_token("grace", "  in the  middle  ")  # the API's login, as typed too
    wrong = APIClient().post(
        "/api/v1/auth/tokens/",
        {"name": "cli", "username": "grace", "password": "in the  middle"},
        format="json",
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_credentials"


def test_a_weak_password_is_refused_with_its_own_code():
    # when: schema-valid (8 characters or more) but one of the common passwords
    response = APIClient().post(
        "/api/v1/auth/register/", {"username": "grace", "password": "password123"}, format="json"
    )
    # then
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "password_too_weak"
    assert body["extra"]["fields"]["password"]
    assert not User.objects.filter(username="grace").exists()
