"""Factories for households, sites, consents and communities (state without services)."""

import datetime as dt
import itertools

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Account, Membership, Organisation
from assets.models import Meter, Reading, ReadingBatch
from consumers.metering_point import metering_point_with_check
from consumers.models import Community, CommunityMember, Consent, Household, Site, SiteMeter
from tests.assets.factories import DeviceFactory, GridAreaFactory, MeterFactory
from tests.factories import AccountFactory, MembershipFactory, OrganisationFactory, UserFactory

_points = itertools.count(1)


def new_metering_point() -> str:
    return metering_point_with_check(f"87152{next(_points):012d}")


class HouseholdFactory(DjangoModelFactory):
    class Meta:
        model = Household
        skip_postgeneration_save = True

    person = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(
        OrganisationFactory,
        legal_name=factory.Sequence(lambda n: f"Household {n}"),
        registration_id=factory.Sequence(lambda n: f"HH-T{n}"),
        is_producer=True,
        is_trader=False,
    )
    name = "Alex Example"
    street = "1 Solar Way"
    postcode = "10115"
    city = "Berlin"
    country = "DE"

    @factory.post_generation
    def membership(self, create, extracted, **kwargs):
        if create:
            MembershipFactory(
                user=self.person, organisation=self.organisation, role=Membership.Role.ADMIN
            )
            AccountFactory(organisation=self.organisation, kind=Account.Kind.TRADING)


class SiteFactory(DjangoModelFactory):
    class Meta:
        model = Site

    household = factory.SubFactory(HouseholdFactory)
    name = "Home"
    metering_point_id = factory.LazyFunction(new_metering_point)
    grid_area = factory.SubFactory(GridAreaFactory)
    street = "1 Solar Way"
    postcode = "10115"
    city = "Berlin"
    status = Site.Status.CONFIRMED


def site_meter(site: Site, role: str = SiteMeter.Role.IMPORT, **meter_kwargs) -> SiteMeter:
    """A meter of the household (on a device of its organisation) linked to the site."""
    kind = Meter.Kind.GENERATION if role == SiteMeter.Role.PRODUCTION else Meter.Kind.CONSUMPTION
    device = meter_kwargs.pop("device", None) or DeviceFactory(
        organisation=site.household.organisation, grid_area=site.grid_area
    )
    meter = MeterFactory(device=device, kind=kind, **meter_kwargs)
    return SiteMeter.objects.create(site=site, meter=meter, role=role)


def consent(site: Site, grantee: Organisation, meters, **kwargs) -> Consent:
    now = timezone.now()
    row = Consent.objects.create(
        household=site.household,
        site=site,
        grantee=grantee,
        purpose=kwargs.pop("purpose", Consent.Purpose.SUPPLY),
        resolution=kwargs.pop("resolution", Consent.Resolution.HOURLY),
        valid_from=kwargs.pop("valid_from", now - dt.timedelta(days=1)),
        valid_to=kwargs.pop("valid_to", now + dt.timedelta(days=30)),
        granted_by=site.household.person,
        created_at=now,
        **kwargs,
    )
    row.meters.set(meters)
    return row


class CommunityFactory(DjangoModelFactory):
    class Meta:
        model = Community

    organisation = factory.SubFactory(OrganisationFactory, is_producer=True)
    name = factory.Sequence(lambda n: f"Community {n}")
    grid_area = factory.SubFactory(GridAreaFactory)
    key_kind = Community.KeyKind.DYNAMIC
    internal_price_minor_per_kwh = 20


def member(community: Community, organisation: Organisation, meter: Meter, **kwargs):
    return CommunityMember.objects.create(
        community=community,
        organisation=organisation,
        consumption_meter=meter,
        account=kwargs.pop("account", None) or AccountFactory(organisation=organisation),
        joined_at=kwargs.pop("joined_at", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        **kwargs,
    )


QUARTER = dt.timedelta(minutes=15)
# A plant's production and two households' consumption per quarter hour over three hours:
# a dynamic key's shares change in every interval, and in some the plant produces more
# than both consume.
PRODUCTION = [900, 700, 1300, 50, 0, 400, 401, 999, 1000, 1000, 3, 7]
CONSUMPTION = [
    [100, 650, 200, 25, 10, 333, 100, 0, 700, 200, 1, 1],
    [300, 100, 900, 30, 20, 1, 300, 999, 100, 600, 1, 0],
]


def quarter_readings(meter: Meter, values, start: dt.datetime, skip=()) -> None:
    """Accepted quarter-hour readings of `meter` from `start`, one per value (but `skip`)."""
    batch = ReadingBatch.objects.create(
        organisation=meter.device.organisation, status="accepted", size=len(values),
        merkle_root="0" * 64,
    )  # fmt: skip
    Reading.objects.bulk_create(
        Reading(
            device=meter.device,
            meter=meter,
            batch=batch,
            wh=wh,
            index_in_batch=i,
            start=start + QUARTER * i,
            end=start + QUARTER * (i + 1),
        )
        for i, wh in enumerate(values)
        if i not in skip
    )
