"""User and API token services."""

import hashlib

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken, User
from tests.accounts.test_services_organisations import refused
from tests.factories import UserFactory
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def test_user_register():
    # given
    before = last_event_id()

    # when
    user = services.user_register(
        username="ada", password="a long enough passphrase", email="ada@example.org"
    )

    # then
    assert user.check_password("a long enough passphrase")
    assert user.memberships.count() == 0
    [event] = events_since(before)
    assert event["type"] == "user.registered"
    assert event["actor"] == event["subject"][0] == f"user:{user.pk}"
    assert event["data"] == {"user_id": user.pk}
    assert "ada" not in str(event), "no personal data in ledger events"


def test_user_register_refuses_a_taken_username_whatever_its_case():
    UserFactory(username="ada")
    error = refused(
        lambda: services.user_register(username="ADA", password="a long enough passphrase"),
        "username_taken",
        409,
    )
    assert error.extra == {"fields": {"username": ["taken"]}}
    assert User.objects.filter(username__iexact="ada").count() == 1


def test_the_database_refuses_a_second_login_differing_only_by_case():
    # what two racing registrations would do after both passed the service's check
    UserFactory(username="ada")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="Ada")


@pytest.mark.parametrize("password", ["short", "password123", "12345678901", "ada-the-user"])
def test_user_register_refuses_a_weak_password(password):
    error = refused(
        lambda: services.user_register(username="ada-the-user", password=password),
        "password_too_weak",
        400,
    )
    assert "password" in error.extra["fields"]


def test_api_token_create_stores_only_the_hash():
    # given
    user = UserFactory()
    before = last_event_id()

    # when
    token, plaintext = services.api_token_create(user=user, name="laptop")

    # then
    assert plaintext.startswith(f"gp_{token.prefix}_")
    assert token.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert plaintext not in {str(value) for value in stored.values()}
    [event] = events_since(before)
    assert event["type"] == "api_token.created"
    assert event["actor"] == f"user:{user.pk}"
    assert event["subject"] == [f"user:{user.pk}"]
    assert event["data"] == {"token_id": token.pk, "prefix": token.prefix, "expires_at": None}
    assert plaintext not in str(event)


def test_api_token_revoke_once():
    # given
    user = UserFactory()
    token, _ = services.api_token_create(user=user, name="laptop")
    before = last_event_id()

    # when
    services.api_token_revoke(user=user, token_id=token.pk)
    services.api_token_revoke(user=user, token_id=token.pk)

    # then: revoking twice is a no-op, so one event
    token.refresh_from_db()
    assert token.revoked_at is not None
    [event] = events_since(before)
    assert event["type"] == "api_token.revoked"
    assert event["subject"] == [f"user:{user.pk}"]
    assert event["data"] == {"token_id": token.pk, "prefix": token.prefix}


def test_api_token_revoke_of_someone_elses_token():
    token, _ = services.api_token_create(user=UserFactory(), name="theirs")
    intruder = UserFactory()
    refused(
        lambda: services.api_token_revoke(user=intruder, token_id=token.pk),
        "token_not_found",
        404,
    )
    token.refresh_from_db()
    assert token.revoked_at is None


def test_api_token_authenticate():
    user = UserFactory()
    token, plaintext = services.api_token_create(user=user, name="laptop")

    assert services.api_token_authenticate(plaintext) == user
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert services.api_token_authenticate(plaintext[:-2] + "xx") is None
    assert services.api_token_authenticate("not-a-token") is None


def test_api_token_authenticate_refuses_revoked_tokens_and_inactive_users():
    user = UserFactory()
    token, plaintext = services.api_token_create(user=user, name="laptop")
    _, other_plaintext = services.api_token_create(user=user, name="phone")

    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert services.api_token_authenticate(plaintext) is None

    User.objects.filter(pk=user.pk).update(is_active=False)
    assert services.api_token_authenticate(other_plaintext) is None
