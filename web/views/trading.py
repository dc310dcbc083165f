"""The market page of a producer's or trader's person: markets, a live book, order entry,
their open orders (cancel) and recent trades; for an energy market, the next delivery
slots, slot orders (place, cancel before the gate) and the latest clearings with a chart.
Writes go through market.services, as the API's do."""

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.selectors import account_list
from certificates import selectors as cert_selectors
from certificates.models import Bundle
from market import selectors as market_selectors
from market import services as market_services
from market.models import Market, Order
from market.slots import is_slot_market, slot_gate_closure
from registry.errors import DomainError
from web.forms import MarketOrderForm, SlotOrderForm
from web.roles import request_roles
from web.views.common import call_service, role_required


def _market_person(roles) -> bool:
    return bool(roles.producer or roles.trader)


def _organisation_ids(request: HttpRequest) -> list[int]:
    roles = request_roles(request)
    return sorted({o.pk for o in roles.producer + roles.trader})


def _trading_accounts(request: HttpRequest) -> list[Account]:
    return list(
        account_list(user=request.user)
        .filter(
            organisation_id__in=_organisation_ids(request),
            kind=Account.Kind.TRADING,
            status=Account.Status.OPEN,
        )
        .order_by("number")
    )


def _order_form(request: HttpRequest, data=None, market_id=None) -> MarketOrderForm:
    org_ids = _organisation_ids(request)
    accounts = _trading_accounts(request)
    bundles = list(
        cert_selectors.bundle_list(user=request.user)
        .filter(account__organisation_id__in=org_ids, status=Bundle.Status.ACTIVE)
        .order_by("-pk")[:50]
    )
    initial = {"market": market_id, "side": "buy"}
    if accounts:
        initial["account"] = accounts[0].pk
    return MarketOrderForm(data, initial=initial, accounts=accounts, bundles=bundles)


def _market_url(market_id) -> str:
    """The page, back on the market the person was looking at (a number, or none)."""
    if str(market_id or "").isdigit():
        return f"{reverse('web:market')}?market={market_id}"
    return reverse("web:market")


SLOTS_SHOWN = 8
CLEARINGS_SHOWN = 24


@dataclass(frozen=True)
class SlotChoice:
    """A delivery slot still open for orders: its start (the form's value) and a label
    with its end and gate closure in the reader's locale."""

    value: str
    label: str
    start: dt.datetime
    gate_closure: dt.datetime


def _when(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def next_slots(market: Market, *, now: dt.datetime | None = None) -> list[SlotChoice]:
    """The next SLOTS_SHOWN slots whose gate is still open (market.slots' alignment)."""
    now = now or timezone.now()
    length = market.slot_minutes * 60
    # the first slot start s with gate closure s - gate_closure_minutes after now
    earliest = int((now + dt.timedelta(minutes=market.gate_closure_minutes)).timestamp())
    first = (earliest // length + 1) * length
    choices = []
    for i in range(SLOTS_SHOWN):
        start = dt.datetime.fromtimestamp(first + i * length, tz=dt.UTC)
        end = start + dt.timedelta(seconds=length)
        closes = slot_gate_closure(market, start)
        label = _("%(start)s to %(end)s (gate closes %(gate)s)") % {
            "start": _when(start),
            "end": formats.time_format(timezone.localtime(end), "TIME_FORMAT"),
            "gate": formats.time_format(timezone.localtime(closes), "TIME_FORMAT"),
        }
        choices.append(SlotChoice(start.isoformat(), label, start, closes))
    return choices


def _slot_form(request: HttpRequest, market: Market, data=None) -> SlotOrderForm:
    accounts = _trading_accounts(request)
    initial = {"market": market.pk, "side": "buy"}
    if accounts:
        initial["account"] = accounts[0].pk
    return SlotOrderForm(data, initial=initial, accounts=accounts, slots=next_slots(market))


def clearing_chart(market: Market, clearings: list) -> dict:
    """Cleared price per slot, oldest first (a slot where nothing crossed has no price)."""
    return {
        "type": "line",
        "unit": "",
        "labels": [_when(c.slot_start) for c in clearings],
        "datasets": [
            {
                "label": _("Clearing price (minor units of %(currency)s per MWh)")
                % {"currency": market.currency},
                "data": [c.price for c in clearings],
            }
        ],
    }


ORDER_STATUS = {
    Order.Status.OPEN: pgettext_lazy("order status", "open"),
    Order.Status.FILLED: pgettext_lazy("order status", "filled"),
    Order.Status.CANCELLED: pgettext_lazy("order status", "cancelled"),
    Order.Status.CLEARED: pgettext_lazy("order status", "cleared"),
    Order.Status.PARTIALLY_CLEARED: pgettext_lazy("order status", "partially cleared"),
    Order.Status.UNFILLED: pgettext_lazy("order status", "unfilled"),
}
ORDER_SIDE = {
    Order.Side.BUY: gettext_lazy("Buy (bid)"),
    Order.Side.SELL: gettext_lazy("Sell (offer)"),
}


def _slot_context(request: HttpRequest, market: Market, org_ids: list[int], slot_form) -> dict:
    """What an energy market adds to the page: slots, my slot orders, the latest clearings."""
    now = timezone.now()
    slot_orders = list(
        market_selectors.order_list(user=request.user)
        .filter(market=market, organisation_id__in=org_ids, slot_start__isnull=False)
        .order_by("-slot_start", "-pk")[:50]
    )
    for order in slot_orders:
        order.gate_closure = slot_gate_closure(market, order.slot_start)
        order.cancellable = order.status == Order.Status.OPEN and now < order.gate_closure
        order.status_label = ORDER_STATUS.get(order.status, order.status)
        order.side_label = ORDER_SIDE.get(order.side, order.side)
    newest = list(
        market_selectors.slot_clearing_list()
        .filter(market=market)
        .prefetch_related(None)  # the orders of each clearing are not shown here
        .order_by("-slot_start")[:CLEARINGS_SHOWN]
    )
    return {
        "slot_form": slot_form or _slot_form(request, market),
        "slot_orders": slot_orders,
        "clearings": newest,
        "clearing_chart": clearing_chart(market, newest[::-1]),
    }


@role_required(_market_person)
def page(request: HttpRequest, order_form=None, slot_form=None) -> HttpResponse:
    """Which markets are there, what is on the book, what have I got open and traded?"""
    markets = list(market_selectors.market_list().order_by("code"))
    chosen = None
    wanted = request.POST.get("market") or request.GET.get("market")
    if wanted:
        chosen = next((m for m in markets if str(m.pk) == str(wanted)), None)
    chosen = chosen or (markets[0] if markets else None)
    book = market_selectors.market_book(market=chosen) if chosen else None
    org_ids = _organisation_ids(request)
    # Slot orders are listed with their market (the energy section), not here.
    orders = (
        market_selectors.order_list(user=request.user)
        .filter(organisation_id__in=org_ids, status=Order.Status.OPEN, slot_start__isnull=True)
        .select_related("market")
        .order_by("-pk")[:50]
    )
    trades = list(
        market_selectors.trade_list(user=request.user)
        .filter(
            Q(buy_order__organisation_id__in=org_ids) | Q(sell_order__organisation_id__in=org_ids)
        )
        .select_related("market")
        .order_by("-pk")[:20]
    )
    for trade in trades:
        trade.mine = "buy" if trade.buy_order.organisation_id in org_ids else "sell"
    context = {
        "markets": markets,
        "market": chosen,
        "book": book,
        "orders": orders,
        "trades": trades,
        "slot_market": bool(chosen and is_slot_market(chosen)),
    }
    if context["slot_market"]:
        context |= _slot_context(request, chosen, org_ids, slot_form)
    else:
        context["order_form"] = order_form or _order_form(request, market_id=chosen and chosen.pk)
    return render(request, "web/market/page.html", context)


@require_POST
@role_required(_market_person)
def order_place(request: HttpRequest) -> HttpResponse:
    """Place a bid or an offer; the fills, or the service's refusal code, as a message."""
    form = _order_form(request, data=request.POST)
    if not form.is_valid():
        return page(request, order_form=form)
    arguments = form.service_arguments()
    try:
        placement = market_services.order_place(actor=request.user, **arguments)
    except DomainError as error:
        messages.error(request, f"{error.detail} ({error.code})")
        return page(request, order_form=form)
    order = placement.order
    filled = sum(t.quantity_wh for t in placement.trades)
    if placement.trades:
        messages.success(
            request,
            _("Order %(order)s placed: %(trades)s trade(s), %(wh)s Wh filled.")
            % {"order": order.pk, "trades": len(placement.trades), "wh": filled},
        )
    else:
        messages.success(
            request, _("Order %(order)s placed; it rests on the book.") % {"order": order.pk}
        )
    return redirect(_market_url(arguments["market_id"]))


@require_POST
@role_required(_market_person)
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    """Cancel one of my open orders (htmx swaps the open orders in place)."""
    call_service(
        request,
        market_services.order_cancel,
        _("Order %(order)s cancelled.") % {"order": order_id},
        order_id=order_id,
    )
    return redirect(_market_url(request.POST.get("market")))


@require_POST
@role_required(_market_person)
def slot_order_place(request: HttpRequest) -> HttpResponse:
    """Place a bid or an offer for a delivery slot; it rests until the slot clears."""
    wanted = request.POST.get("market", "")
    market = market_selectors.market_list().filter(pk=wanted).first() if wanted.isdigit() else None
    if market is None or not is_slot_market(market):
        messages.error(request, _("Choose an energy market."))
        return redirect(_market_url(None))
    form = _slot_form(request, market, data=request.POST)
    if not form.is_valid():
        return page(request, slot_form=form)
    try:
        placement = market_services.order_place(actor=request.user, **form.service_arguments())
    except DomainError as error:
        messages.error(request, f"{error.detail} ({error.code})")
        return page(request, slot_form=form)
    messages.success(
        request,
        _("Slot order %(order)s placed for %(slot)s; it rests until the slot clears.")
        % {"order": placement.order.pk, "slot": _when(placement.order.slot_start)},
    )
    return redirect(_market_url(market.pk))
