"""Retire on delivery: an energy bid's certificates are retired at settlement, with a
statement that verifies offline; bad claims are refused at placement."""

import io
import json

import pytest
from django.core.management import call_command

from certificates import selectors
from certificates.models import Bundle, Retirement
from certificates.replay import replay_ledger
from market import services
from market.models import Order, SlotSettlementLine
from market.replay import replay_market
from tests.certificates.factories import DAY
from tests.conftest import client_for
from tests.market.conftest import snapshot
from tests.market.delivery_support import SLOT, cleared_slot, consumed
from tests.market.factories import (
    EnergyMarketFactory,
    MarketFactory,
    next_slot,
    seller_with_bundles,
    trader,
)
from tests.registry.support import events_since, last_event_id

pytestmark = pytest.mark.django_db

CLAIM = {"beneficiary_name": "Anna Schmidt", "beneficiary_country": "DE", "purpose": "voluntary"}


def _settled_with_claim_for_first_buyer():
    seller = seller_with_bundles(hours=1, wh=4_000)
    slot = cleared_slot(
        [(0, 1_000, 5_000)],
        [(0, 600, 6_000), (1, 400, 6_000)],
        sellers=[seller],
        slot=DAY,
        retire={0: CLAIM},
    )
    for buyer in slot.buyers:
        consumed(buyer, slot.start, 1_000)
    before = last_event_id()
    settlement = services.slot_settle(clearing_id=slot.clearing.pk, now=slot.after)
    return slot, settlement, events_since(before)


def test_a_bid_retiring_on_delivery_gets_a_retirement_and_one_without_does_not():
    # given two bids, the first asking to retire on delivery; when the slot settles
    slot, settlement, events = _settled_with_claim_for_first_buyer()

    # then the first buyer's 600 Wh are retired for the slot, the second's stay active
    retiring, keeping = slot.buyers
    retirement = Retirement.objects.get()
    assert (retirement.account_id, retirement.volume_wh) == (retiring.account.pk, 600)
    assert (retirement.consumption_start, retirement.consumption_end) == (
        slot.start,
        slot.start + SLOT,
    )
    assert (retirement.beneficiary_name, retirement.beneficiary_country) == ("Anna Schmidt", "DE")
    assert retirement.purpose == "voluntary"
    assert retirement.retired_by == retiring.user
    mine = Bundle.objects.filter(account=retiring.account)
    assert list(mine.values_list("status", flat=True)) == [Bundle.Status.RETIRED]
    theirs = Bundle.objects.filter(account=keeping.account)
    assert list(theirs.values_list("status", flat=True)) == [Bundle.Status.ACTIVE]
    lines = {line.order.organisation_id: line for line in SlotSettlementLine.objects.all()}
    assert lines[retiring.account.organisation_id].retirement == retirement
    assert lines[keeping.account.organisation_id].retirement is None
    assert settlement.certificates_pending_wh == 0
    # and the settlement event (its line flagged), then the retirement's, whose mandate
    # names the settlement and the bid
    assert [e["type"] for e in events] == ["market.slot_settled", "certificate.retired"]
    settled, retired = events
    [line] = [ln for ln in settled["data"]["lines"] if ln.get("retire_on_delivery")]
    bid = lines[retiring.account.organisation_id].order
    assert line["order_id"] == bid.pk
    assert f"retirement:{retirement.pk}" in retired["subject"]
    assert retired["data"]["mandate"] == {"slot_settlement_id": settlement.pk, "order_id": bid.pk}
    assert "Anna Schmidt" not in json.dumps(events)
    assert replay_ledger().ok and replay_market().ok
    call_command("replay_ledger")


@pytest.mark.subject_index
def test_the_retirement_statement_verifies_offline(tmp_path):
    from ledger.keys import registry_signer
    from ledger.services import checkpoint_create, ledger_integrate
    from ledger.verify.__main__ import main as verify_main

    # given a settled slot whose first bid retired on delivery
    _settled_with_claim_for_first_buyer()
    retirement = Retirement.objects.get()
    ledger_integrate()
    checkpoint_create()

    # when its statement is assembled
    statement = selectors.retirement_statement(retirement=retirement)

    # then it proves the issuance, the delivery at settlement and the retirement
    kinds = [step.kind for step in statement["history"]]
    assert kinds[0] == "certificate.issued" and kinds[-1] == "certificate.retired"
    assert "market.slot_settled" in kinds
    path = tmp_path / "statement.json"
    keep = ("checkpoint", "entries", "completeness")
    path.write_text(
        json.dumps({**{k: statement[k] for k in keep}, "retirement": str(retirement.public_id)})
    )
    out = io.StringIO()
    assert verify_main(["history", "--file", str(path), "--key", registry_signer().vkey], out) == 0
    assert f"about retirement:{retirement.pk}" in out.getvalue()
    # and a statement with an entry left out does not
    path.write_text(json.dumps({**{k: statement[k] for k in keep}, "entries": []}))
    assert verify_main(["history", "--file", str(path), "--key", registry_signer().vkey]) == 1


def test_the_order_records_the_claim_and_its_event_leaves_the_name_out():
    market = EnergyMarketFactory()
    buyer = trader(10_000)
    before = last_event_id()
    order = services.order_place(
        actor=buyer.user,
        market_id=market.pk,
        side="buy",
        limit_price=5_000,
        quantity_wh=1_000,
        account_id=buyer.account.pk,
        slot_start=next_slot(market),
        retire_on_delivery=CLAIM,
    ).order
    order.refresh_from_db()
    assert order.retire_on_delivery
    assert (order.retire_beneficiary_name, order.retire_beneficiary_country) == (
        "Anna Schmidt",
        "DE",
    )
    [event] = events_since(before)
    assert event["data"]["order"]["retire_on_delivery"] == {
        "beneficiary_country": "DE",
        "purpose": "voluntary",
    }
    assert "Anna Schmidt" not in json.dumps(event)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"side": "sell"}, "retire_on_delivery_not_allowed"),
        ({"certificates": True}, "retire_on_delivery_not_allowed"),
        ({"claim": {**CLAIM, "beneficiary_name": "  "}}, "invalid_order"),
        ({"claim": {**CLAIM, "beneficiary_country": "ZZ"}}, "invalid_order"),
        ({"claim": {**CLAIM, "purpose": "bragging"}}, "invalid_order"),
        ({"claim": {**CLAIM, "location": "Berlin"}}, "invalid_order"),
        ({"claim": "yes"}, "invalid_order"),
    ],
)
def test_bad_retire_on_delivery_is_refused_and_changes_nothing(refused, change, code):
    # given an energy market (or a certificate market) and a funded trader
    certificates = change.get("certificates", False)
    market = MarketFactory() if certificates else EnergyMarketFactory()
    buyer = trader(10_000)
    args = {
        "actor": buyer.user,
        "market_id": market.pk,
        "side": change.get("side", "buy"),
        "limit_price": 5_000,
        "quantity_wh": 1_000,
        "account_id": buyer.account.pk,
        "slot_start": None if certificates else next_slot(market),
        "retire_on_delivery": change.get("claim", CLAIM),
    }

    # when / then
    refused(lambda: services.order_place(**args), code, 400)
    assert not Order.objects.filter(retire_on_delivery=True).exists()


def test_over_http_the_claim_is_placed_shown_and_the_settlement_line_names_the_statement():
    # given a funded consumer in an energy market
    market = EnergyMarketFactory()
    consumer = trader(10_000)
    client = client_for(consumer.user)
    body = {
        "market": market.pk,
        "side": "buy",
        "limit_price": 5_000,
        "quantity_wh": 1_000,
        "account": consumer.account.pk,
        "slot_start": next_slot(market).isoformat(),
    }

    # when it bids with a claim, then it is kept and shown on the order
    placed = client.post(
        "/api/v1/market/orders/",
        {**body, "retire_on_delivery": CLAIM},
        format="json",
        HTTP_IDEMPOTENCY_KEY="green-1",
    )
    assert placed.status_code == 201, placed.content
    assert placed.json()["order"]["retire_on_delivery"] == CLAIM
    # and a bad claim is refused with a code, nothing written
    before = snapshot()
    refused = client.post(
        "/api/v1/market/orders/",
        {**body, "side": "sell", "retire_on_delivery": CLAIM},
        format="json",
        HTTP_IDEMPOTENCY_KEY="green-2",
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "retire_on_delivery_not_allowed")
    bad_country = client.post(
        "/api/v1/market/orders/",
        {**body, "retire_on_delivery": {**CLAIM, "beneficiary_country": "XX"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="green-3",
    )
    assert bad_country.status_code == 400
    assert snapshot() == before


def test_the_public_settlement_line_names_the_retirement_statement():
    slot, _settlement, _events = _settled_with_claim_for_first_buyer()
    retirement = Retirement.objects.get()

    read = client_for(None).get(f"/api/v1/market/clearings/{slot.clearing.pk}/settlement/")

    assert read.status_code == 200
    named = [line["retirement"] for line in read.json()["lines"] if line["side"] == "buy"]
    assert sorted(named, key=str) == sorted([str(retirement.public_id), None], key=str)
    statement = client_for(None).get(f"/api/v1/statements/{retirement.public_id}/")
    assert statement.status_code == 200
