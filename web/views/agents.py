"""Trading agents of a producer's or trader's person: their agents in the energy markets
(market, account, preferences, status), delegating a new one, revoking one, and an agent's
recent decisions with their explanations. Writes go through market.agents.services, as
the API's do."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from market import selectors as market_selectors
from market.agent_models import AgentDecision, TradingAgent
from market.agents import selectors as agent_selectors
from market.agents import services as agent_services
from market.slots import is_slot_market
from registry.errors import DomainError
from web.forms import AgentDelegateForm
from web.views.common import form_refused, role_required
from web.views.trading import ORDER_SIDE, _market_person, _organisation_ids, _trading_accounts

DECISIONS_SHOWN = 50

# The models' choice labels are English only; the pages show these (translated) ones.
AGENT_STATUS = {
    TradingAgent.Status.ACTIVE: pgettext_lazy("agent status", "active"),
    TradingAgent.Status.REVOKED: pgettext_lazy("agent status", "revoked"),
}
DECISION_ACTION = {
    AgentDecision.Action.PLACED: gettext_lazy("Placed an order"),
    AgentDecision.Action.AMENDED: gettext_lazy("Amended its order"),
    AgentDecision.Action.KEPT: gettext_lazy("Kept its order as it was"),
    AgentDecision.Action.CANCELLED: gettext_lazy("Cancelled its order (nothing to trade)"),
    AgentDecision.Action.REPLACED: gettext_lazy(
        "Cancelled its order and placed one on the other side"
    ),
    AgentDecision.Action.NONE: gettext_lazy("Nothing to trade, no order"),
    AgentDecision.Action.SKIPPED: gettext_lazy("Refused by the order service"),
}
# The service's field names, as the form names them.
FORM_FIELDS = {"market_id": "market", "account_id": "account"}


def _energy_markets() -> list:
    return [m for m in market_selectors.market_list().order_by("code") if is_slot_market(m)]


def _delegate_form(request: HttpRequest, data=None) -> AgentDelegateForm:
    markets = _energy_markets()
    accounts = _trading_accounts(request)
    initial = {"reserve_wh": 0, "history_days": 7}
    if markets:
        initial["market"] = markets[0].pk
    if accounts:
        initial["account"] = accounts[0].pk
    return AgentDelegateForm(data, initial=initial, markets=markets, accounts=accounts)


def _my_agents(request: HttpRequest):
    return agent_selectors.agent_list(user=request.user).filter(
        organisation_id__in=_organisation_ids(request)
    )


@role_required(_market_person)
def page(request: HttpRequest, form=None) -> HttpResponse:
    """Which agents trade for me, with which preferences; delegate or revoke one."""
    agents = list(
        _my_agents(request)
        .select_related("market", "account", "organisation")
        .order_by("status", "-pk")[:50]
    )
    for agent in agents:
        agent.status_label = AGENT_STATUS.get(agent.status, agent.status)
    context = {"agents": agents, "form": form or _delegate_form(request)}
    return render(request, "web/market/agents.html", context)


def _refused(request: HttpRequest, form, error: DomainError) -> None:
    form_refused(request, form, error, FORM_FIELDS)


@require_POST
@role_required(_market_person)
def delegate(request: HttpRequest) -> HttpResponse:
    """Delegate trading in an energy market (agent_delegate, as POST /market/agents/)."""
    form = _delegate_form(request, data=request.POST)
    if not form.is_valid():
        return page(request, form=form)
    try:
        agent = agent_services.agent_delegate(actor=request.user, **form.service_arguments())
    except DomainError as error:
        _refused(request, form, error)
        return page(request, form=form)
    messages.success(
        request,
        _("Agent %(agent)s now trades for you in %(market)s from its next slot.")
        % {"agent": agent.pk, "market": agent.market.code},
    )
    return redirect(reverse("web:market-agents"))


@require_POST
@role_required(_market_person)
def revoke(request: HttpRequest, agent_id: int) -> HttpResponse:
    """Revoke an agent; its open orders are cancelled (htmx swaps the list in place)."""
    try:
        _agent, cancelled, staying = agent_services.agent_revoke(
            actor=request.user, agent_id=agent_id
        )
    except DomainError as error:
        messages.error(request, f"{error.detail} ({error.code})")
    else:
        text = _("Agent %(agent)s revoked; %(cancelled)s open order(s) cancelled.") % {
            "agent": agent_id,
            "cancelled": len(cancelled),
        }
        if staying:
            text += " " + _(
                "%(staying)s order(s) whose gate has closed stay and clear as placed."
            ) % {"staying": len(staying)}
        messages.success(request, text)
    return redirect(reverse("web:market-agents"))


@role_required(_market_person)
def decisions(request: HttpRequest, agent_id: int) -> HttpResponse:
    """What did this agent decide for its recent slots, and why?"""
    agent = (
        _my_agents(request)
        .select_related("market", "account", "organisation")
        .filter(pk=agent_id)
        .first()
    )
    if agent is None:
        raise Http404
    agent.status_label = AGENT_STATUS.get(agent.status, agent.status)
    shown = list(
        agent_selectors.agent_decision_list(agent=agent).select_related(None)[:DECISIONS_SHOWN]
    )
    for decision in shown:
        decision.action_label = DECISION_ACTION.get(decision.action, decision.action)
        decision.side_label = ORDER_SIDE.get(decision.side, "—") if decision.side else "—"
    return render(request, "web/market/agent_decisions.html", {"agent": agent, "decisions": shown})
