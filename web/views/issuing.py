"""The issuing body's dashboard: what waits on it, approve actions, statistics."""

import datetime as dt

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
def dashboard(request: HttpRequest) -> HttpResponse:
    """What waits on the issuing body: organisations, devices, issuance, held readings."""
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
        "figures": cert_selectors.certificate_figures(since=month_start()),
        "chart": statistics_chart(),
        "now": timezone.now(),
    }
    return render(request, "web/issuing/dashboard.html", context)


ACTIONS = {
    ("organisation", "approve"): (
        account_services.organisation_approve,
        "organisation_id",
        gettext_lazy("Organisation approved."),
    ),
    ("device", "approve"): (
        asset_services.device_approve,
        "device_id",
        gettext_lazy("Device approved."),
    ),
    ("issuance", "approve"): (
        cert_services.issuance_request_approve,
        "request_id",
        gettext_lazy("Issuance approved: the certificates are issued."),
    ),
    ("batch", "accept"): (
        asset_services.reading_batch_accept,
        "batch_id",
        gettext_lazy("Reading batch accepted."),
    ),
}


@require_POST
@role_required(_issuing_body)
def decide(request: HttpRequest, kind: str, pk: int, decision: str) -> HttpResponse:
    """One approve action, through the owning app's service (htmx swaps the queues)."""
    action = ACTIONS.get((kind, decision))
    if action is None:
        raise Http404
    service, argument, success = action
    call_service(request, service, str(success), **{argument: pk})
    return redirect("web:issuing")
