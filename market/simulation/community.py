"""The simulated community: its market, prosumers and households, each with its
organisation, member, trading account, funded settlement account, device and signing
meters. Made through the services, or found again by name (idempotent)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import nacl.signing
from django.conf import settings
from django.db import transaction

from accounts import services as accounts
from accounts.models import Account, Membership, Organisation, User
from assets import services as assets
from assets.models import Device, GridArea, Meter
from market import services as market_services
from market.models import Market

MARKET_CODE = "community-sim-eur"
AREA_CODE = "10Y1001A1001A82H"  # the demo's DE-LU bidding zone
FUNDING_MINOR = 50_000  # EUR 500.00 per participant, deposited by the market operator
SLOT_MINUTES = 15
# Meters are installed this long before the first run's history starts, so that a later
# run may simulate an earlier day.
INSTALLED_BEFORE = dt.timedelta(days=60)


@dataclass(frozen=True)
class Spec:
    """A participant: a prosumer has rooftop PV (`pv_w`) and a household load."""

    slug: str
    legal_name: str
    pv_w: int
    base_w: int
    peak_w: int
    min_sell_price: int  # minor units per MWh
    max_buy_price: int
    battery_wh: int = 0  # a home battery under a storage balancing contract
    battery_w: int = 0


COMMUNITY = (
    Spec("ahorn", "Sim Prosumer Ahorn", 8_000, 250, 900, 12_000, 30_000),
    Spec("birke", "Sim Prosumer Birke", 6_000, 300, 1_200, 14_000, 32_000),
    Spec("eiche", "Sim Prosumer Eiche", 10_000, 350, 1_500, 16_000, 28_000, 5_000, 2_500),
    Spec("linde", "Sim Household Linde", 0, 1_200, 2_000, 0, 35_000),
    Spec("ulme", "Sim Household Ulme", 0, 1_500, 2_500, 0, 40_000),
    Spec("weide", "Sim Household Weide", 0, 1_000, 1_800, 0, 30_000),
)


@dataclass
class SimMeter:
    meter: Meter
    key: nacl.signing.SigningKey
    profile: str  # "pv", "load", or the battery's "charge" and "discharge"


@dataclass
class Member:
    spec: Spec
    user: User
    organisation: Organisation
    account: Account
    device: Device
    meters: list[SimMeter] = field(default_factory=list)
    battery: Device | None = None
    token: str = ""
    token_id: int = 0
    agent_id: int = 0


@dataclass
class Community:
    market: Market
    operator: User
    members: list[Member]


def meter_key(serial: str) -> nacl.signing.SigningKey:
    """The simulated meter's Ed25519 key: derived from the installation's secret and the
    serial, so that a rerun signs with the key registered the first time."""
    secret = f"gridproof-simulation:{settings.SECRET_KEY}:{serial}".encode()
    return nacl.signing.SigningKey(hashlib.sha256(secret).digest())


def _operator() -> User:
    membership = (
        Membership.objects.filter(
            organisation__is_issuing_body=True, role=Membership.Role.ADMIN, user__is_active=True
        )
        .select_related("user")
        .order_by("organisation_id", "id")
        .first()
    )
    if membership is None:
        raise LookupError("No issuing body with an administrator: run `manage.py seed_demo`.")
    return membership.user


def _area(operator: User) -> GridArea:
    return GridArea.objects.filter(code=AREA_CODE).first() or assets.grid_area_create(
        actor=operator,
        code=AREA_CODE,
        name="DE-LU bidding zone",
        country="DE",
        time_zone="Europe/Berlin",
        emission_factor_g_per_kwh=Decimal("380.000"),
        expiry_months=12,
    )


def _market(operator: User, area: GridArea) -> Market:
    found = Market.objects.filter(code=MARKET_CODE).first()
    if found is not None:
        return found
    issuing_body = operator.memberships.filter(organisation__is_issuing_body=True).first()
    return market_services.market_create(
        actor=operator,
        code=MARKET_CODE,
        name="Simulated community energy, EUR, 15-minute slots",
        currency="EUR",
        operator_id=issuing_body.organisation_id,
        price_min=0,
        price_max=100_000,
        kind=Market.Kind.ENERGY,
        matching=Market.Matching.UNIFORM,
        slot_minutes=SLOT_MINUTES,
        gate_closure_minutes=5,
        grid_area_id=area.pk,
        fallback_buy_price=45_000,  # EUR 450/MWh: a seller short of what it sold pays this
        fallback_sell_price=6_000,  # EUR 60/MWh feed-in for unsold production
        grid_fee_per_mwh=2_000,  # EUR 20/MWh to the operator
    )


def _policy(spec: Spec) -> str:
    """A prosumer's PV is certified hourly, as its readings arrive (the readings hook)."""
    if spec.pv_w:
        return Device.IssuancePolicy.AUTOMATIC_HOURLY
    return Device.IssuancePolicy.MANUAL


def _member(spec: Spec, operator: User, area: GridArea, now: dt.datetime) -> Member:
    organisation = Organisation.objects.filter(legal_name=spec.legal_name).first()
    if organisation is not None:
        device = Device.objects.get(organisation=organisation, name=f"{spec.legal_name} site")
        member = Member(
            spec=spec,
            user=Membership.objects.get(organisation=organisation, role=Membership.Role.ADMIN).user,
            organisation=organisation,
            account=Account.objects.get(organisation=organisation, kind=Account.Kind.TRADING),
            device=device,
        )
        if spec.pv_w and device.issuance_policy != _policy(spec):  # made before PV issued
            assets.device_policy_set(
                actor=operator,
                device_id=device.pk,
                reason="Simulated community: PV certificates issued hourly.",
                issuance_policy=_policy(spec),
            )
    else:
        user = accounts.user_register(
            username=f"sim-{spec.slug}", password=hashlib.sha256(spec.slug.encode()).hexdigest()
        )
        organisation = accounts.organisation_register(
            actor=user,
            legal_name=spec.legal_name,
            country="DE",
            registration_id=f"SIM-{spec.slug.upper()}",
            roles=["producer", "trader"],  # a household registers its metering site too
        )
        accounts.organisation_approve(actor=operator, organisation_id=organisation.pk)
        account = accounts.account_open(
            actor=user, organisation_id=organisation.pk, kind="trading", name="Trading"
        )
        device = assets.device_register(
            actor=user,
            organisation_id=organisation.pk,
            name=f"{spec.legal_name} site",
            grid_area_id=area.pk,
            technology_code="T010101",
            energy_source_code="F01040100",
            capacity_w=max(spec.pv_w, 12_000),
            commissioning_date=dt.date(2020, 1, 1),
            latitude=Decimal("52.520000"),
            longitude=Decimal("13.400000"),
            interval_minutes=SLOT_MINUTES,
            require_signed_readings=True,
            issuance_policy=_policy(spec),
            owners=[{"organisation_id": organisation.pk, "account_id": account.pk, "share": "1"}],
        )
        kinds = [("LOAD", Meter.Kind.CONSUMPTION)]
        if spec.pv_w:
            kinds.insert(0, ("PV", Meter.Kind.GENERATION))
        _meter_and_activate(spec, user, operator, device, kinds, now)
        market_services.settlement_deposit(
            actor=operator,
            organisation_id=organisation.pk,
            currency="EUR",
            amount_minor=FUNDING_MINOR,
            reference="simulated community funding",
        )
        member = Member(spec, user, organisation, account, device)
    if spec.battery_wh:
        member.battery = Device.objects.filter(
            organisation=member.organisation, name=f"{spec.legal_name} battery"
        ).first() or _battery(spec, operator, member, area, now)
    profiles = {
        Meter.Kind.GENERATION: "pv",
        Meter.Kind.STORAGE: "discharge",
        Meter.Kind.CONSUMPTION: "load",
    }
    for meter in Meter.objects.filter(device=member.device).order_by("pk"):
        member.meters.append(SimMeter(meter, meter_key(meter.serial), profiles[meter.kind]))
    if member.battery is not None:
        for meter in Meter.objects.filter(device=member.battery).order_by("pk"):
            profile = "charge" if meter.kind == Meter.Kind.CONSUMPTION else "discharge"
            member.meters.append(SimMeter(meter, meter_key(meter.serial), profile))
    return member


def _battery(spec: Spec, operator: User, member: Member, area: GridArea, now) -> Device:
    """The prosumer's home battery: a storage device with a charge (consumption) and a
    discharge (storage) meter, issued only by its storage balancing contract (manual
    policy), its output in the prosumer's trading account."""
    user, organisation = member.user, member.organisation
    battery = assets.device_register(
        actor=user,
        organisation_id=organisation.pk,
        name=f"{spec.legal_name} battery",
        grid_area_id=area.pk,
        technology_code="T070000",
        energy_source_code="F00000000",
        capacity_w=spec.battery_w,
        commissioning_date=dt.date(2022, 1, 1),
        latitude=Decimal("52.520000"),
        longitude=Decimal("13.400000"),
        interval_minutes=SLOT_MINUTES,
        require_signed_readings=True,
        is_storage=True,
        storage_capacity_wh=spec.battery_wh,
        round_trip_efficiency=Decimal("1"),  # lossless: see profiles.battery_day
        owners=[
            {"organisation_id": organisation.pk, "account_id": member.account.pk, "share": "1"}
        ],
    )
    kinds = [("BATIN", Meter.Kind.CONSUMPTION), ("BATOUT", Meter.Kind.STORAGE)]
    _meter_and_activate(spec, user, operator, battery, kinds, now)
    return battery


def _meter_and_activate(
    spec: Spec, user: User, operator: User, device: Device, kinds: list, now: dt.datetime
) -> None:
    """Register the device's signing meters (tag, kind), then submit, approve, activate."""
    for tag, kind in kinds:
        serial = f"SIM-{tag}-{spec.slug.upper()}"
        assets.meter_register(
            actor=user,
            device_id=device.pk,
            serial=serial,
            kind=kind,
            public_key=bytes(meter_key(serial).verify_key),
            key_valid_from=now - INSTALLED_BEFORE,
            installed_at=now - INSTALLED_BEFORE,
        )
    assets.device_submit(actor=user, device_id=device.pk)
    assets.device_approve(actor=operator, device_id=device.pk, reason="Simulated community.")
    assets.device_activate(actor=user, device_id=device.pk)


@transaction.atomic
def community_get_or_create(*, now: dt.datetime) -> Community:
    """The community's market and members, made the first time."""
    operator = _operator()
    area = _area(operator)
    market = _market(operator, area)
    members = [_member(spec, operator, area, now) for spec in COMMUNITY]
    return Community(market=market, operator=operator, members=members)


def tokens_create(community: Community) -> str:
    """An API token for each member and one for the operator (returned)."""
    for member in community.members:
        token, member.token = accounts.api_token_create(user=member.user, name="simulation")
        member.token_id = token.pk
    return accounts.api_token_create(user=community.operator, name="simulation")


def tokens_revoke(community: Community, operator_token_id: int) -> None:
    for member in community.members:
        if member.token_id:
            accounts.api_token_revoke(user=member.user, token_id=member.token_id)
    accounts.api_token_revoke(user=community.operator, token_id=operator_token_id)
