"""Account services: open and close, with their ledger events."""

import pytest

from accounts import errors, services
from accounts.models import Account, Membership, Organisation
from tests.accounts.test_services_organisations import refused
from tests.factories import AccountFactory, OrganisationFactory, UserFactory, member_of
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db


def test_account_open_numbers_accounts_per_organisation():
    # given
    organisation = OrganisationFactory()
    admin = member_of(organisation)
    before = last_event_id()

    # when
    trading = services.account_open(
        actor=admin, organisation_id=organisation.pk, kind="trading", name="Trading"
    )
    retirement = services.account_open(
        actor=admin, organisation_id=organisation.pk, kind="retirement", name="Retirement"
    )

    # then
    assert trading.number == f"GP-{organisation.pk:05d}-T001"
    assert retirement.number == f"GP-{organisation.pk:05d}-R002"
    assert (trading.status, trading.organisation) == (Account.Status.OPEN, organisation)
    first, second = events_since(before)
    assert first["type"] == second["type"] == "account.opened"
    assert first["actor"] == f"user:{admin.pk}"
    assert first["subject"] == [f"account:{trading.pk}", f"organisation:{organisation.pk}"]
    assert first["data"] == {
        "account_id": trading.pk,
        "number": trading.number,
        "organisation_id": organisation.pk,
        "kind": "trading",
    }


@pytest.mark.parametrize(
    ("status", "role", "code", "http"),
    [
        (Organisation.Status.APPROVED, Membership.Role.OPERATOR, "not_organisation_member", 403),
        (Organisation.Status.APPROVED, Membership.Role.VIEWER, "not_organisation_member", 403),
        (Organisation.Status.PENDING, Membership.Role.ADMIN, "organisation_not_approved", 403),
        (Organisation.Status.SUSPENDED, Membership.Role.ADMIN, "organisation_not_approved", 403),
        (Organisation.Status.SUSPENDED, Membership.Role.VIEWER, "organisation_not_approved", 403),
    ],
)
def test_account_open_needs_an_admin_of_an_approved_organisation(status, role, code, http):
    organisation = OrganisationFactory(status=status)
    actor = member_of(organisation, role=role)
    refused(
        lambda: services.account_open(
            actor=actor, organisation_id=organisation.pk, kind="trading", name="T"
        ),
        code,
        http,
    )


def test_account_open_for_someone_elses_organisation():
    organisation = OrganisationFactory()
    stranger = member_of(OrganisationFactory())
    refused(
        lambda: services.account_open(
            actor=stranger, organisation_id=organisation.pk, kind="trading", name="T"
        ),
        "not_organisation_member",
        403,
    )


def test_an_auditor_organisation_opens_no_accounts():
    auditor = OrganisationFactory(is_auditor=True, is_producer=False, is_trader=False)
    admin = member_of(auditor)
    refused(
        lambda: services.account_open(
            actor=admin, organisation_id=auditor.pk, kind="trading", name="T"
        ),
        "auditor_read_only",
        403,
    )
    assert not Account.objects.filter(organisation=auditor).exists()


def test_account_open_refuses_an_unknown_kind_and_a_missing_organisation():
    organisation = OrganisationFactory()
    admin = member_of(organisation)
    refused(
        lambda: services.account_open(
            actor=admin, organisation_id=organisation.pk, kind="savings", name="S"
        ),
        "invalid",
        400,
    )
    refused(
        lambda: services.account_open(
            actor=admin, organisation_id=999_999, kind="trading", name="T"
        ),
        "organisation_not_found",
        404,
    )


def test_account_close():
    # given
    account = AccountFactory()
    admin = member_of(account.organisation)
    before = last_event_id()

    # when
    services.account_close(actor=admin, account_id=account.pk)

    # then
    account.refresh_from_db()
    assert account.status == Account.Status.CLOSED
    assert account.closed_at is not None
    [event] = events_since(before)
    assert event["type"] == "account.closed"
    assert event["actor"] == f"user:{admin.pk}"
    assert event["subject"] == [f"account:{account.pk}"]
    assert event["data"] == {"account_id": account.pk}


def test_account_close_twice_conflicts():
    account = AccountFactory(status=Account.Status.CLOSED)
    admin = member_of(account.organisation)
    refused(
        lambda: services.account_close(actor=admin, account_id=account.pk),
        "account_closed",
        409,
    )


def test_account_close_runs_the_guards(monkeypatch):
    # given: another app's guard says the account still holds certificates
    account = AccountFactory()
    admin = member_of(account.organisation)

    def holds_certificates(checked: Account) -> None:
        raise errors.AccountNotEmpty(account_id=checked.pk)

    monkeypatch.setattr(services, "ACCOUNT_CLOSE_GUARDS", [holds_certificates])

    # when / then
    refused(
        lambda: services.account_close(actor=admin, account_id=account.pk),
        "account_not_empty",
        409,
    )
    account.refresh_from_db()
    assert account.status == Account.Status.OPEN


@pytest.mark.parametrize(
    ("make_actor", "code"),
    [
        (lambda acc: member_of(acc.organisation, role="operator"), "not_organisation_member"),
        (lambda acc: UserFactory(), "not_organisation_member"),
    ],
    ids=["operator", "stranger"],
)
def test_account_close_needs_an_admin(make_actor, code):
    account = AccountFactory()
    actor = make_actor(account)
    refused(lambda: services.account_close(actor=actor, account_id=account.pk), code, 403)


def test_account_close_in_a_suspended_organisation_is_refused():
    account = AccountFactory(organisation=OrganisationFactory(status="suspended"))
    admin = member_of(account.organisation)
    refused(
        lambda: services.account_close(actor=admin, account_id=account.pk),
        "organisation_not_approved",
        403,
    )


def test_account_close_of_a_missing_account():
    refused(
        lambda: services.account_close(actor=UserFactory(), account_id=999_999),
        "account_not_found",
        404,
    )
