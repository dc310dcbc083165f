"""The accounts API end to end: the README's getting-started story, visibility, suspension."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Account, Membership, Organisation
from tests.conftest import client_for
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user, member_of
from tests.registry.support import events_since, last_event_id, row_counts

pytestmark = pytest.mark.django_db


def test_a_new_participant_gets_started():
    # given: the issuing body exists (make run's demo data has one)
    officer = client_for(issuing_body_user())
    anonymous = APIClient()

    # when: register a user, get a token, register an organisation
    assert (
        anonymous.post(
            "/api/v1/auth/register/",
            {"username": "ada", "password": "a long enough passphrase", "email": "a@x.org"},
        ).status_code
        == 201
    )
    token = anonymous.post(
        "/api/v1/auth/tokens/",
        {"name": "laptop", "username": "ada", "password": "a long enough passphrase"},
    ).json()["token"]
    ada = APIClient()
    ada.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = ada.post(
        "/api/v1/organisations/",
        {
            "legal_name": "Ada Solar",
            "country": "DE",
            "registration_id": "HRB-42",
            "roles": ["producer"],
        },
    )
    assert response.status_code == 201, response.content
    organisation = response.json()
    assert organisation["status"] == "pending"

    # then: no accounts until the issuing body approves
    early = ada.post(
        "/api/v1/accounts/",
        {"organisation": organisation["id"], "kind": "trading", "name": "Trading"},
    )
    assert early.status_code == 403
    assert early.json()["code"] == "organisation_not_approved"
    assert Account.objects.count() == 0

    approved = officer.post(f"/api/v1/organisations/{organisation['id']}/approve/", {})
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"

    opened = ada.post(
        "/api/v1/accounts/",
        {"organisation": organisation["id"], "kind": "trading", "name": "Trading"},
    )
    assert opened.status_code == 201
    assert opened.json()["number"] == f"GP-{organisation['id']:05d}-T001"
    me = ada.get("/api/v1/me/").json()
    assert [(m["organisation"], m["role"]) for m in me["memberships"]] == [
        (organisation["id"], "admin")
    ]
    listed = ada.get("/api/v1/accounts/").json()
    assert [a["number"] for a in listed["results"]] == [opened.json()["number"]]


def test_someone_elses_account_is_not_visible():
    # given
    account = AccountFactory()
    stranger = client_for(member_of(OrganisationFactory()))
    before = row_counts(Account), last_event_id()

    # when
    shown = stranger.get(f"/api/v1/accounts/{account.pk}/")
    closed = stranger.post(f"/api/v1/accounts/{account.pk}/close/")
    listed = stranger.get("/api/v1/accounts/")

    # then
    assert (shown.status_code, shown.json()["code"]) == (404, "not_found")
    assert (closed.status_code, closed.json()["code"]) == (404, "not_found")
    assert listed.json()["count"] == 0
    assert (row_counts(Account), last_event_id()) == before
    account.refresh_from_db()
    assert account.is_open


@pytest.mark.parametrize("status", [Organisation.Status.SUSPENDED, Organisation.Status.PENDING])
def test_members_of_an_unapproved_organisation_cannot_act(status):
    # given
    organisation = OrganisationFactory(status=status)
    account = AccountFactory(organisation=organisation)
    admin = member_of(organisation)
    newcomer = member_of(OrganisationFactory())
    client = client_for(admin)
    before = row_counts(Account, Membership), last_event_id()

    # when
    responses = [
        client.post(
            "/api/v1/accounts/", {"organisation": organisation.pk, "kind": "trading", "name": "T"}
        ),
        client.post(f"/api/v1/accounts/{account.pk}/close/"),
        client.post(f"/api/v1/organisations/{organisation.pk}/members/", {"user": newcomer.pk}),
    ]

    # then
    for response in responses:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "organisation_not_approved"
        assert response.json()["extra"] == {"organisation_id": organisation.pk, "status": status}
    assert (row_counts(Account, Membership), last_event_id()) == before
    account.refresh_from_db()
    assert account.is_open


def test_suspending_an_organisation_stops_its_members():
    # given
    organisation = OrganisationFactory()
    admin = client_for(member_of(organisation))
    officer = client_for(issuing_body_user())

    # when
    suspended = officer.post(
        f"/api/v1/organisations/{organisation.pk}/suspend/", {"reason": "unpaid fees"}
    )
    refused = admin.post(
        "/api/v1/accounts/", {"organisation": organisation.pk, "kind": "trading", "name": "T"}
    )

    # then
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["status_reason"] == "unpaid fees"
    assert refused.status_code == 403
    assert APIClient().get(f"/api/v1/organisations/{organisation.pk}/").status_code == 404


def test_a_suspended_organisation_cannot_be_suspended_again():
    organisation = OrganisationFactory(status=Organisation.Status.SUSPENDED)
    officer = client_for(issuing_body_user())
    before = last_event_id()

    response = officer.post(f"/api/v1/organisations/{organisation.pk}/suspend/", {"reason": "x"})

    assert response.status_code == 409
    assert response.json() == {
        "code": "organisation_status_conflict",
        "detail": "The organisation is suspended; it cannot become suspended.",
        "extra": {"status": "suspended"},
    }
    assert events_since(before) == []


def test_organisations_filter_order_and_paginate():
    for n in range(3):
        OrganisationFactory(legal_name=f"DE {n}", country="DE")
    OrganisationFactory(legal_name="FR 0", country="FR")
    OrganisationFactory(legal_name="Pending DE", country="DE", status="pending")
    client = APIClient()

    page = client.get("/api/v1/organisations/?country=DE&ordering=-legal_name&page_size=2").json()

    assert page["count"] == 3  # the pending one is not public
    assert [o["legal_name"] for o in page["results"]] == ["DE 2", "DE 1"]
    assert "page=2" in page["next"]
    second = client.get(page["next"]).json()
    assert [o["legal_name"] for o in second["results"]] == ["DE 0"]
    assert client.get("/api/v1/organisations/?status=pending").json()["count"] == 0
