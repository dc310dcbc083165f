"""The issuing body's dashboard: what waits on it, approve actions, statistics."""

import datetime as dt

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from accounts import services as account_services
from accounts.models import Organisation
from accounts.selectors import organisation_list
from assets import selectors as asset_selectors
from assets import services as asset_services
from assets.errors import OnboardingRejected
from assets.models import Device, ReadingBatch
from certificates import selectors as cert_selectors
from certificates import services as cert_services
from certificates.models import Bundle, IssuanceRequest
from registry.errors import DomainError
from web.forms import DeviceWithdrawForm, OnboardingForm, WithdrawForm
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


DEVICE_WITHDRAW_PREFIX = "dw"
BUNDLE_STATUS = {
    Bundle.Status.ACTIVE: pgettext_lazy("bundle status", "active"),
    Bundle.Status.RESERVED: pgettext_lazy("bundle status", "reserved"),
    Bundle.Status.RETIRED: pgettext_lazy("bundle status", "retired"),
    Bundle.Status.EXPIRED: pgettext_lazy("bundle status", "expired"),
    Bundle.Status.WITHDRAWN: pgettext_lazy("bundle status", "withdrawn"),
    Bundle.Status.EXPORTED: pgettext_lazy("bundle status", "exported"),
    Bundle.Status.STORED: pgettext_lazy("bundle status", "stored"),
}


@role_required(_issuing_body)
def dashboard(
    request: HttpRequest,
    withdraw_form: WithdrawForm | None = None,
    device_form: DeviceWithdrawForm | None = None,
    device_plan: cert_services.DeviceWithdrawal | None = None,
) -> HttpResponse:
    """What waits on the issuing body: organisations, devices, issuance, held readings;
    withdrawals of certificates issued in error (by bundle, or by device and period)."""
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
        "device_form": device_form or DeviceWithdrawForm(prefix=DEVICE_WITHDRAW_PREFIX),
        "device_plan": device_plan,
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
    # From the registry page (organisations and devices already approved).
    ("organisation", "suspend"): (
        account_services.organisation_suspend,
        "organisation_id",
        True,
        gettext_lazy("Organisation suspended: its members can no longer act."),
    ),
    ("organisation", "reinstate"): (
        account_services.organisation_reinstate,
        "organisation_id",
        True,
        gettext_lazy("Organisation reinstated."),
    ),
    ("device", "suspend"): (
        asset_services.device_suspend,
        "device_id",
        True,
        gettext_lazy("Device suspended: no readings are taken and nothing is issued for it."),
    ),
    ("device", "reinstate"): (
        asset_services.device_reinstate,
        "device_id",
        True,
        gettext_lazy("Device reinstated."),
    ),
}
REGISTRY_DECISIONS = {"suspend", "reinstate"}


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
    if decision in REGISTRY_DECISIONS:
        return redirect("web:issuing-registry")
    return redirect("web:issuing")


LISTED = 50


@role_required(_issuing_body)
def registry(request: HttpRequest) -> HttpResponse:
    """Approved and suspended organisations and devices (the first 50 of each, by name,
    `?q=` narrows by name), each with Suspend or Reinstate and a reason."""
    user = request.user
    query = request.GET.get("q", "").strip()[:100]
    organisations = organisation_list(user=user).filter(
        status__in=[Organisation.Status.APPROVED, Organisation.Status.SUSPENDED]
    )
    devices = (
        asset_selectors.device_list(user=user)
        .filter(status__in=[Device.Status.APPROVED, Device.Status.ACTIVE, Device.Status.SUSPENDED])
        .select_related("organisation")
    )
    if query:
        organisations = organisations.filter(legal_name__icontains=query)
        devices = devices.filter(name__icontains=query)
    context = {
        "query": query,
        "organisations": list(organisations.order_by("legal_name", "pk")[:LISTED]),
        "devices": list(devices.order_by("name", "pk")[:LISTED]),
        "listed": LISTED,
        "suspended_organisation": Organisation.Status.SUSPENDED,
        "suspended_device": Device.Status.SUSPENDED,
    }
    return render(request, "web/issuing/registry.html", context)


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


@require_POST
@role_required(_issuing_body)
def withdraw_device(request: HttpRequest) -> HttpResponse:
    """Withdraw a device's certificates for a period (certificate_withdraw_for_device):
    **Check** is a dry run that lists what would be withdrawn, flagged and skipped;
    **Withdraw** (after a confirmation) does it."""
    form = DeviceWithdrawForm(request.POST, prefix=DEVICE_WITHDRAW_PREFIX)
    if not form.is_valid():
        return dashboard(request, device_form=form)
    dry_run = request.POST.get("action") != "withdraw"
    try:
        result = cert_services.certificate_withdraw_for_device(
            actor=request.user, dry_run=dry_run, **form.service_arguments()
        )
    except DomainError as error:
        message = f"{error.detail} ({error.code})"
        if "covering_period_start" in error.extra:
            message += " " + _("A period that covers them: %(start)s to %(end)s (UTC).") % {
                "start": error.extra["covering_period_start"],
                "end": error.extra["covering_period_end"],
            }
        form.add_error(None, message)
        return dashboard(request, device_form=form)
    if dry_run:
        messages.info(
            request,
            _(
                "Dry run: %(withdrawn)s bundles would be withdrawn and %(flagged)s flagged, "
                "%(volume)s in all; nothing was written."
            )
            % {
                "withdrawn": len(result.withdrawn),
                "flagged": len(result.flagged),
                "volume": energy(result.volume_wh),
            },
        )
        for bundle in result.withdrawn + result.flagged + result.skipped:
            bundle.status_label = BUNDLE_STATUS.get(bundle.status, bundle.get_status_display())
        return dashboard(request, device_form=form, device_plan=result)
    messages.success(
        request,
        _(
            "Withdrawal %(id)s recorded for %(device)s: %(withdrawn)s bundles withdrawn, "
            "%(flagged)s retired or exported ones flagged, %(volume)s in all."
        )
        % {
            "id": result.withdrawal.pk,
            "device": result.device_name,
            "withdrawn": len(result.withdrawn),
            "flagged": len(result.flagged),
            "volume": energy(result.volume_wh),
        },
    )
    return redirect("web:issuing")


@role_required(_issuing_body)
def onboarding(request: HttpRequest) -> HttpResponse:
    """Devices and meters from a CSV file (assets' devices_onboard): a dry run lists every
    row's outcome; a real run registers all rows or, if any is refused, none."""
    form = OnboardingForm(request.POST or None, request.FILES or None)
    context = {"form": form, "columns": ONBOARDING_COLUMNS, "outcome": None, "refused": []}
    if request.method == "POST" and form.is_valid():
        dry_run = form.cleaned_data["dry_run"]
        try:
            outcome = asset_services.devices_onboard(
                actor=request.user, csv_text=form.cleaned_data["file"], dry_run=dry_run
            )
        except OnboardingRejected as error:
            context["refused"] = error.extra["rows"]
            messages.error(request, _("Nothing was registered: fix the rows below and try again."))
        except DomainError as error:
            form.add_error("file", f"{error.detail} ({error.code})")
        else:
            context["outcome"] = outcome
            if dry_run:
                messages.info(
                    request,
                    _("Dry run: %(rows)s rows checked, %(refused)s refused; nothing was written.")
                    % {"rows": len(outcome.rows), "refused": len(outcome.refused)},
                )
            else:
                messages.success(
                    request,
                    _("%(rows)s devices registered as drafts, each with its meter.")
                    % {"rows": len(outcome.rows)},
                )
    return render(request, "web/issuing/onboarding.html", context)


ONBOARDING_COLUMNS = [
    ("organisation_id", gettext_lazy("The producer organisation's registry id.")),
    ("account_number", gettext_lazy("Its open account that receives the certificates.")),
    ("name", gettext_lazy("Device name.")),
    ("grid_area", gettext_lazy("Grid area code (EIC), e.g. 10Y1001A1001A82H.")),
    ("technology_code", gettext_lazy("EECS technology code, e.g. T010101.")),
    ("energy_source_code", gettext_lazy("EECS energy source code, e.g. F01040100.")),
    ("capacity_kw", gettext_lazy("Installed capacity in kW, e.g. 250.5.")),
    ("commissioning_date", gettext_lazy("YYYY-MM-DD.")),
    ("latitude", gettext_lazy("Degrees, e.g. 52.520008.")),
    ("longitude", gettext_lazy("Degrees, e.g. 13.404954.")),
    ("meter_serial", gettext_lazy("The meter's serial number, unique in the registry.")),
    ("issuance_policy", gettext_lazy("Optional: manual (default) or automatic_hourly.")),
    ("meter_kind", gettext_lazy("Optional: generation (default), consumption or storage.")),
    ("meter_public_key", gettext_lazy("Optional: the meter's Ed25519 public key (hex or base64).")),
]
