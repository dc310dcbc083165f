"""The issuing body's dashboard: what waits on it, approve actions, statistics."""

import datetime as dt

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import services as account_services
from accounts.models import Organisation
from accounts.selectors import organisation_list
from assets import selectors as asset_selectors
from assets import services as asset_services
from assets.models import Device, ReadingBatch
from certificates import selectors as cert_selectors
from certificates import services as cert_services
from certificates.models import IssuanceRequest
from registry.errors import DomainError
from web.forms import WithdrawForm
from web.templatetags.web_format import energy
from web.views.common import call_service, energy_scale, month_start, role_required


def _issuing_body(roles) -> bool:
    return bool(roles.issuing_body)


def statistics_chart(*, now: dt.datetime | None = None) -> dict:
    """Issued and retired energy per month over the last twelve months."""
    first = month_start(now)
    for _month in range(11):
        first = month_start(first - dt.timedelta(days=1))
    monthly = cert_selectors.certificate_monthly(since=first)
    months = sorted({row["month"] for rows in monthly.values() for row in rows})
    series = {name: {row["month"]: row["wh"] for row in rows} for name, rows in monthly.items()}
    size, unit = energy_scale([wh for values in series.values() for wh in values.values()])
    return {
        "type": "bar",
        "stacked": False,
        "unit": _(unit),
        "labels": [formats.date_format(m, "YEAR_MONTH_FORMAT") for m in months],
        "datasets": [
            {
                "label": str(label),
                "data": [round(series[name].get(m, 0) / size, 3) for m in months],
            }
            for name, label in (("issued", _("Issued")), ("retired", _("Retired")))
        ],
    }


@role_required(_issuing_body)
def dashboard(request: HttpRequest, withdraw_form: WithdrawForm | None = None) -> HttpResponse:
    """What waits on the issuing body: organisations, devices, issuance, held readings;
    withdrawals of certificates issued in error."""
    user = request.user
    context = {
        "organisations": organisation_list(user=user)
        .filter(status=Organisation.Status.PENDING)
        .order_by("created_at")[:50],
        "devices": asset_selectors.device_list(user=user)
        .filter(status=Device.Status.SUBMITTED)
        .order_by("status_changed_at", "pk")[:50],
        "requests": cert_selectors.issuance_request_list(user=user)
        .filter(status=IssuanceRequest.Status.PENDING)
        .order_by("created_at")[:50],
        "batches": asset_selectors.reading_batch_list(user=user)
        .filter(status=ReadingBatch.Status.HELD)
        .select_related("organisation", "device", "meter")
        .order_by("created_at")[:50],
        "withdrawals": cert_selectors.withdrawal_list(user=user)
        .annotate(bundle_count=Count("items"))
        .order_by("-withdrawn_at", "-pk")[:10],
        "withdraw_form": withdraw_form or WithdrawForm(),
        "figures": cert_selectors.certificate_figures(since=month_start()),
        "chart": statistics_chart(),
        "now": timezone.now(),
    }
    return render(request, "web/issuing/dashboard.html", context)


# (kind, decision) -> (service, id argument, whether the service takes the typed reason,
# success message). Rejecting a pending organisation suspends it (the issuing body may
# reinstate it later in the admin or the API): accounts has no separate refusal.
ACTIONS = {
    ("organisation", "approve"): (
        account_services.organisation_approve,
        "organisation_id",
        False,
        gettext_lazy("Organisation approved."),
    ),
    ("organisation", "reject"): (
        account_services.organisation_suspend,
        "organisation_id",
        True,
        gettext_lazy("Organisation rejected: it is suspended."),
    ),
    ("device", "approve"): (
        asset_services.device_approve,
        "device_id",
        False,
        gettext_lazy("Device approved."),
    ),
    ("device", "reject"): (
        asset_services.device_reject,
        "device_id",
        True,
        gettext_lazy("Device rejected: the producer may correct and resubmit it."),
    ),
    ("issuance", "approve"): (
        cert_services.issuance_request_approve,
        "request_id",
        False,
        gettext_lazy("Issuance approved: the certificates are issued."),
    ),
    ("issuance", "reject"): (
        cert_services.issuance_request_reject,
        "request_id",
        True,
        gettext_lazy("Issuance request rejected."),
    ),
    ("batch", "accept"): (
        asset_services.reading_batch_accept,
        "batch_id",
        False,
        gettext_lazy("Reading batch accepted."),
    ),
    ("batch", "reject"): (
        asset_services.reading_batch_reject,
        "batch_id",
        True,
        gettext_lazy("Reading batch rejected: its readings are discarded."),
    ),
}


@require_POST
@role_required(_issuing_body)
def decide(request: HttpRequest, kind: str, pk: int, decision: str) -> HttpResponse:
    """One approve or reject action, through the owning app's service (htmx swaps the
    queues). A rejection passes the typed reason; the service refuses an empty one."""
    action = ACTIONS.get((kind, decision))
    if action is None:
        raise Http404
    service, argument, takes_reason, success = action
    arguments = {argument: pk}
    if takes_reason:
        arguments["reason"] = request.POST.get("reason", "").strip()
    call_service(request, service, str(success), **arguments)
    return redirect("web:issuing")


@require_POST
@role_required(_issuing_body)
def withdraw(request: HttpRequest) -> HttpResponse:
    """Withdraw certificates issued in error (certificate_withdraw), with the reason."""
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return dashboard(request, withdraw_form=form)
    try:
        withdrawal = cert_services.certificate_withdraw(
            actor=request.user,
            bundle_ids=form.cleaned_data["bundles"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as error:
        form.add_error(None, f"{error.detail} ({error.code})")
        return dashboard(request, withdraw_form=form)
    messages.success(
        request,
        _("Withdrawal %(id)s recorded: %(volume)s withdrawn.")
        % {"id": withdrawal.pk, "volume": energy(withdrawal.volume_wh)},
    )
    return redirect("web:issuing")
