"""The buyer's / trader's dashboard: holdings, incoming transfers, transfers, retirements."""

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.selectors import account_list
from certificates import selectors as cert_selectors
from certificates import services as cert_services
from certificates.models import Bundle, Transfer
from registry.errors import DomainError
from web.forms import RetireForm, TransferForm
from web.roles import request_roles
from web.views import payments
from web.views.common import call_service, energy_scale, role_required


def _trader(roles) -> bool:
    return bool(roles.trader)


def _accounts(request: HttpRequest) -> list:
    org_ids = [o.pk for o in request_roles(request).trader]
    return list(
        account_list(user=request.user).filter(organisation_id__in=org_ids).order_by("number")
    )


def _chart(title: str, rows: list[dict], key: str, kind: str = "bar") -> dict:
    size, unit = energy_scale([r["volume_wh"] for r in rows])
    return {
        "type": kind,
        "unit": _(unit),
        "labels": [str(row[key]) for row in rows],
        "datasets": [{"label": title, "data": [round(r["volume_wh"] / size, 3) for r in rows]}],
    }


@role_required(_trader)
def dashboard(request: HttpRequest, transfer_form=None, retire_form=None) -> HttpResponse:
    """What do I hold, what waits for my acceptance, what did I move and retire?"""
    accounts = _accounts(request)
    ids = [a.pk for a in accounts]
    rows = cert_selectors.account_holdings(account_ids=ids)
    per_account = {a.pk: [] for a in accounts}
    for row in rows:
        per_account[row["account_id"]].append(row)
    holdings = [
        {"account": a, "totals": cert_selectors.holdings_totals(per_account[a.pk])}
        for a in accounts
    ]
    totals = cert_selectors.holdings_totals(rows)
    active = [r for r in rows if r["status"] == Bundle.Status.ACTIVE.label]
    active_totals = cert_selectors.holdings_totals(active)
    transfers = cert_selectors.transfer_list(user=request.user).filter(
        Q(from_account_id__in=ids) | Q(to_account_id__in=ids)
    )
    context = {
        "accounts": accounts,
        "holdings": holdings,
        "totals": totals,
        "account_ids": set(ids),
        "incoming": transfers.filter(
            to_account_id__in=ids, status=Transfer.Status.PENDING
        ).order_by("created_at")[:50],
        "transfers": transfers.order_by("-created_at", "-pk")[:20],
        "bundles": cert_selectors.bundle_list(user=request.user)
        .filter(account_id__in=ids, status=Bundle.Status.ACTIVE)
        .order_by("-pk")[:50],
        "retirements": cert_selectors.retirement_list(user=request.user)
        .filter(account_id__in=ids)
        .select_related("account")
        .order_by("-retired_at")[:20],
        "obligations": payments.payer_obligations(request.user, request_roles(request).trader),
        "technology_chart": _chart(
            _("Active"), active_totals["by_technology"], "technology", "doughnut"
        ),
        "vintage_chart": _chart(_("Active"), active_totals["by_vintage"], "vintage"),
        "transfer_form": transfer_form
        or TransferForm(initial={"bundle": request.GET.get("bundle")}),
        "retire_form": retire_form or RetireForm(initial={"bundle": request.GET.get("bundle")}),
    }
    return render(request, "web/buyer/dashboard.html", context)


@require_POST
@role_required(_trader)
def transfer(request: HttpRequest) -> HttpResponse:
    form = TransferForm(request.POST)
    if not form.is_valid():
        return dashboard(request, transfer_form=form)
    data = form.cleaned_data
    done = call_service(
        request,
        cert_services.certificate_transfer,
        _("Transfer recorded."),
        bundle_id=data["bundle"],
        to_account_number=data["to_account_number"].strip(),
        volume_wh=data["volume_wh"],
        require_acceptance=data["require_acceptance"],
    )
    if not done:
        return dashboard(request, transfer_form=form)
    return redirect("web:holdings")


@require_POST
@role_required(_trader)
def retire(request: HttpRequest) -> HttpResponse:
    form = RetireForm(request.POST)
    if not form.is_valid():
        return dashboard(request, retire_form=form)
    try:
        retirement = cert_services.certificate_retire(
            actor=request.user, **form.service_arguments()
        )
    except DomainError as error:
        form.add_error(None, f"{error.detail} ({error.code})")
        return dashboard(request, retire_form=form)
    messages.success(request, _("Retired. The statement is ready."))
    return redirect("certificates:statement", public_id=retirement.public_id)


DECISIONS = {
    "accept": (cert_services.certificate_transfer_accept, gettext_lazy("Transfer accepted.")),
    "reject": (cert_services.certificate_transfer_reject, gettext_lazy("Transfer rejected.")),
}


@require_POST
@role_required(_trader)
def transfer_decide(request: HttpRequest, transfer_id: int, decision: str) -> HttpResponse:
    """Accept or reject an incoming transfer (htmx swaps the incoming list in place)."""
    if decision not in DECISIONS:
        raise Http404
    service, success = DECISIONS[decision]
    call_service(request, service, str(success), transfer_id=transfer_id)
    return redirect("web:holdings")
