"""`manage.py bootstrap_issuing_body`: the first organisation of a fresh installation."""

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Membership, Organisation
from tests.factories import OrganisationFactory, UserFactory
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db

ARGS = ["--legal-name", "Registry Operator", "--country", "DE", "--registration-id", "IB-1"]


def test_bootstrap_issuing_body():
    # given
    UserFactory(username="officer", is_staff=True)
    before = last_event_id()

    # when
    call_command("bootstrap_issuing_body", "--admin", "officer", *ARGS)

    # then
    organisation = Organisation.objects.get(is_issuing_body=True)
    assert organisation.status == Organisation.Status.APPROVED
    assert Membership.objects.get(organisation=organisation).user.username == "officer"
    assert [e["type"] for e in events_since(before)] == ["organisation.bootstrapped"]


def test_bootstrap_issuing_body_runs_once():
    UserFactory(username="officer")
    OrganisationFactory(is_issuing_body=True)
    with pytest.raises(CommandError, match="exists already"):
        call_command("bootstrap_issuing_body", "--admin", "officer", *ARGS)
    assert Organisation.objects.count() == 1


def test_bootstrap_issuing_body_needs_the_user():
    with pytest.raises(CommandError, match="createsuperuser"):
        call_command("bootstrap_issuing_body", "--admin", "nobody", *ARGS)
    assert Organisation.objects.count() == 0
