"""The producer's dashboard: devices and meters, generation, held readings, issuance, owners."""

import datetime as dt

from django.contrib import messages
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.selectors import account_list
from assets import selectors as asset_selectors
from assets import services as asset_services
from assets.models import DeviceOwner, Meter, MeterKey, ReadingBatch
from certificates.models import IssuanceRequest
from certificates.selectors import issuance_request_list
from registry.errors import DomainError
from web.forms import DeviceRegisterForm
from web.roles import request_roles
from web.views.common import role_required

# How far back each chart step looks, and how a bucket is labelled in the reader's locale.
WINDOWS = {
    "hour": dt.timedelta(days=7),
    "day": dt.timedelta(days=31),
    "month": dt.timedelta(days=730),
}
LABELS = {"hour": "SHORT_DATETIME_FORMAT", "day": "SHORT_DATE_FORMAT", "month": "YEAR_MONTH_FORMAT"}
FIELD_NAMES = {"capacity_w": "capacity_kw", "grid_area_id": "grid_area", "owners": "owner_account"}


def _producer(roles) -> bool:
    return bool(roles.producer)


def _my_devices(request: HttpRequest):
    """Devices the person's producer organisations register or co-own, with meters and keys."""
    org_ids = [o.pk for o in request_roles(request).producer]
    now = timezone.now()
    current_keys = MeterKey.objects.filter(valid_from__lte=now).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=now)
    )
    return (
        asset_selectors.device_list(user=request.user)
        .filter(Q(organisation_id__in=org_ids) | Q(owners__organisation_id__in=org_ids))
        .distinct()
        .prefetch_related(
            Prefetch(
                "owners",
                queryset=DeviceOwner.objects.select_related("organisation", "account"),
            ),
            Prefetch(
                "meters",
                queryset=Meter.objects.order_by("serial").prefetch_related(
                    Prefetch(
                        "keys",
                        queryset=current_keys.order_by("-valid_from"),
                        to_attr="current_keys",
                    )
                ),
            ),
        )
        .order_by("name")
    )


def _buckets(step: str, start: dt.datetime, end: dt.datetime, rows: list[dict]) -> list:
    if step == "month":
        return sorted({row["bucket"] for row in rows})
    size = dt.timedelta(hours=1) if step == "hour" else dt.timedelta(days=1)
    first = start.replace(minute=0, second=0, microsecond=0)
    if step == "day":
        first = first.replace(hour=0)
    buckets, moment = [], first
    while moment < end:
        buckets.append(moment)
        moment += size
    return buckets


def generation_chart(*, devices: list, step: str, now: dt.datetime | None = None) -> dict:
    """Chart.js data: accepted generation (kWh) per device and bucket, one grouped query."""
    end = now or timezone.now()
    start = end - WINDOWS[step]
    rows = asset_selectors.device_generation(
        device_ids=[d.pk for d in devices], step=step, start=start, end=end
    )
    buckets = _buckets(step, start, end, rows)
    index = {bucket: i for i, bucket in enumerate(buckets)}
    series = {d.pk: [0.0] * len(buckets) for d in devices}
    for row in rows:
        if row["bucket"] in index:
            series[row["device_id"]][index[row["bucket"]]] += row["wh"] / 1000
    return {
        "type": "bar",
        "unit": _("kWh"),
        "labels": [formats.date_format(b, LABELS[step]) for b in buckets],
        "datasets": [
            {"label": d.name, "data": [round(v, 3) for v in series[d.pk]]}
            for d in devices
            if any(series[d.pk])
        ],
        "total_kwh": round(sum(sum(v) for v in series.values()), 3),
    }


def _step(request: HttpRequest) -> str:
    step = request.GET.get("step", "day")
    return step if step in WINDOWS else "day"


@role_required(_producer)
def dashboard(request: HttpRequest) -> HttpResponse:
    """What does my fleet produce, and what waits: held readings, pending issuance?"""
    roles = request_roles(request)
    org_ids = [o.pk for o in roles.producer]
    devices = list(_my_devices(request))
    step = _step(request)
    held = (
        asset_selectors.reading_batch_list(user=request.user)
        .filter(status=ReadingBatch.Status.HELD, organisation_id__in=org_ids)
        .select_related("device", "meter")
        .order_by("-created_at")[:50]
    )
    requests = (
        issuance_request_list(user=request.user)
        .filter(organisation_id__in=org_ids)
        .select_related("device")
        .order_by("-created_at")[:20]
    )
    context = {
        "devices": devices,
        "now": timezone.now(),
        "step": step,
        "steps": [("hour", _("Hourly")), ("day", _("Daily")), ("month", _("Monthly"))],
        "chart": generation_chart(devices=devices, step=step),
        "held": held,
        "requests": requests,
        "pending_requests": sum(1 for r in requests if r.status == IssuanceRequest.Status.PENDING),
        "can_register": any(roles.can_write(o.pk) for o in roles.producer),
    }
    return render(request, "web/producer/dashboard.html", context)


@role_required(_producer)
def generation(request: HttpRequest) -> HttpResponse:
    """The generation chart alone (htmx swaps it when the step changes)."""
    step = _step(request)
    devices = list(_my_devices(request))
    context = {"chart": generation_chart(devices=devices, step=step), "step": step}
    return render(request, "web/producer/generation.html", context)


def _apply_errors(form, error: DomainError) -> None:
    fields = error.extra.get("fields") or {}
    placed = False
    for name, problems in fields.items():
        target = FIELD_NAMES.get(name, name)
        if target in form.fields and isinstance(problems, list):
            for problem in problems:
                form.add_error(target, str(problem))
            placed = True
    if not placed:
        form.add_error(None, f"{error.detail} ({error.code})")


@role_required(_producer)
def device_register(request: HttpRequest) -> HttpResponse:
    """Register a device (draft) through assets' device_register service."""
    roles = request_roles(request)
    organisations = [o for o in roles.producer if roles.can_write(o.pk)]
    accounts = account_list(user=request.user).filter(
        organisation__in=organisations, status="open", kind="trading"
    )
    form = DeviceRegisterForm(
        request.POST or None,
        organisations=organisations,
        accounts=list(accounts),
        grid_areas=list(asset_selectors.grid_area_list().order_by("code")),
    )
    if request.method == "POST" and form.is_valid():
        try:
            device = asset_services.device_register(actor=request.user, **form.service_arguments())
        except DomainError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "Device “%(name)s” registered as a draft. "
                    "Submit it for approval when its meters are in."
                )
                % {"name": device.name},
            )
            return redirect("web:producer")
    return render(request, "web/producer/register.html", {"form": form})
