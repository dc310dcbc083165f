"""Organisation and membership services: one event on success, nothing at all on failure."""

import pytest

from accounts import services
from accounts.models import Account, Membership, Organisation
from registry.errors import DomainError
from tests.factories import (
    OrganisationFactory,
    UserFactory,
    auditor_user,
    issuing_body_user,
    member_of,
)
from tests.registry.support import events_since, last_event_id, row_counts

pytestmark = pytest.mark.django_db

MODELS = (Organisation, Membership, Account)


def refused(call, code: str, status: int) -> DomainError:
    """Run `call`, expect the domain error `code`, and check that nothing was written."""
    before_rows, before_event = row_counts(*MODELS), last_event_id()
    with pytest.raises(DomainError) as info:
        call()
    assert (info.value.code, info.value.status) == (code, status), info.value.detail
    assert row_counts(*MODELS) == before_rows
    assert events_since(before_event) == []
    return info.value


def register_kwargs(**overrides):
    return {
        "legal_name": "Sunny Rooftops eG",
        "country": "DE",
        "registration_id": "HRB-1",
        "roles": ["trader", "producer"],
    } | overrides


# organisation_register


def test_organisation_register_creates_a_pending_organisation_with_its_admin():
    # given
    user = UserFactory()
    before = last_event_id()

    # when
    organisation = services.organisation_register(actor=user, **register_kwargs())

    # then
    assert organisation.status == Organisation.Status.PENDING
    assert organisation.roles == ["producer", "trader"]
    assert Membership.objects.get(organisation=organisation).user == user
    assert Membership.objects.get(organisation=organisation).role == Membership.Role.ADMIN
    [event] = events_since(before)
    assert event["type"] == "organisation.registered"
    assert event["actor"] == f"user:{user.pk}"
    assert event["subject"] == [f"organisation:{organisation.pk}", f"user:{user.pk}"]
    assert event["data"] == {
        "organisation_id": organisation.pk,
        "legal_name": "Sunny Rooftops eG",
        "country": "DE",
        "registration_id": "HRB-1",
        "roles": ["producer", "trader"],
    }


@pytest.mark.parametrize(
    "overrides",
    [{"roles": []}, {"roles": ["king"]}, {"country": "Germany"}, {"country": "de"}],
    ids=["no roles", "unknown role", "long country", "lower-case country"],
)
def test_organisation_register_refuses_bad_input(overrides):
    user = UserFactory()
    refused(
        lambda: services.organisation_register(actor=user, **register_kwargs(**overrides)),
        "invalid",
        400,
    )


def test_organisation_register_refuses_a_registration_id_taken_in_that_country():
    OrganisationFactory(country="DE", registration_id="HRB-1")
    user = UserFactory()
    error = refused(
        lambda: services.organisation_register(actor=user, **register_kwargs()),
        "organisation_already_registered",
        409,
    )
    assert error.extra == {"country": "DE", "registration_id": "HRB-1"}


def test_organisation_register_allows_the_same_registration_id_in_another_country():
    OrganisationFactory(country="FR", registration_id="HRB-1")
    organisation = services.organisation_register(actor=UserFactory(), **register_kwargs())
    assert organisation.country == "DE"


def test_organisation_register_refuses_auditors():
    auditor = auditor_user()
    refused(
        lambda: services.organisation_register(actor=auditor, **register_kwargs()),
        "auditor_read_only",
        403,
    )


# organisation_approve / suspend / reinstate


def test_organisation_approve_by_the_issuing_body():
    # given
    organisation = OrganisationFactory(status=Organisation.Status.PENDING)
    officer = issuing_body_user()
    before = last_event_id()

    # when
    services.organisation_approve(actor=officer, organisation_id=organisation.pk, reason="checked")

    # then
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.APPROVED
    assert organisation.approved_at is not None
    [event] = events_since(before)
    assert event["type"] == "organisation.approved"
    assert event["actor"] == f"user:{officer.pk}"
    assert event["subject"] == [f"organisation:{organisation.pk}"]
    assert event["data"] == {"organisation_id": organisation.pk, "reason": "checked"}


@pytest.mark.parametrize(
    "make_actor",
    [
        lambda org: member_of(org),
        lambda org: auditor_user(),
        lambda org: issuing_body_user(role=Membership.Role.VIEWER),
        lambda org: UserFactory(),
    ],
    ids=["its own admin", "auditor", "issuing body viewer", "nobody"],
)
def test_organisation_approve_needs_an_issuing_body_operator(make_actor):
    organisation = OrganisationFactory(status=Organisation.Status.PENDING)
    actor = make_actor(organisation)
    refused(
        lambda: services.organisation_approve(actor=actor, organisation_id=organisation.pk),
        "not_issuing_body",
        403,
    )
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.PENDING


def test_organisation_approve_of_an_approved_organisation_conflicts():
    organisation = OrganisationFactory()
    officer = issuing_body_user()
    error = refused(
        lambda: services.organisation_approve(actor=officer, organisation_id=organisation.pk),
        "organisation_status_conflict",
        409,
    )
    assert error.extra == {"status": "approved"}


def test_organisation_approve_of_a_missing_organisation():
    officer = issuing_body_user()
    refused(
        lambda: services.organisation_approve(actor=officer, organisation_id=999_999),
        "organisation_not_found",
        404,
    )


def test_organisation_suspend_then_reinstate():
    # given
    organisation = OrganisationFactory()
    officer = issuing_body_user()
    before = last_event_id()

    # when
    services.organisation_suspend(
        actor=officer, organisation_id=organisation.pk, reason="unpaid fees"
    )
    organisation.refresh_from_db()
    suspended = (organisation.status, organisation.status_reason)
    services.organisation_reinstate(actor=officer, organisation_id=organisation.pk, reason="paid")

    # then
    assert suspended == (Organisation.Status.SUSPENDED, "unpaid fees")
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.APPROVED
    events = events_since(before)
    assert [e["type"] for e in events] == ["organisation.suspended", "organisation.reinstated"]
    assert events[0]["data"] == {"organisation_id": organisation.pk, "reason": "unpaid fees"}
    assert events[1]["subject"] == [f"organisation:{organisation.pk}"]


def test_organisation_suspend_needs_a_reason():
    organisation = OrganisationFactory()
    officer = issuing_body_user()
    error = refused(
        lambda: services.organisation_suspend(
            actor=officer, organisation_id=organisation.pk, reason="  "
        ),
        "invalid",
        400,
    )
    assert error.extra == {"fields": {"reason": ["required"]}}


def test_organisation_suspend_twice_conflicts():
    organisation = OrganisationFactory(status=Organisation.Status.SUSPENDED)
    officer = issuing_body_user()
    refused(
        lambda: services.organisation_suspend(
            actor=officer, organisation_id=organisation.pk, reason="again"
        ),
        "organisation_status_conflict",
        409,
    )


def test_organisation_suspend_needs_the_issuing_body():
    organisation = OrganisationFactory()
    admin = member_of(organisation)
    refused(
        lambda: services.organisation_suspend(
            actor=admin, organisation_id=organisation.pk, reason="self"
        ),
        "not_issuing_body",
        403,
    )


def test_organisation_reinstate_of_an_approved_organisation_conflicts():
    organisation = OrganisationFactory()
    officer = issuing_body_user()
    refused(
        lambda: services.organisation_reinstate(
            actor=officer, organisation_id=organisation.pk, reason="?"
        ),
        "organisation_status_conflict",
        409,
    )


def test_organisation_reinstate_needs_the_issuing_body():
    organisation = OrganisationFactory(status=Organisation.Status.SUSPENDED)
    admin = member_of(organisation)
    refused(
        lambda: services.organisation_reinstate(
            actor=admin, organisation_id=organisation.pk, reason="please"
        ),
        "not_issuing_body",
        403,
    )


# issuing_body_bootstrap


def test_issuing_body_bootstrap_creates_an_approved_issuing_body():
    # given
    admin = UserFactory()
    before = last_event_id()

    # when
    organisation = services.issuing_body_bootstrap(
        legal_name="Registry Operator", country="DE", registration_id="IB-1", admin=admin
    )

    # then
    assert organisation.status == Organisation.Status.APPROVED
    assert organisation.roles == ["issuing_body"]
    assert Membership.objects.get(organisation=organisation, user=admin).role == "admin"
    [event] = events_since(before)
    assert event["type"] == "organisation.bootstrapped"
    assert event["actor"] == "system:bootstrap"
    assert event["subject"] == [f"organisation:{organisation.pk}", f"user:{admin.pk}"]
    assert event["data"] == {
        "organisation_id": organisation.pk,
        "legal_name": "Registry Operator",
        "country": "DE",
        "registration_id": "IB-1",
        "roles": ["issuing_body"],
        "admin_user_id": admin.pk,
    }


def test_issuing_body_bootstrap_refuses_a_taken_registration_id():
    OrganisationFactory(country="DE", registration_id="IB-1")
    admin = UserFactory()
    refused(
        lambda: services.issuing_body_bootstrap(
            legal_name="Again", country="DE", registration_id="IB-1", admin=admin
        ),
        "organisation_already_registered",
        409,
    )


# membership_add


@pytest.mark.parametrize("by", ["admin", "issuing body"])
def test_membership_add(by):
    # given
    organisation = OrganisationFactory()
    actor = member_of(organisation) if by == "admin" else issuing_body_user()
    newcomer = UserFactory()
    before = last_event_id()

    # when
    membership = services.membership_add(
        actor=actor, organisation_id=organisation.pk, user_id=newcomer.pk, role="viewer"
    )

    # then
    assert (membership.user, membership.organisation, membership.role) == (
        newcomer,
        organisation,
        "viewer",
    )
    [event] = events_since(before)
    assert event["type"] == "membership.added"
    assert event["actor"] == f"user:{actor.pk}"
    assert event["subject"] == [f"organisation:{organisation.pk}", f"user:{newcomer.pk}"]
    assert event["data"] == {
        "organisation_id": organisation.pk,
        "user_id": newcomer.pk,
        "role": "viewer",
    }


def test_membership_add_needs_the_admin_role():
    organisation = OrganisationFactory()
    operator = member_of(organisation, role=Membership.Role.OPERATOR)
    newcomer = UserFactory()
    refused(
        lambda: services.membership_add(
            actor=operator, organisation_id=organisation.pk, user_id=newcomer.pk
        ),
        "not_organisation_member",
        403,
    )


def test_membership_add_in_a_suspended_organisation_is_refused():
    organisation = OrganisationFactory(status=Organisation.Status.SUSPENDED)
    admin = member_of(organisation)
    newcomer = UserFactory()
    error = refused(
        lambda: services.membership_add(
            actor=admin, organisation_id=organisation.pk, user_id=newcomer.pk
        ),
        "organisation_not_approved",
        403,
    )
    assert error.extra == {"organisation_id": organisation.pk, "status": "suspended"}


@pytest.mark.parametrize(
    ("user_id", "role", "code", "status"),
    [
        (None, "owner", "invalid", 400),
        (999_999, "viewer", "user_unknown", 400),
        ("existing", "viewer", "membership_exists", 409),
    ],
    ids=["unknown role", "unknown user", "already a member"],
)
def test_membership_add_refuses(user_id, role, code, status):
    organisation = OrganisationFactory()
    admin = member_of(organisation)
    if user_id is None:
        user_id = UserFactory().pk
    elif user_id == "existing":
        user_id = member_of(organisation, role=Membership.Role.VIEWER).pk
    refused(
        lambda: services.membership_add(
            actor=admin, organisation_id=organisation.pk, user_id=user_id, role=role
        ),
        code,
        status,
    )
