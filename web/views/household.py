"""The household's pages: my sites and energy, community share, hourly matching, charging
receipts; my consents (grant, revoke) and the log of who read my data.

Everything is read through the consumers and charging selectors and written through the
consumers services, as the API does. Query counts do not grow with the data: readings are
summed in the database, and the matching of every site and the allocation of every community
come from the consumers' bulk reports in a fixed number of queries.
"""

import datetime as dt

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import Organisation
from accounts.selectors import organisation_list
from charging.selectors import receipt_list
from consumers import reports
from consumers import selectors as consumer_selectors
from consumers import services as consumer_services
from consumers.models import CommunityMember, Consent, Household, Site, SiteMeter
from registry.errors import DomainError
from web.forms import ConsentGrantForm
from web.roles import request_roles
from web.views import payments
from web.views.common import call_service, energy_scale, form_refused, role_required

# The model's choice labels are English only; the pages show these (translated) ones.
ROLES = {
    SiteMeter.Role.IMPORT: gettext_lazy("Import (consumption)"),
    SiteMeter.Role.EXPORT: gettext_lazy("Export (injection)"),
    SiteMeter.Role.PRODUCTION: gettext_lazy("Production behind the meter"),
    SiteMeter.Role.STORAGE: gettext_lazy("Storage"),
    SiteMeter.Role.EV_CHARGER: gettext_lazy("EV charger"),
}
SITE_STATUSES = {
    Site.Status.PENDING: gettext_lazy("Waiting for confirmation"),
    Site.Status.CONFIRMED: gettext_lazy("Confirmed"),
    Site.Status.REJECTED: gettext_lazy("Rejected"),
}
PURPOSES = {
    Consent.Purpose.SUPPLY: gettext_lazy("Supply and billing"),
    Consent.Purpose.FLEXIBILITY: gettext_lazy("Aggregation and flexibility"),
    Consent.Purpose.COMMUNITY: gettext_lazy("Energy community allocation"),
    Consent.Purpose.AUDIT: gettext_lazy("Audit"),
    Consent.Purpose.ADVICE: gettext_lazy("Energy advice"),
    Consent.Purpose.OTHER: gettext_lazy("Other"),
}
RESOLUTIONS = {
    Consent.Resolution.HOURLY: gettext_lazy("Hourly"),
    Consent.Resolution.DAILY: gettext_lazy("Daily"),
    Consent.Resolution.MONTHLY: gettext_lazy("Monthly"),
}
READS = {
    "readings": gettext_lazy("meter readings"),
    "community_allocation": gettext_lazy("community allocation"),
    "hourly_matching": gettext_lazy("hourly matching"),
}
OUTCOMES = {"granted": gettext_lazy("granted"), "refused": gettext_lazy("refused")}
REASONS = {
    "consent_required": gettext_lazy("no grant covers it"),
    "consent_revoked": gettext_lazy("the grant was revoked"),
}
# Which meter roles each chart series sums.
SERIES = (
    ("consumption", gettext_lazy("Consumption"), {"import", "ev_charger"}),
    ("production", gettext_lazy("Production"), {"production"}),
    ("export", gettext_lazy("Export to the grid"), {"export"}),
)
WINDOWS = {"hour": dt.timedelta(days=7), "day": dt.timedelta(days=31)}
LABELS = {"hour": "SHORT_DATETIME_FORMAT", "day": "SHORT_DATE_FORMAT"}
# How many sites' matching scores and communities' allocations the dashboard computes:
# a bound on the page's CPU time, not on its queries (the reports are bulk reads whose
# query count does not grow with the number of sites or communities).
MAX_MATCHED_SITES = 20
MAX_COMMUNITIES = 20
REPORT_DAYS = 30
LIST_SIZE = 50


def _household(roles) -> bool:
    return roles.household is not None


def _the_household(request: HttpRequest) -> Household:
    return request_roles(request).household.household


def _step(request: HttpRequest) -> str:
    step = request.GET.get("step", "day")
    return step if step in WINDOWS else "day"


def energy_chart(*, household: Household, step: str, now: dt.datetime | None = None) -> dict:
    """Chart.js data: consumption, production and export per hour or day, one grouped query."""
    end = (now or timezone.now()).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - WINDOWS[step]
    if step == "day":
        start = start.replace(hour=0)
    rows = consumer_selectors.household_energy(household=household, start=start, end=end, step=step)
    size = dt.timedelta(hours=1) if step == "hour" else dt.timedelta(days=1)
    buckets, moment = [], start
    while moment < end:
        buckets.append(moment)
        moment += size
    index = {bucket: i for i, bucket in enumerate(buckets)}
    sums = {key: [0] * len(buckets) for key, _label, _roles in SERIES}
    for row in rows:
        position = index.get(row["bucket"])
        for key, _label, roles in SERIES:
            if position is not None and row["role"] in roles:
                sums[key][position] += row["wh"]
    divisor, unit = energy_scale([v for values in sums.values() for v in values])
    return {
        "type": "bar",
        "stacked": False,
        "unit": unit,
        "labels": [formats.date_format(b, LABELS[step]) for b in buckets],
        "datasets": [
            {"label": str(label), "data": [round(v / divisor, 3) for v in sums[key]]}
            for key, label, _roles in SERIES
            if any(sums[key])
        ],
        "totals_wh": {key: sum(values) for key, values in sums.items()},
    }


def _sites(household: Household) -> list[Site]:
    sites = list(
        Site.objects.filter(household=household)
        .select_related("grid_area")
        .prefetch_related(
            Prefetch(
                "meters",
                queryset=SiteMeter.objects.select_related("meter").order_by("role", "pk"),
            )
        )
        .order_by("pk")
    )
    for site in sites:
        site.status_label = SITE_STATUSES.get(site.status, site.status)
        for link in site.meters.all():
            link.role_label = ROLES.get(link.role, link.role)
    return sites


def _report_period(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    end = now.replace(minute=0, second=0, microsecond=0)
    return end - dt.timedelta(days=REPORT_DAYS), end


def _matching(request: HttpRequest, sites: list[Site], start, end) -> list[dict]:
    """The hourly matching score of the confirmed sites (consumers' bulk report: the same
    queries for one site or many)."""
    shown = [s for s in sites if s.status == Site.Status.CONFIRMED][:MAX_MATCHED_SITES]
    reports_by_site = reports.hourly_matchings_read(
        user=request.user, site_ids=[site.pk for site in shown], start=start, end=end
    )
    results = []
    for site in shown:
        report = reports_by_site[site.pk]
        if isinstance(report, DomainError):
            results.append({"site": site, "error": f"{report.detail} ({report.code})"})
            continue
        total = report["total"]
        score = total["cfe_score"]
        results.append(
            {
                "site": site,
                "total": total,
                "percent": None if score is None else float(score) * 100,
            }
        )
    return results


def _communities(request: HttpRequest, household: Household, start, end) -> list[dict]:
    """My memberships with my share and my row of the allocation (consumers' bulk report)."""
    memberships = list(
        CommunityMember.objects.filter(organisation_id=household.organisation_id)
        .select_related("community", "site")
        .order_by("-joined_at")[:MAX_COMMUNITIES]
    )
    allocations = reports.community_allocations_read(
        user=request.user,
        community_ids=list(dict.fromkeys(m.community_id for m in memberships)),
        start=start,
        end=end,
    )
    results = []
    for membership in memberships:
        row = {"membership": membership, "community": membership.community, "mine": None}
        allocation = allocations[membership.community_id]
        if isinstance(allocation, DomainError):
            row["error"] = f"{allocation.detail} ({allocation.code})"
        else:
            row["allocation"] = allocation
            row["mine"] = next(
                (m for m in allocation["members"] if m["member_id"] == membership.pk), None
            )
            if row["mine"]:
                row["amount"] = row["mine"]["amount_minor"] / 100
        results.append(row)
    return results


@role_required(_household)
def dashboard(request: HttpRequest) -> HttpResponse:
    """What does my home use and produce, how green is it, and what do I share?"""
    household = _the_household(request)
    now = timezone.now()
    step = _step(request)
    sites = _sites(household)
    start, end = _report_period(now)
    receipts = list(receipt_list(user=request.user).order_by("-created_at")[:20])
    context = {
        "household": household,
        "sites": sites,
        "step": step,
        "steps": [("hour", _("Hourly")), ("day", _("Daily"))],
        "chart": energy_chart(household=household, step=step, now=now),
        "matching": _matching(request, sites, start, end),
        "communities": _communities(request, household, start, end),
        "report_start": start,
        "report_end": end,
        "receipts": receipts,
        "bills": payments.household_bills(request.user, request_roles(request).household),
    }
    return render(request, "web/household/dashboard.html", context)


@role_required(_household)
def energy(request: HttpRequest) -> HttpResponse:
    """The energy chart alone (htmx swaps it when the step changes)."""
    step = _step(request)
    chart = energy_chart(household=_the_household(request), step=step)
    return render(request, "web/household/energy.html", {"chart": chart, "step": step})


def _grant_form(request: HttpRequest, household: Household, sites: list[Site], data=None):
    grantees = (
        organisation_list(user=request.user)
        .filter(status=Organisation.Status.APPROVED, household__isnull=True)
        .order_by("legal_name")
    )
    meters = [
        (link.pk, f"{site.name}: {link.meter.serial} ({link.role_label})")
        for site in sites
        for link in site.meters.all()
    ]
    return ConsentGrantForm(
        data,
        sites=[s for s in sites if s.status == Site.Status.CONFIRMED],
        grantees=list(grantees),
        meters=meters,
        purposes=[(k, str(v)) for k, v in PURPOSES.items()],
        resolutions=[(k, str(v)) for k, v in RESOLUTIONS.items()],
        initial={"resolution": Consent.Resolution.HOURLY, "purpose": Consent.Purpose.SUPPLY},
    )


FORM_FIELDS = {
    "site_id": "site",
    "grantee_id": "grantee",
    "site_meter_ids": "meters",
    "valid_to": "valid_until",
    "valid_from": "valid_until",
}


def _refused(request: HttpRequest, form, error: DomainError) -> None:
    form_refused(request, form, error, FORM_FIELDS)


def _consents_context(request: HttpRequest, household: Household, form=None) -> dict:
    sites = _sites(household)
    now = timezone.now()
    consents = list(
        consumer_selectors.consent_list(user=request.user)
        .filter(household=household)
        .select_related("site")
        .prefetch_related("meters__meter")
        .order_by("-created_at", "-pk")[:LIST_SIZE]
    )
    for consent in consents:
        consent.purpose_label = PURPOSES.get(consent.purpose, consent.purpose)
        consent.resolution_label = RESOLUTIONS.get(consent.resolution, consent.resolution)
        consent.active = consent.in_force(now) or (
            consent.revoked_at is None and consent.valid_from > now
        )
    accesses = list(
        consumer_selectors.data_access_list(user=request.user)
        .select_related("site", "consent")
        .order_by("-at", "-pk")[:LIST_SIZE]
    )
    for access in accesses:
        access.what_label = READS.get(access.what, access.what)
        access.outcome_label = OUTCOMES.get(access.outcome, access.outcome)
        access.reason_label = REASONS.get(access.reason, access.reason)
        access.resolution_label = RESOLUTIONS.get(access.resolution, access.resolution)
    return {
        "household": household,
        "sites": sites,
        "consents": consents,
        "accesses": accesses,
        "form": form or _grant_form(request, household, sites),
        "can_write": request_roles(request).can_write(household.organisation_id),
    }


@role_required(_household)
def consents(request: HttpRequest) -> HttpResponse:
    """Who may read my data (grant, revoke), and who did read it."""
    household = _the_household(request)
    form = None
    if request.method == "POST":
        sites = _sites(household)
        form = _grant_form(request, household, sites, data=request.POST)
        if form.is_valid():
            try:
                consent = consumer_services.consent_grant(
                    actor=request.user, **form.service_arguments()
                )
            except DomainError as error:
                _refused(request, form, error)
            else:
                messages.success(
                    request,
                    _("Consent %(id)s granted to %(grantee)s.")
                    % {"id": consent.pk, "grantee": consent.grantee.legal_name},
                )
                return redirect("web:household-consents")
    return render(
        request, "web/household/consents.html", _consents_context(request, household, form)
    )


@require_POST
@role_required(_household)
def consent_revoke(request: HttpRequest, consent_id: int) -> HttpResponse:
    """Revoke a grant at once (htmx swaps the list of consents in place)."""
    if (
        not consumer_selectors.consent_list(user=request.user)
        .filter(pk=consent_id, household=_the_household(request))
        .exists()
    ):
        raise Http404
    call_service(
        request,
        consumer_services.consent_revoke,
        _("Consent %(id)s revoked: reads from now on are refused.") % {"id": consent_id},
        consent_id=consent_id,
    )
    return redirect("web:household-consents")
