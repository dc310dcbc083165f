import datetime as dt
from fractions import Fraction
from types import SimpleNamespace

import pytest

from accounts.models import Membership
from certificates import services as certificates
from contracts import services
from contracts.kinds.shares import PPA, STANDING_TRANSFER
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user

START = DAY - dt.timedelta(days=1)
END = DAY + dt.timedelta(days=365)


def ppa_terms(world, **overrides) -> dict:
    return {
        "device_id": world.device.pk,
        "seller_account": world.seller_account.number,
        "buyer_account": world.buyer_account.number,
        "share_bp": 3_000,
        "price_per_mwh_minor": 5_000,  # 50.00 EUR/MWh
        "currency": "EUR",
    } | overrides


def make_ppa(world, *, active: bool = True, **overrides):
    contract = services.contract_create(
        actor=world.seller,
        kind=PPA,
        terms=ppa_terms(world, **overrides),
        start_at=START,
        end_at=END,
    )
    if active:
        services.contract_agree(actor=world.seller, contract_id=contract.pk)
        services.contract_agree(actor=world.buyer, contract_id=contract.pk)
        contract.refresh_from_db()
    return contract


def make_forward(world, to_account, share_bp: int):
    """An active standing transfer of `share_bp` of the seller's new certificates."""
    contract = services.contract_create(
        actor=world.seller,
        kind=STANDING_TRANSFER,
        terms={
            "from_account": world.seller_account.number,
            "to_account": to_account.number,
            "share_bp": share_bp,
        },
        start_at=START,
        end_at=END,
    )
    services.contract_agree(actor=world.seller, contract_id=contract.pk)
    return contract


def issue(world, hours: int = 3, start=DAY):
    return certificates.certificate_issue(
        actor=world.ib,
        device_id=world.device.pk,
        period_start=start,
        period_end=start + dt.timedelta(hours=hours),
    )


def build_world(wh=lambda i: 1_001 + i) -> SimpleNamespace:
    """A producer's plant (sole owner) with a day of readings (`wh` of hour i), and a buyer
    organisation."""
    device, (seller_account,) = device_with_owners([Fraction(1)])
    add_readings(device, hours=24, wh=wh)
    buyer_org = OrganisationFactory(legal_name="Buyer AG", is_producer=False)
    buyer_account = AccountFactory(organisation=buyer_org)
    return SimpleNamespace(
        device=device,
        seller_account=seller_account,
        buyer_account=buyer_account,
        seller=holder(seller_account, Membership.Role.ADMIN),
        buyer=holder(buyer_account, Membership.Role.ADMIN),
        viewer=holder(seller_account, Membership.Role.VIEWER),
        ib=issuing_body_user(),
    )


@pytest.fixture
def world():
    """`build_world`: a sole-owner plant with a day of readings, and a buyer."""
    return build_world()
