"""The front door (what the registry is, live figures) and the public device directory."""

import contextlib

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from assets.api.serializers import DeviceOutputSerializer
from assets.selectors import device_directory
from certificates.selectors import certificate_figures
from federation import selectors as federation_selectors
from federation.errors import AnchoredCheckpointNotFound
from ledger import selectors as ledger_selectors
from ledger.errors import CheckpointNotFound
from web.roles import request_roles
from web.views.common import month_start


def _ledger_figures() -> dict:
    figures = {"size": ledger_selectors.ledger_tree_size(), "checkpoint": None, "anchor": None}
    with contextlib.suppress(CheckpointNotFound):
        figures["checkpoint"] = ledger_selectors.checkpoint_latest()
    try:
        anchor = federation_selectors.anchor_latest()
        figures["anchor"] = {"size": anchor.size, "cosignatures": len(anchor.cosignatures.all())}
    except AnchoredCheckpointNotFound:
        pass
    return figures


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What this registry is, with live figures anyone may see."""
    since = month_start()
    context = {
        "since": since,
        "figures": certificate_figures(since=since),
        "ledger": _ledger_figures(),
        "peers": federation_selectors.peer_status_list(),
        "quorum": settings.ANCHOR_QUORUM,
        "registry_name": settings.REGISTRY_NAME,
        "origin": settings.REGISTRY_ORIGIN,
    }
    return render(request, "web/home.html", context)


@require_GET
def devices(request: HttpRequest) -> HttpResponse:
    """Approved devices, as the public API shows them (locations rounded to ~1 km)."""
    page = Paginator(device_directory(), 100).get_page(request.GET.get("page"))
    rows = DeviceOutputSerializer(page.object_list, many=True, context={"full_access": set()}).data
    chart = {
        "type": "scatter",
        "labels": [row["name"] for row in rows],
        "datasets": [
            {
                "label": str(_("Devices (longitude, latitude)")),
                "data": [{"x": float(r["longitude"]), "y": float(r["latitude"])} for r in rows],
            }
        ],
    }
    return render(request, "web/devices.html", {"page": page, "rows": rows, "chart": chart})


def dashboard(request: HttpRequest) -> HttpResponse:
    """After login: the first dashboard the person's roles open, or the front door."""
    if not request.user.is_authenticated:
        return redirect("web:login")
    roles = request_roles(request)
    for allowed, name in (
        (roles.issuing_body, "web:issuing"),
        # A household's organisation is flagged producer (its meters use the readings
        # pipeline), so the household page comes before the producer's.
        (roles.household, "web:household"),
        (roles.producer, "web:producer"),
        (roles.trader, "web:holdings"),
        (roles.auditor, "web:audit"),
    ):
        if allowed:
            return redirect(name)
    return render(request, "web/no_role.html", {"roles": roles})
