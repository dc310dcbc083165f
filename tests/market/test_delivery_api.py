"""Delivery settlement over HTTP: the operator settles a slot; anyone reads the result."""

import datetime as dt

import pytest

from market.models import SlotSettlement
from tests.conftest import client_for
from tests.factories import issuing_body_user
from tests.market.conftest import snapshot
from tests.market.delivery_support import cleared_slot, consumed, produced
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db
BASE = "/api/v1/market/clearings"


def test_the_operator_settles_an_ended_slot_once_and_anyone_reads_it():
    # given a slot that ended an hour ago, fully delivered
    slot = cleared_slot([(0, 10_000, 5_000)], [(0, 10_000, 5_000)], ahead=-dt.timedelta(hours=2))
    offer, bid = slot.orders
    produced(slot.sellers[0], slot.start, 10_000)
    consumed(slot.buyers[0], slot.start, 10_000)
    operator = client_for(issuing_body_user())
    url = f"{BASE}/{slot.clearing.pk}/settle/"
    before = last_event_id()

    # when the operator settles it, and repeats the request
    first = operator.post(url, HTTP_IDEMPOTENCY_KEY="settle-1")
    again = operator.post(url, HTTP_IDEMPOTENCY_KEY="settle-2")

    # then it is settled once: the second answer is the same settlement, no new event
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["status"], body["reason"], body["delivered_wh"]) == ("settled", "", 10_000)
    assert [
        (line["order"], line["delivered_wh"], line["amount_minor"]) for line in body["lines"]
    ] == [
        (offer.pk, 10_000, 50),
        (bid.pk, 10_000, 50),
    ]
    assert "organisation" not in body["lines"][0]
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert [e["type"] for e in events_since(before)] == ["market.slot_settled"]
    read = client_for(None).get(f"{BASE}/{slot.clearing.pk}/settlement/")
    assert read.status_code == 200 and read.json() == body


@pytest.mark.parametrize(
    "who, clearing, status, code",
    [
        ("buyer", "slot", 403, "not_market_operator"),
        ("anonymous", "slot", 401, None),
        ("operator", "unknown", 404, "slot_clearing_not_found"),
        ("operator", "future", 409, "slot_not_delivered"),
    ],
)
def test_settle_refusals_change_nothing(who, clearing, status, code):
    ended = cleared_slot([(0, 1_000, 5_000)], [(0, 1_000, 5_000)], ahead=-dt.timedelta(hours=2))
    future = cleared_slot([(0, 1_000, 5_000)], [(0, 1_000, 5_000)])
    user = {"buyer": ended.buyers[0].user, "anonymous": None, "operator": issuing_body_user()}[who]
    pk = {"slot": ended.clearing.pk, "unknown": 10**9, "future": future.clearing.pk}[clearing]
    before = snapshot()

    response = client_for(user).post(f"{BASE}/{pk}/settle/", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == status, response.content
    if code:
        assert response.json()["code"] == code
    assert snapshot() == before
    assert not SlotSettlement.objects.exists()


def test_reading_a_slot_not_yet_settled_is_404():
    slot = cleared_slot([(0, 1_000, 5_000)], [(0, 1_000, 5_000)])
    response = client_for(None).get(f"{BASE}/{slot.clearing.pk}/settlement/")
    assert (response.status_code, response.json()["code"]) == (404, "slot_settlement_not_found")
