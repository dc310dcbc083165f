"""API tokens that end: an optional expiry (default by setting) and a cheap last-used time."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiToken
from tests.factories import UserFactory
from tests.registry.matrix import PASSWORD

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_token_created_with_an_expiry_stops_working_after_it():
    # given
    user = UserFactory()
    created = APIClient().post(
        "/api/v1/auth/tokens/",
        {"name": "ci", "username": user.username, "password": PASSWORD, "expires_in_days": 2},
    )
    assert created.status_code == 201, created.content
    token = created.json()["token"]
    expires_at = dt.datetime.fromisoformat(created.json()["expires_at"])
    assert dt.timedelta(days=2) - (expires_at - timezone.now()) < dt.timedelta(minutes=1)
    assert bearer(token).get("/api/v1/me/").status_code == 200
    # when: the expiry passes
    ApiToken.objects.filter(prefix=token.split("_")[1]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = bearer(token).get("/api/v1/me/")
    # then
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_the_default_expiry_comes_from_the_setting(settings):
    # given
    settings.API_TOKEN_DEFAULT_TTL_DAYS = 30
    # when
    token, _ = services.api_token_create(user=UserFactory(), name="laptop")
    never, _ = services.api_token_create(user=UserFactory(), name="robot", expires_in_days=0)
    # then
    assert dt.timedelta(days=29) < token.expires_at - timezone.now() <= dt.timedelta(days=30)
    assert never.expires_at is None


def test_last_used_is_written_at_most_once_a_minute():
    # given
    token, plaintext = services.api_token_create(user=UserFactory(), name="laptop")
    client = bearer(plaintext)
    # when
    client.get("/api/v1/me/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    client.get("/api/v1/me/")
    second = ApiToken.objects.get(pk=token.pk).last_used_at
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    client.get("/api/v1/me/")
    third = ApiToken.objects.get(pk=token.pk).last_used_at
    # then
    assert first is not None
    assert second == first
    assert third > first


def test_the_command_prints_a_working_token(capsys):
    # given
    user = UserFactory()
    # when
    call_command("api_token_create", user.username, "--expires-in-days", "1")
    plaintext = capsys.readouterr().out.strip()
    # then
    assert bearer(plaintext).get("/api/v1/me/").status_code == 200
    assert ApiToken.objects.get(user=user).expires_at is not None


@pytest.mark.parametrize(
    "token",
    ["gp_ab\x00c_xyz", "gp_" + "a" * 5000 + "_xyz", "gp_ABCDEF012345_x", "gp__x", "gp_é_x"],
)
def test_a_token_no_registry_issues_is_refused_without_a_query(token, django_assert_num_queries):
    # given a bearer token whose public prefix no token has: a NUL (which the database
    # driver refuses outright, a 500 before), too long, upper case, empty, not ASCII
    user = UserFactory()
    real, _ = services.api_token_create(user=user, name="real")
    # when it is sent, then it is refused like a wrong token, before any query
    with django_assert_num_queries(0):
        assert services.api_token_authenticate(token) is None
    response = bearer(token).get("/api/v1/me/")
    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")
    assert len(real.prefix) == 12 and services._TOKEN_ID.fullmatch(real.prefix)
