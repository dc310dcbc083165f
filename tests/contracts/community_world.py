"""A community for the community sharing suites: an operator's plant metered per quarter
hour (three hours issued), two member organisations metered per quarter hour, a static
key 1/4 : 3/4, and helpers to draft and activate the contract."""

import datetime as dt
from fractions import Fraction
from types import SimpleNamespace

import numpy as np

from certificates import services as certificate_services
from certificates.models import Bundle
from consumers import allocation
from consumers import services as consumers
from contracts import services
from contracts.kinds.community import COMMUNITY_SHARING
from contracts.models import Contract
from tests.assets.factories import DeviceFactory, MeterFactory
from tests.certificates.factories import DAY, device_with_owners
from tests.consumers.factories import (
    CONSUMPTION,
    PRODUCTION,
    CommunityFactory,
    member,
    quarter_readings,
)
from tests.contracts.conftest import END, START
from tests.factories import OrganisationFactory, member_of

HOURS = 3
SHARES = ("1/4", "3/4")


def _readings(meter, values, start=DAY):
    quarter_readings(meter, values, start)


def make_world():
    """A community whose operator owns a plant metered per quarter hour (three hours
    issued), two member organisations metered per quarter hour, a static key 1/4 : 3/4."""
    community = CommunityFactory()
    operator = member_of(community.organisation)
    plant, (operator_account,) = device_with_owners(
        [Fraction(1)], producer=community.organisation, grid_area=community.grid_area,
        interval_minutes=15,
    )  # fmt: skip
    production = plant.meters.create(serial=f"PLANT-{plant.pk}", kind="generation")
    consumers.community_device_add(actor=operator, community_id=community.pk, device_id=plant.pk)
    members, admins = [], []
    for values in CONSUMPTION:
        org = OrganisationFactory(is_producer=False)
        device = DeviceFactory(organisation=org, grid_area=community.grid_area, interval_minutes=15)
        meter = MeterFactory(device=device, kind="consumption")
        members.append(member(community, org, meter))
        admins.append(member_of(org))
        _readings(meter, values)
    _readings(production, PRODUCTION)
    consumers.community_key_set(
        actor=operator,
        community_id=community.pk,
        key_kind="static",
        shares={m.pk: share for m, share in zip(members, SHARES, strict=True)},
    )
    certificate_services.certificate_issue(
        actor="system:test",
        device_id=plant.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=HOURS),
    )
    return SimpleNamespace(
        community=community,
        operator=operator,
        operator_account=operator_account,
        members=members,
        admins=admins,
    )


def terms(world, **overrides) -> dict:
    return {"community_id": world.community.pk, "granularity": "hour"} | overrides


def draft(world, **overrides) -> Contract:
    return services.contract_create(
        actor=world.operator,
        kind=COMMUNITY_SHARING,
        terms=terms(world, **overrides),
        start_at=START,
        end_at=END,
    )


def active(world, **overrides) -> Contract:
    contract = draft(world, **overrides)
    for actor in (world.operator, *world.admins):
        services.contract_agree(actor=actor, contract_id=contract.pk)
    contract.refresh_from_db()
    return contract


def hour_trigger(h: int) -> str:
    return f"hour:{DAY + dt.timedelta(hours=h):%Y-%m-%dT%H}:00"


def held(account_id, hour=None) -> int:
    rows = Bundle.objects.filter(account_id=account_id, status=Bundle.Status.ACTIVE)
    if hour is not None:
        rows = rows.filter(period_start=hour)
    return sum(b.volume_wh for b in rows)


def expected_hour(h: int) -> list[int]:
    """The allocation module's Wh per member for hour h (static key 1 : 3, capped at each
    member's consumption), summed over the hour's quarter hours."""
    result = allocation.allocate(
        production=np.array(PRODUCTION),
        consumption=np.array(CONSUMPTION).T,
        active=np.ones((len(PRODUCTION), 2), dtype=bool),
        key="static",
        static_weights=np.array([1, 3]),
    )
    return [int(x) for x in result.allocated.reshape(HOURS, 4, 2).sum(axis=1)[h]]
