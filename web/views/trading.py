"""The market page of a producer's or trader's person: markets, a live book, order entry,
their open orders (cancel) and recent trades. Writes go through market.services."""

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.selectors import account_list
from certificates import selectors as cert_selectors
from certificates.models import Bundle
from market import selectors as market_selectors
from market import services as market_services
from market.models import Order
from registry.errors import DomainError
from web.forms import MarketOrderForm
from web.roles import request_roles
from web.views.common import call_service, role_required


def _market_person(roles) -> bool:
    return bool(roles.producer or roles.trader)


def _organisation_ids(request: HttpRequest) -> list[int]:
    roles = request_roles(request)
    return sorted({o.pk for o in roles.producer + roles.trader})


def _order_form(request: HttpRequest, data=None, market_id=None) -> MarketOrderForm:
    org_ids = _organisation_ids(request)
    accounts = list(
        account_list(user=request.user)
        .filter(
            organisation_id__in=org_ids,
            kind=Account.Kind.TRADING,
            status=Account.Status.OPEN,
        )
        .order_by("number")
    )
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


@role_required(_market_person)
def page(request: HttpRequest, order_form=None) -> HttpResponse:
    """Which markets are there, what is on the book, what have I got open and traded?"""
    markets = list(market_selectors.market_list().order_by("code"))
    chosen = None
    wanted = request.POST.get("market") or request.GET.get("market")
    if wanted:
        chosen = next((m for m in markets if str(m.pk) == str(wanted)), None)
    chosen = chosen or (markets[0] if markets else None)
    book = market_selectors.market_book(market=chosen) if chosen else None
    org_ids = _organisation_ids(request)
    orders = (
        market_selectors.order_list(user=request.user)
        .filter(organisation_id__in=org_ids, status=Order.Status.OPEN)
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
        "order_form": order_form or _order_form(request, market_id=chosen and chosen.pk),
    }
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
