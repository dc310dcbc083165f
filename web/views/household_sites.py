"""The household registers a site (grid connection point) and adds its meters to it.

Both forms call the consumers services the API calls (`site_register`, `site_meter_link`):
a refusal comes back as a message with the service's code and on the form, nothing written.
The meters offered are the household's registered meters that serve no site yet (they are
registered like any producer's meters, with their keys).
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from assets.models import Meter
from assets.selectors import grid_area_list
from consumers import services as consumer_services
from consumers.models import Household, Site
from registry.errors import DomainError
from web.forms import SiteMeterLinkForm, SiteRegisterForm
from web.roles import request_roles
from web.views.common import form_refused, role_required
from web.views.household import ROLES, _household, _sites, _the_household

FORM_FIELDS = {"grid_area_id": "grid_area", "site_id": "site", "meter_id": "meter"}


def _register_form(data=None) -> SiteRegisterForm:
    return SiteRegisterForm(data, grid_areas=list(grid_area_list().order_by("code")))


def _link_form(household: Household, sites: list[Site], data=None) -> SiteMeterLinkForm:
    meters = (
        Meter.objects.filter(
            device__organisation_id=household.organisation_id,
            status=Meter.Status.ACTIVE,
            site_link__isnull=True,
        )
        .select_related("device")
        .order_by("serial", "pk")
    )
    return SiteMeterLinkForm(
        data,
        sites=[s for s in sites if s.status != Site.Status.REJECTED],
        meters=list(meters),
        roles=[(k, str(v)) for k, v in ROLES.items()],
    )


def _refused(request: HttpRequest, form, error: DomainError) -> None:
    form_refused(request, form, error, FORM_FIELDS)


def _page(request: HttpRequest, household: Household, **forms) -> HttpResponse:
    sites = _sites(household)
    context = {
        "household": household,
        "sites": sites,
        "register_form": forms.get("register_form") or _register_form(),
        "link_form": forms.get("link_form") or _link_form(household, sites),
        "can_write": request_roles(request).can_write(household.organisation_id),
    }
    return render(request, "web/household/sites.html", context)


@role_required(_household)
def sites(request: HttpRequest) -> HttpResponse:
    """My sites: register a grid connection point, add my meters to a site."""
    household = _the_household(request)
    if request.method != "POST":
        return _page(request, household)
    form = _register_form(request.POST)
    if form.is_valid():
        try:
            site = consumer_services.site_register(actor=request.user, **form.service_arguments())
        except DomainError as error:
            _refused(request, form, error)
        else:
            messages.success(
                request,
                _("Site %(name)s registered: it waits for confirmation.") % {"name": site.name},
            )
            return redirect("web:household-sites")
    return _page(request, household, register_form=form)


@require_POST
@role_required(_household)
def site_meter_link(request: HttpRequest) -> HttpResponse:
    """Add one of my meters to one of my sites in a role."""
    household = _the_household(request)
    form = _link_form(household, _sites(household), request.POST)
    if form.is_valid():
        try:
            link = consumer_services.site_meter_link(actor=request.user, **form.service_arguments())
        except DomainError as error:
            _refused(request, form, error)
        else:
            messages.success(
                request,
                _("Meter %(serial)s added to %(site)s as %(role)s.")
                % {
                    "serial": link.meter.serial,
                    "site": link.site.name,
                    "role": ROLES.get(link.role, link.role),
                },
            )
            return redirect("web:household-sites")
    return _page(request, household, link_form=form)
