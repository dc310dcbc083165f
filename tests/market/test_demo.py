import io

import pytest

from accounts import demo as accounts_demo
from assets import demo as assets_demo
from certificates import demo as certificates_demo
from certificates.replay import replay_ledger
from market import demo
from market.models import Market, Order, SettlementAccount
from market.replay import replay_market

pytestmark = pytest.mark.django_db


def test_demo_market_has_a_resting_offer_and_funds_and_is_idempotent(tmp_path):
    # given the other demos
    out = io.StringIO()
    accounts_demo.seed(out)
    assets_demo.seed(out, key_path=tmp_path / "demo.key")
    certificates_demo.seed(out)

    # when
    demo.seed(out)

    # then
    market = Market.objects.get(code=demo.CODE)
    energy = Market.objects.get(code=demo.ENERGY_CODE)
    assert (energy.kind, energy.matching, energy.slot_minutes) == ("energy", "uniform", 15)
    assert energy.grid_area.code == assets_demo.AREA_CODE
    offer = Order.objects.get(market=market)
    assert (offer.side, offer.status) == ("sell", "open")
    buyer_money = SettlementAccount.objects.get(organisation__legal_name=demo.BUYER)
    assert buyer_money.available == 100_000
    assert replay_ledger().ok and replay_market().ok
    demo.seed(out)
    assert Order.objects.count() == 1
    assert "Demo market exists already." in out.getvalue()
