"""Energy slots over HTTP: bids and offers for a slot, refusals with codes, the clearing."""

import datetime as dt

import pytest

from market import services
from tests.conftest import client_for
from tests.market.conftest import snapshot
from tests.market.factories import EnergyMarketFactory, next_slot, trader

pytestmark = pytest.mark.django_db
BASE = "/api/v1/market"


def _order(client, market, who, side, quantity, price, slot):
    return client.post(
        f"{BASE}/orders/",
        {
            "market": market.pk,
            "side": side,
            "limit_price": price,
            "quantity_wh": quantity,
            "account": who.account.pk,
            "slot_start": slot if isinstance(slot, str) else slot.isoformat(),
        },
        format="json",
    )


def test_a_consumer_bids_a_prosumer_offers_and_the_cleared_slot_is_readable():
    # given an energy market, a funded consumer and a prosumer
    market = EnergyMarketFactory()
    slot = next_slot(market)
    consumer, prosumer = trader(10_000), trader()
    buying, selling = client_for(consumer.user), client_for(prosumer.user)
    listed = buying.get(f"{BASE}/markets/{market.pk}/").json()
    assert (listed["slot_minutes"], listed["gate_closure_minutes"]) == (15, 5)

    # when both place orders for the slot through the orders endpoint
    bid = _order(buying, market, consumer, "buy", 2_000, 9_000, slot)
    offer = _order(selling, market, prosumer, "sell", 1_500, 5_000, slot)

    # then they rest, the bid escrowed at its limit
    assert bid.status_code == 201, bid.content
    assert offer.status_code == 201, offer.content
    body = bid.json()
    assert (body["order"]["status"], body["order"]["product"], body["trades"]) == (
        "open",
        "energy",
        [],
    )
    assert body["order"]["reserved_minor"] == 18
    assert dt.datetime.fromisoformat(body["order"]["slot_start"]) == slot

    # when the slot clears at gate closure
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # then anyone reads its price, volume and allocations
    found = client_for(None).get(
        f"{BASE}/clearings/", {"market": market.pk, "slot_start": slot.isoformat()}
    )
    assert found.status_code == 200, found.content
    [row] = found.json()["results"]
    assert (row["id"], row["price"], row["volume_wh"]) == (record.pk, 9_000, 1_500)
    allocations = {a["order"]: (a["cleared_wh"], a["status"]) for a in row["allocations"]}
    assert allocations == {
        body["order"]["id"]: (1_500, "partially_cleared"),
        offer.json()["order"]["id"]: (1_500, "cleared"),
    }
    detail = client_for(None).get(f"{BASE}/clearings/{record.pk}/").json()
    assert detail["slot_start"] == row["slot_start"]
    # the rest of the bid is left out at 9,000, so the price is 9,000: the bid keeps
    # 1,500 Wh at EUR 90/MWh = 13.5 -> 14 cents escrowed for delivery
    mine = buying.get(f"{BASE}/orders/{body['order']['id']}/").json()
    assert (mine["reserved_minor"], mine["filled_wh"], mine["clearing"]) == (14, 1_500, record.pk)


@pytest.mark.parametrize(
    ("slot", "code", "status"),
    [
        (lambda s: (s + dt.timedelta(minutes=3)).isoformat(), "slot_misaligned", 400),
        (lambda s: "2020-01-01T00:00:00Z", "gate_closed", 409),
        (lambda s: "not a time", "invalid", 400),
    ],
)
def test_bad_slots_are_refused_with_a_code_and_change_nothing(slot, code, status):
    market = EnergyMarketFactory()
    consumer = trader(10_000)
    before = snapshot()

    response = _order(
        client_for(consumer.user), market, consumer, "buy", 1_000, 5_000, slot(next_slot(market))
    )

    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert snapshot() == before


def test_a_clearing_that_does_not_exist_is_404():
    response = client_for(None).get(f"{BASE}/clearings/999999/")
    assert response.status_code == 404


def test_the_admin_lists_clearings_and_energy_orders_read_only(admin_client):
    # given a cleared slot
    market = EnergyMarketFactory()
    slot = next_slot(market)
    consumer = trader(10_000)
    _order(client_for(consumer.user), market, consumer, "buy", 1_000, 5_000, slot)
    record = services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)

    # when / then
    for base, pk in (("/admin/market/slotclearing/", record.pk), ("/admin/market/order/", None)):
        assert admin_client.get(base).status_code == 200
        if pk is not None:
            assert admin_client.get(f"{base}{pk}/change/").status_code == 200
            assert admin_client.get(f"{base}add/").status_code == 403
