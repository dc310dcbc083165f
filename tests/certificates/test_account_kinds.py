"""Account kinds mean something (README, "Accounts"): trading accounts send and receive;
issuance accounts receive new certificates and send them on but take no transfers;
retirement accounts are final: nothing is issued or transferred into them, and nothing
leaves them except by retirement in place."""

import datetime as dt
from fractions import Fraction

import pytest
from django.db import transaction

from accounts.models import Account
from assets.services import device_owners_set
from certificates import crossregistry, errors, services
from certificates.models import Bundle
from registry.errors import InvalidInput
from tests.certificates.conftest import snapshot
from tests.certificates.factories import DAY, PARTNER, add_readings, device_with_owners
from tests.certificates.factories import holder as member
from tests.conftest import client_for
from tests.factories import AccountFactory
from tests.federation.factories import PeerFactory

pytestmark = pytest.mark.django_db

CLAIM = {
    "beneficiary_name": "Town hall",
    "beneficiary_country": "DE",
    "consumption_start": DAY,
    "consumption_end": DAY + dt.timedelta(days=1),
    "purpose": "voluntary",
}


def _own_account(issued, kind: str) -> Account:
    return AccountFactory(organisation=issued.producer_account.organisation, kind=kind)


def _parked_in(issued, account: Account) -> Bundle:
    """A bundle held in `account` as if it had landed there before the kinds had rules."""
    bundle = issued.bundles[0]
    Bundle.objects.filter(pk=bundle.pk).update(account=account)
    bundle.refresh_from_db()
    return bundle


@pytest.mark.parametrize("kind", [Account.Kind.ISSUANCE, Account.Kind.RETIREMENT])
def test_only_trading_accounts_receive_transfers(issued, kind):
    # given: an issuance or retirement account of the buyer's organisation
    target = AccountFactory(organisation=issued.buyer_account.organisation, kind=kind)
    before = snapshot()
    # when / then
    with pytest.raises(errors.AccountRefusesTransfers) as refused:
        services.certificate_transfer(
            actor=issued.producer, bundle_id=issued.bundles[0].pk, to_account_id=target.pk
        )
    assert refused.value.status == 409
    assert refused.value.extra == {"account_id": target.pk, "kind": kind}
    assert snapshot() == before


def test_the_transfer_api_answers_409_with_the_code_for_a_retirement_account(issued):
    target = AccountFactory(organisation=issued.buyer_account.organisation, kind="retirement")
    before = snapshot()
    response = client_for(issued.producer).post(
        f"/api/v1/bundles/{issued.bundles[0].pk}/transfers/",
        {"to_account": target.number},
        format="json",
    )
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "account_refuses_transfers"
    assert snapshot() == before


def test_new_certificates_land_in_an_issuance_account_which_sends_them_on(ib_user):
    # given: a plant whose owner receives in its issuance account
    device, (trading,) = device_with_owners([Fraction(1)])
    Account.objects.filter(pk=trading.pk).update(kind=Account.Kind.ISSUANCE)
    add_readings(device, hours=2)
    buyer = AccountFactory()
    # when
    services.certificate_issue(
        actor=ib_user, device_id=device.pk, period_start=DAY, period_end=DAY + dt.timedelta(hours=2)
    )
    # then: issued there, and it may transfer out to a trading account
    bundle = Bundle.objects.filter(account_id=trading.pk, status=Bundle.Status.ACTIVE).first()
    assert bundle is not None
    transfer = services.certificate_transfer(
        actor=member(trading), bundle_id=bundle.pk, to_account_id=buyer.pk
    )
    assert transfer.to_account_id == buyer.pk


def test_issuance_into_a_retirement_account_is_refused(ib_user):
    # given: an owner's receiving account that became a retirement account
    device, (account,) = device_with_owners([Fraction(1)])
    Account.objects.filter(pk=account.pk).update(kind=Account.Kind.RETIREMENT)
    add_readings(device, hours=2)
    before = snapshot()
    # when / then
    with pytest.raises(errors.AccountRefusesIssuance) as refused:
        services.certificate_issue(
            actor=ib_user,
            device_id=device.pk,
            period_start=DAY,
            period_end=DAY + dt.timedelta(hours=2),
        )
    assert (refused.value.status, refused.value.code) == (409, "account_refuses_issuance")
    assert snapshot() == before


def test_a_device_owner_cannot_receive_into_a_retirement_account(issued):
    retirement = _own_account(issued, Account.Kind.RETIREMENT)
    owners = [
        {
            "organisation_id": retirement.organisation_id,
            "account_id": retirement.pk,
            "share": "1",
        }
    ]
    with pytest.raises(InvalidInput) as refused:
        device_owners_set(actor=issued.producer, device_id=issued.device.pk, owners=owners)
    assert "retirement account" in str(refused.value.extra)


def test_nothing_is_transferred_out_of_a_retirement_account(issued):
    bundle = _parked_in(issued, _own_account(issued, Account.Kind.RETIREMENT))
    before = snapshot()
    with pytest.raises(errors.RetirementAccountFinal) as refused:
        services.certificate_transfer(
            actor=issued.producer, bundle_id=bundle.pk, to_account_id=issued.buyer_account.pk
        )
    assert (refused.value.status, refused.value.code) == (409, "retirement_account_final")
    assert snapshot() == before


def test_nothing_is_reserved_in_a_retirement_account(issued):
    bundle = _parked_in(issued, _own_account(issued, Account.Kind.RETIREMENT))
    before = snapshot()
    with pytest.raises(errors.RetirementAccountFinal), transaction.atomic():
        services.certificate_units_reserve(actor=issued.producer, bundle_id=bundle.pk)
    assert snapshot() == before


def test_nothing_is_exported_from_a_retirement_account(issued):
    PeerFactory(origin=PARTNER, is_partner=True)
    bundle = _parked_in(issued, _own_account(issued, Account.Kind.RETIREMENT))
    before = snapshot()
    with pytest.raises(errors.RetirementAccountFinal):
        crossregistry.certificate_export(
            actor=issued.producer,
            bundle_id=bundle.pk,
            destination=PARTNER,
            destination_account="B-ACC-1",
        )
    assert snapshot() == before


@pytest.mark.parametrize(
    "kind", [Account.Kind.TRADING, Account.Kind.ISSUANCE, Account.Kind.RETIREMENT]
)
def test_certificates_are_retired_in_place_from_any_kind_of_account(issued, kind):
    # given
    account = _own_account(issued, kind)
    bundle = _parked_in(issued, account)
    # when
    retirement = services.certificate_retire(
        actor=issued.producer, items=[(bundle.pk, None)], **CLAIM
    )
    # then
    bundle.refresh_from_db()
    assert retirement.account_id == account.pk
    assert (bundle.account_id, bundle.status) == (account.pk, Bundle.Status.RETIRED)
