"""Trading agents over HTTP: delegate, read, change, revoke, decisions; refusals with codes."""

import pytest

from market.agent_models import AgentDecision, TradingAgent
from market.models import Order
from tests.conftest import client_for
from tests.market.agent_support import delegate, history, run
from tests.market.conftest import snapshot
from tests.market.factories import EnergyMarketFactory, MarketFactory, next_slot, trader
from tests.registry.support import row_counts

pytestmark = pytest.mark.django_db
BASE = "/api/v1/market/agents"


def _create(client, on, who, **overrides):
    body = {
        "market": on.pk,
        "account": who.account.pk,
        "min_sell_price": 3_000,
        "max_buy_price": 9_000,
        "reserve_wh": 1_000,
    }
    return client.post(f"{BASE}/", {**body, **overrides}, format="json")


def test_a_household_delegates_reads_changes_and_revokes_its_agent():
    # given
    market = EnergyMarketFactory()
    slot = next_slot(market)
    household = trader(100_000)
    history(household, slot, produced=None, consumed=800)
    client = client_for(household.user)

    # when it delegates
    created = _create(client, market, household)

    # then
    assert created.status_code == 201, created.content
    agent = created.json()
    assert (agent["status"], agent["max_buy_price"], agent["history_days"]) == (
        "active",
        9_000,
        7,
    )
    listed = client.get(f"{BASE}/", {"market": market.pk}).json()["results"]
    assert [a["id"] for a in listed] == [agent["id"]]

    # when it runs for a slot, the decision is explained
    decision = run(TradingAgent.objects.get(pk=agent["id"]), slot)
    decisions = client.get(f"{BASE}/{agent['id']}/decisions/").json()["results"]
    assert [(d["id"], d["action"], d["side"], d["quantity_wh"]) for d in decisions] == [
        (decision.pk, "placed", "buy", 800)
    ]
    assert "Bid for 800 Wh at up to 9000 per MWh" in decisions[0]["explanation"]

    # when it changes a preference, then revokes
    changed = client.patch(f"{BASE}/{agent['id']}/", {"max_buy_price": 8_000}, format="json")
    revoked = client.post(f"{BASE}/{agent['id']}/revoke/")

    # then
    assert changed.status_code == 200, changed.content
    assert changed.json()["max_buy_price"] == 8_000
    assert revoked.status_code == 200, revoked.content
    body = revoked.json()
    assert (body["agent"]["status"], body["cancelled_orders"], body["staying_orders"]) == (
        "revoked",
        [decision.order_id],
        [],
    )
    assert Order.objects.get(pk=decision.order_id).status == "cancelled"

    # and a revoked agent is neither changed nor revoked again
    for response in (
        client.patch(f"{BASE}/{agent['id']}/", {"max_buy_price": 7_000}, format="json"),
        client.post(f"{BASE}/{agent['id']}/revoke/"),
    ):
        assert (response.status_code, response.json()["code"]) == (409, "market_agent_revoked")


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"min_sell_price": 200_000}, 400, "price_outside_band"),
        ({"max_buy_price": -5}, 400, "invalid_price"),
        ({"reserve_wh": -1}, 400, "invalid_agent_preferences"),
        ({"history_days": 0}, 400, "invalid_agent_preferences"),
        ({"history_days": 61}, 400, "invalid_agent_preferences"),
        ({"max_buy_price": "lots"}, 400, "invalid"),
        ({"colour": "red"}, 400, "invalid"),
        ({"market": 10**9}, 404, "market_not_found"),
        ({"account": 10**9}, 404, "account_not_found"),
    ],
)
def test_bad_delegations_are_refused_with_a_code_and_change_nothing(overrides, status, code):
    market = EnergyMarketFactory()
    household = trader()
    before = snapshot(), row_counts(TradingAgent, AgentDecision)

    response = _create(client_for(household.user), market, household, **overrides)

    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert (snapshot(), row_counts(TradingAgent, AgentDecision)) == before


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"min_sell_price": 200_000}, "price_outside_band"), ({"max_buy_price": -5}, "invalid_price")],
)
def test_a_refused_price_is_named_as_it_was_given(overrides, code):
    market = EnergyMarketFactory()
    household = trader()

    body = _create(client_for(household.user), market, household, **overrides).json()

    assert body["code"] == code
    ((name, value),) = overrides.items()
    assert body["extra"][name] == (value if code == "price_outside_band" else str(value))
    assert "limit_price" not in body["extra"]


def test_another_organisations_account_market_kind_and_a_second_agent_are_refused():
    market = EnergyMarketFactory()
    me, other = trader(), trader()
    client = client_for(me.user)

    foreign = _create(client, market, me, account=other.account.pk)
    certificates = _create(client, MarketFactory(), me)
    first = _create(client, market, me)
    second = _create(client, market, me)

    assert (foreign.status_code, foreign.json()["code"]) == (404, "account_not_found")
    assert (certificates.status_code, certificates.json()["code"]) == (
        409,
        "market_agent_market_unsupported",
    )
    assert first.status_code == 201
    assert (second.status_code, second.json()["code"]) == (409, "market_agent_exists")


def test_another_organisations_agent_is_invisible_and_untouchable():
    market = EnergyMarketFactory()
    owner, stranger = trader(), trader()
    agent = delegate(market, owner)
    client = client_for(stranger.user)

    assert client.get(f"{BASE}/").json()["results"] == []
    for response in (
        client.get(f"{BASE}/{agent.pk}/"),
        client.get(f"{BASE}/{agent.pk}/decisions/"),
        client.patch(f"{BASE}/{agent.pk}/", {"min_sell_price": 5}, format="json"),
        client.post(f"{BASE}/{agent.pk}/revoke/"),
    ):
        assert response.status_code == 404, response.content
    assert TradingAgent.objects.get(pk=agent.pk).status == "active"
    assert client_for(None).get(f"{BASE}/").status_code == 401


def test_an_empty_or_unknown_update_is_refused():
    market = EnergyMarketFactory()
    owner = trader()
    agent = delegate(market, owner)
    client = client_for(owner.user)

    empty = client.patch(f"{BASE}/{agent.pk}/", {}, format="json")
    unknown = client.patch(f"{BASE}/{agent.pk}/", {"market": 3}, format="json")

    assert (empty.status_code, empty.json()["code"]) == (400, "invalid_agent_preferences")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid")
