"""A small registry for the web tests: one of each person, with something waiting for each."""

import contextlib
import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.models import Account, Membership, Organisation
from assets.models import Device, ReadingBatch
from certificates import services
from certificates.models import Bundle
from ledger.services import checkpoint_create, ledger_integrate_pending
from tests.certificates.factories import DeviceFactory, add_readings, device_with_owners
from tests.factories import (
    AccountFactory,
    OrganisationFactory,
    auditor_user,
    issuing_body_user,
    member_of,
)

PASSWORD = "correct-horse-battery"


@dataclass
class WebWorld:
    users: dict = field(default_factory=dict)
    device: Device | None = None
    producer_account: Account | None = None
    buyer_account: Account | None = None
    pending_transfer: object = None
    retirement: object = None
    bundles: list = field(default_factory=list)
    household: object = None
    site: object = None
    supplier: Organisation | None = None
    consent: object = None


def build_web_world(*, devices: int = 1, hours: int = 6, tag: str = "") -> WebWorld:
    """Producer with devices and readings (last hours), certificates sold to a buyer, one
    incoming transfer waiting, one retirement, and a queue item of each kind."""
    world = WebWorld()
    ib = issuing_body_user(user__username="ib" + tag)
    world.users["issuing_body"] = ib
    world.users["auditor"] = auditor_user(user__username="auditor" + tag)
    producer = OrganisationFactory(legal_name="Sunny Rooftops eG")
    world.users["producer"] = member_of(producer, user__username="producer" + tag)
    buyer = OrganisationFactory(legal_name="GreenBuy GmbH", is_producer=False)
    world.users["buyer"] = member_of(
        buyer, user__username="buyer" + tag, role=Membership.Role.OPERATOR
    )
    world.buyer_account = AccountFactory(organisation=buyer, number="GP-00003-T001" + tag)
    start = (timezone.now() - dt.timedelta(hours=hours + 2)).replace(
        minute=0, second=0, microsecond=0
    )
    for i in range(devices):
        device, (account,) = device_with_owners(
            producer=producer, name=f"Rooftop {i}", issuance_requires_approval=False
        )
        add_readings(device, start=start, hours=hours)
        world.device = world.device or device
        world.producer_account = world.producer_account or account
    services.certificate_issue(
        actor=ib,
        device_id=world.device.pk,
        period_start=start,
        period_end=start + dt.timedelta(hours=hours),
    )
    bundles = list(Bundle.objects.filter(device=world.device).order_by("pk"))
    producer_user = world.users["producer"]
    services.certificate_transfer(
        actor=producer_user, bundle_id=bundles[0].pk, to_account_id=world.buyer_account.pk
    )
    world.pending_transfer = services.certificate_transfer(
        actor=producer_user,
        bundle_id=bundles[1].pk,
        to_account_id=world.buyer_account.pk,
        volume_wh=100,
        require_acceptance=True,
    )
    bought = Bundle.objects.get(account=world.buyer_account, status=Bundle.Status.ACTIVE)
    world.retirement = services.certificate_retire(
        actor=world.users["buyer"],
        items=[(bought.pk, 50)],
        beneficiary_name="Bäckerei Sonnenschein",
        beneficiary_country="DE",
        consumption_start=start,
        consumption_end=start + dt.timedelta(hours=1),
        purpose="voluntary",
    )
    world.bundles = list(
        Bundle.objects.filter(account=world.buyer_account, status=Bundle.Status.ACTIVE)
    )
    # Something waits on the issuing body in every queue.
    OrganisationFactory(legal_name="Newcomer Solar", status=Organisation.Status.PENDING)
    DeviceFactory(organisation=producer, name="Barn roof", status=Device.Status.SUBMITTED)
    ReadingBatch.objects.create(
        organisation=producer,
        device=world.device,
        status=ReadingBatch.Status.HELD,
        size=24,
        total_wh=24_000,
        merkle_root="0" * 64,
        review_reasons=[{"code": "backdated", "rows": 24}],
    )
    add_household(world, hours=hours, tag=tag)
    ledger_integrate_pending()
    checkpoint_create()
    return world


def add_household(world: WebWorld, *, hours: int, tag: str = "") -> None:
    """A household with a confirmed site (import and rooftop meters with readings), an
    hourly certificate in its account, a community membership, one consent to a supplier
    and two reads by the supplier: one under the grant, one refused (another meter)."""
    from consumers import services as consumer_services
    from consumers.errors import ConsentRequired
    from consumers.selectors import site_readings_read
    from tests.consumers.factories import (
        CommunityFactory,
        HouseholdFactory,
        SiteFactory,
        member,
        site_meter,
    )
    from tests.factories import UserFactory

    area = world.device.grid_area
    household = HouseholdFactory(
        person=UserFactory(username="household" + tag), name="Sam Sonnenschein"
    )
    world.users["household"] = household.person
    world.household = household
    world.site = SiteFactory(household=household, name="Lindenstraße 5", grid_area=area)
    home = DeviceFactory(organisation=household.organisation, grid_area=area, name="Home meters")
    used = site_meter(world.site, "import", device=home, serial="HOME-IMPORT" + tag)
    made = site_meter(world.site, "production", device=home, serial="HOME-PV" + tag)
    start = (timezone.now() - dt.timedelta(hours=hours + 2)).replace(
        minute=0, second=0, microsecond=0
    )
    add_readings(home, meter=used.meter, start=start, hours=hours, wh=lambda i: 400 + 10 * i)
    add_readings(home, meter=made.meter, start=start, hours=hours, wh=lambda i: 200 + 5 * i)
    hourly = (
        Bundle.objects.filter(account=world.producer_account, status=Bundle.Status.ACTIVE)
        .order_by("pk")
        .last()
    )
    household_account = Account.objects.get(organisation=household.organisation)
    services.certificate_transfer(
        actor=world.users["producer"],
        bundle_id=hourly.pk,
        to_account_id=household_account.pk,
        volume_wh=150,
    )
    community = CommunityFactory(name="Lindenhof energy community", grid_area=area)
    member(community, household.organisation, used.meter, site=world.site)
    world.supplier = OrganisationFactory(
        legal_name="Stadtwerke Sonnenstadt", is_producer=False, is_trader=True
    )
    reader = member_of(world.supplier, user__username="supplier" + tag, role=Membership.Role.VIEWER)
    world.users["supplier"] = reader
    world.consent = consumer_services.consent_grant(
        actor=household.person,
        site_id=world.site.pk,
        grantee_id=world.supplier.pk,
        purpose="supply",
        site_meter_ids=[used.pk],
        resolution="hourly",
        valid_to=timezone.now() + dt.timedelta(days=365),
    )
    span = {"start": start, "end": start + dt.timedelta(hours=hours), "resolution": "hourly"}
    site_readings_read(user=reader, site_id=world.site.pk, site_meter_ids=[used.pk], **span)
    with contextlib.suppress(ConsentRequired):
        site_readings_read(user=reader, site_id=world.site.pk, site_meter_ids=[made.pk], **span)


def pending_issuance_request(world: WebWorld):
    """A producer's issuance request that waits on the issuing body (the device needs
    approval from now on)."""
    from certificates.services import issuance_request_create

    device = world.device
    device.issuance_requires_approval = True
    device.save(update_fields=["issuance_requires_approval"])
    end = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=2)
    return issuance_request_create(
        actor=world.users["producer"],
        device_id=device.pk,
        period_start=end - dt.timedelta(hours=1),
        period_end=end,
    )
