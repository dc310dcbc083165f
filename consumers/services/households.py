"""Households and their sites: onboarding, confirmation, meters by role, site readings.

Locking: household, then site (consumers.locks); a site's readings go on to the assets
pipeline, which takes its own device and meter locks after ours.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, Membership, Organisation, User
from accounts.permissions import (
    refuse_auditor,
    user_can_act_for,
    user_is_auditor,
    user_is_issuing_body,
)
from assets.models import GridArea, Meter
from assets.readings_io import iter_mapping_rows
from assets.services import readings_submit
from consumers import errors, events
from consumers.locks import household_lock, site_lock
from consumers.metering_point import metering_point_problem
from consumers.models import CommunityMember, Household, Site, SiteMeter
from ledger.services import ledger_append
from registry.errors import InvalidInput

COUNTRY_CODE_LENGTH = 2
MAX_SITE_ROWS = 10_000


def _require_text(fields: dict[str, object]) -> None:
    bad = {name: ["required"] for name, value in fields.items() if not str(value or "").strip()}
    if bad:
        raise InvalidInput(fields=bad)


def household_of(user: User) -> Household | None:
    """The household the user acts for (its person or an admin/operator of its organisation)."""
    if not user or not user.is_authenticated:
        return None
    return (
        Household.objects.filter(
            organisation__memberships__user=user,
            organisation__memberships__role__in=[Membership.Role.ADMIN, Membership.Role.OPERATOR],
            organisation__status=Organisation.Status.APPROVED,
        )
        .select_related("organisation")
        .first()
    )


@transaction.atomic
def household_register(
    *, actor: User, name: str, street: str, postcode: str, city: str, country: str
) -> Household:
    """A person takes part as a household: an approved household organisation, its account."""
    if user_is_auditor(actor) or user_is_issuing_body(actor):
        raise errors.HouseholdNotAllowed()
    _require_text({"name": name, "street": street, "postcode": postcode, "city": city})
    if len(country or "") != COUNTRY_CODE_LENGTH or not country.isupper():
        raise InvalidInput(fields={"country": ["ISO 3166-1 alpha-2, such as 'DE'."]})
    User.objects.select_for_update().filter(pk=actor.pk).first()  # one household per login
    if Household.objects.filter(person=actor).exists():
        raise errors.HouseholdExists()
    now = timezone.now()
    # Nothing about a company to check: the household acts at once; its sites are confirmed
    # one by one. Its public name is a reference, the person's name stays in Household.
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(
                legal_name=f"Household of user {actor.pk}",
                country=country,
                registration_id=f"HH-{actor.pk}",
                is_producer=True,
                status=Organisation.Status.APPROVED,
                approved_at=now,
            )
    except IntegrityError:
        raise errors.HouseholdExists() from None
    Membership.objects.create(user=actor, organisation=organisation, role=Membership.Role.ADMIN)
    account = Account.objects.create(
        organisation=organisation,
        kind=Account.Kind.TRADING,
        name="Household",
        number=f"GP-{organisation.pk:05d}-T001",
    )
    household = Household.objects.create(
        organisation=organisation,
        person=actor,
        name=name.strip(),
        street=street.strip(),
        postcode=postcode.strip(),
        city=city.strip(),
        country=country,
    )
    ledger_append(
        kind=events.HOUSEHOLD_REGISTERED,
        actor=actor,
        # the person becomes a member of the household's organisation
        subject=[household, organisation, account, actor],
        data={
            "household_id": household.pk,
            "organisation_id": organisation.pk,
            "account_id": account.pk,
            "account_number": account.number,
            "country": country,
        },
    )
    return household


@transaction.atomic
def site_register(
    *,
    actor: User,
    household_id: int | None = None,
    name: str,
    metering_point_id: str,
    grid_area_id: int,
    street: str,
    postcode: str,
    city: str,
) -> Site:
    """The household (the actor's own unless named) adds a grid connection point; it waits
    for confirmation."""
    refuse_auditor(actor)
    if household_id is None:
        own = household_of(actor)
        if own is None:
            raise errors.HouseholdNotFound()
        household_id = own.pk
    household = household_lock(household_id)
    if not user_can_act_for(actor, household.organisation):
        raise errors.NotSiteHousehold()
    _require_text({"name": name, "street": street, "postcode": postcode, "city": city})
    if problem := metering_point_problem(metering_point_id):
        raise errors.MeteringPointInvalid(fields={"metering_point_id": [problem]})
    area = GridArea.objects.filter(pk=grid_area_id).first()
    if area is None:
        raise errors.GridAreaUnknown(fields={"grid_area_id": ["unknown grid area"]})
    if Site.objects.filter(metering_point_id=metering_point_id).exists():
        raise errors.SiteExists(metering_point_id=metering_point_id)
    try:
        with transaction.atomic():
            site = Site.objects.create(
                household=household,
                name=name.strip(),
                metering_point_id=metering_point_id,
                grid_area=area,
                street=street.strip(),
                postcode=postcode.strip(),
                city=city.strip(),
            )
    except IntegrityError:
        raise errors.SiteExists(metering_point_id=metering_point_id) from None
    ledger_append(
        kind=events.SITE_REGISTERED,
        actor=actor,
        subject=[site, household],
        data={
            "site_id": site.pk,
            "household_id": household.pk,
            "metering_point_id": metering_point_id,
            "grid_area_id": area.pk,
        },
    )
    return site


def user_may_confirm_site(user: User, site: Site) -> bool:
    """The issuing body, or an admin of a community the household belongs to or applies to."""
    if user_is_issuing_body(user):
        return True
    community_orgs = CommunityMember.objects.filter(
        organisation_id=site.household.organisation_id
    ).values_list("community__organisation_id", flat=True)
    return Membership.objects.filter(
        user=user,
        role=Membership.Role.ADMIN,
        organisation_id__in=list(community_orgs),
        organisation__status=Organisation.Status.APPROVED,
    ).exists()


def _site_decide(*, actor: User, site_id: int, status: str, kind: str, reason: str) -> Site:
    site = site_lock(site_id)
    if not user_may_confirm_site(actor, site):
        raise errors.NotSiteConfirmer()
    if site.status != Site.Status.PENDING:
        raise errors.SiteStatusConflict(status=site.status)
    site.status = status
    site.status_reason = reason
    site.decided_by = actor
    site.decided_at = timezone.now()
    site.save(update_fields=["status", "status_reason", "decided_by", "decided_at"])
    ledger_append(kind=kind, actor=actor, subject=site, data={"site_id": site.pk, "reason": reason})
    return site


@transaction.atomic
def site_confirm(*, actor: User, site_id: int, reason: str = "") -> Site:
    """The issuing body or a community admin confirms that the site is the household's."""
    return _site_decide(
        actor=actor,
        site_id=site_id,
        status=Site.Status.CONFIRMED,
        kind=events.SITE_CONFIRMED,
        reason=reason,
    )


@transaction.atomic
def site_reject(*, actor: User, site_id: int, reason: str) -> Site:
    """The site is not the household's (wrong metering point, no proof of address)."""
    if not (reason or "").strip():
        raise InvalidInput(fields={"reason": ["required"]})
    return _site_decide(
        actor=actor,
        site_id=site_id,
        status=Site.Status.REJECTED,
        kind=events.SITE_REJECTED,
        reason=reason,
    )


@transaction.atomic
def site_meter_link(*, actor: User, site_id: int, meter_id: int, role: str) -> SiteMeter:
    """Attach one of the household's assets meters to the site in a role."""
    site = site_lock(site_id)
    if not user_can_act_for(actor, site.household.organisation):
        raise errors.NotSiteHousehold()
    if site.status == Site.Status.REJECTED:
        raise errors.SiteStatusConflict(status=site.status)
    if role not in SiteMeter.Role.values:
        raise InvalidInput(fields={"role": [f"One of {', '.join(SiteMeter.Role.values)}."]})
    meter = Meter.objects.select_related("device").filter(pk=meter_id).first()
    if meter is None or meter.device.organisation_id != site.household.organisation_id:
        raise errors.MeterNotLinkable("The meter must be one of the household's meters.")
    if meter.status != Meter.Status.ACTIVE:
        raise errors.MeterNotLinkable("The meter is removed.")
    if meter.device.grid_area_id != site.grid_area_id:
        raise errors.MeterNotLinkable("The meter's device is in another grid area.")
    if SiteMeter.objects.filter(meter=meter).exists():
        raise errors.MeterNotLinkable("The meter already serves a site.")
    link = SiteMeter.objects.create(site=site, meter=meter, role=role)
    ledger_append(
        kind=events.SITE_METER_LINKED,
        actor=actor,
        subject=[site, meter],
        data={"site_id": site.pk, "site_meter_id": link.pk, "meter_id": meter.pk, "role": role},
    )
    return link


def site_readings_submit(
    *, actor: User, site_id: int, rows: Iterable, accept_valid: bool = False, now=None
):
    """Readings of a confirmed site's meters, through the signed-readings pipeline.

    Every row must name a meter of this site; the pipeline then checks keys, signatures,
    overlaps and idempotency as for any upload, and writes the batch with its own event.
    """
    refuse_auditor(actor)
    site = Site.objects.select_related("household__organisation").filter(pk=site_id).first()
    if site is None or not user_can_act_for(actor, site.household.organisation):
        raise errors.SiteNotFound(site_id=site_id)
    if site.status != Site.Status.CONFIRMED:
        raise errors.SiteStatusConflict("The site is not confirmed yet.", status=site.status)
    serials = set(SiteMeter.objects.filter(site=site).values_list("meter__serial", flat=True))
    rows = list(rows)
    if not rows or len(rows) > MAX_SITE_ROWS:
        raise InvalidInput(f"Send 1 to {MAX_SITE_ROWS} readings (use POST /readings/ for bulk).")
    foreign = sorted({str(row.get("meter")) for row in rows if isinstance(row, dict)} - serials)
    if foreign or not all(isinstance(row, dict) for row in rows):
        raise errors.MeterOfAnotherSite(meters=foreign[:20])
    return readings_submit(
        actor=actor,
        rows=iter_mapping_rows(rows),
        accept_valid=accept_valid,
        now=now or timezone.now(),
    )
