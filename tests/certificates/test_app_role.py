"""The registry's daily work runs as the application's database role, which cannot rewrite
the ledger (registry/db_roles.py): issue, transfer, retire, integrate, checkpoint, verify."""

import datetime as dt

import pytest

from certificates import services
from certificates.models import Bundle, Retirement
from ledger.integrity import ledger_verify
from ledger.models import LedgerEntry, PendingEvent
from ledger.services import checkpoint_create, ledger_integrate
from tests.certificates.factories import DAY, holder
from tests.conftest import requires_postgres
from tests.factories import AccountFactory, OrganisationFactory
from tests.registry.roles import (
    app_role,  # noqa: F401 - a fixture
    running_as,
)

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_certificates_live_their_whole_life_as_the_application_role(plant, app_role):  # noqa: F811
    # given: the buyer's account, made by the owner like every fixture
    buyer_account = AccountFactory(organisation=OrganisationFactory(is_producer=False))
    buyer = holder(buyer_account)
    # when: every step runs logged in as the application role
    with running_as(app_role):
        services.certificate_issue(
            actor=plant.ib,
            device_id=plant.device.pk,
            period_start=DAY,
            period_end=DAY + dt.timedelta(hours=2),
        )
        first = Bundle.objects.filter(account=plant.producer_account).order_by("pk").first()
        transfer = services.certificate_transfer(
            actor=plant.producer, bundle_id=first.pk, to_account_id=buyer_account.pk
        )
        retirement = services.certificate_retire(
            actor=buyer,
            items=[(transfer.bundle_id, None)],
            beneficiary_name="Town hall",
            beneficiary_country="DE",
            consumption_start=DAY,
            consumption_end=DAY + dt.timedelta(days=1),
            purpose="voluntary",
        )
        ledger_integrate()  # what the commits' kicks left, if anything
        checkpoint, created = checkpoint_create()
        report = ledger_verify()
    # then
    assert Retirement.objects.filter(pk=retirement.pk).exists()
    assert created and not PendingEvent.objects.exists()
    assert report.entries == LedgerEntry.objects.count() == checkpoint.size
