"""Device registration, co-owners, edits, policy and the lifecycle table."""

import datetime as dt
import json
from decimal import Decimal
from fractions import Fraction

import pytest

from accounts.errors import NotIssuingBody
from accounts.models import Account, Membership, Organisation
from assets import services
from assets.errors import DeviceStatusConflict, NotDeviceOperator, OwnerInvalid, SharesInvalid
from assets.models import Device
from assets.selectors import device_owners
from ledger.models import PendingEvent
from registry.errors import InvalidInput
from tests.assets.factories import DeviceFactory
from tests.factories import AccountFactory, OrganisationFactory, member_of


def last_event() -> dict:
    return json.loads(bytes(PendingEvent.objects.latest("id").event))


@pytest.fixture
def trading(producer_org):
    return AccountFactory(organisation=producer_org)


def register(actor, organisation, grid_area, owners, **overrides):
    values = {
        "actor": actor,
        "organisation_id": organisation.pk,
        "name": "Residents' rooftop PV",
        "grid_area_id": grid_area.pk,
        "technology_code": "T010101",
        "energy_source_code": "F01040100",
        "capacity_w": 99_500,
        "commissioning_date": dt.date(2021, 4, 1),
        "latitude": Decimal("52.521918"),
        "longitude": Decimal("13.413215"),
        "owners": owners,
    }
    values.update(overrides)
    return services.device_register(**values)


def owner(account, share):
    return {"organisation_id": account.organisation_id, "account_id": account.pk, "share": share}


def test_register_a_co_owned_plant(producer, producer_org, grid_area, trading, snapshot):
    # given
    partner = AccountFactory()
    before = snapshot()
    # when
    device = register(
        producer, producer_org, grid_area, [owner(trading, "2/3"), owner(partner, "1/3")]
    )
    # then
    assert device.status == Device.Status.DRAFT and not device.can_issue
    shares = {o.organisation_id: o.share for o in device_owners(device_id=device.pk)}
    assert shares == {producer_org.pk: Fraction(2, 3), partner.organisation_id: Fraction(1, 3)}
    after = snapshot()
    assert after["Device"] == before["Device"] + 1
    assert after["DeviceOwner"] == before["DeviceOwner"] + 2
    assert after["ledger_events"] == before["ledger_events"] + 1
    event = last_event()
    assert event["type"] == "device.registered"
    assert [o["share"] for o in event["data"]["owners"]] == ["2/3", "1/3"]
    # a home's exact position stays out of the public ledger: about 1 km is recorded
    assert (event["data"]["approx_latitude"], event["data"]["approx_longitude"]) == (
        "52.52",
        "13.41",
    )
    assert "latitude" not in event["data"]


def test_dozens_of_residents_with_exact_shares(producer, producer_org, grid_area, trading):
    residents = [AccountFactory() for _ in range(39)]
    owners = [owner(trading, "1/40")] + [owner(account, "1/40") for account in residents]
    device = register(producer, producer_org, grid_area, owners)
    owners_now = device_owners(device_id=device.pk)
    assert len(owners_now) == 40
    assert sum(o.share for o in owners_now) == 1


def test_thirds_sum_exactly_where_floats_would_not(producer, producer_org, grid_area, trading):
    others = [AccountFactory() for _ in range(2)]
    owners = [owner(trading, "1/3"), owner(others[0], "1/3"), owner(others[1], "1/3")]
    assert register(producer, producer_org, grid_area, owners).owners.count() == 3


@pytest.mark.parametrize("shares", [["1/2", "1/3"], ["1/2", "2/3"], ["0.5", "0.49"], ["1", "1"]])
def test_shares_that_do_not_sum_to_one_store_nothing(
    producer, producer_org, grid_area, trading, snapshot, shares
):
    other = AccountFactory()
    before = snapshot()
    with pytest.raises((SharesInvalid, OwnerInvalid)) as caught:
        register(
            producer,
            producer_org,
            grid_area,
            [owner(trading, shares[0]), owner(other, shares[1])],
        )
    assert "owners" in caught.value.extra["fields"]
    assert snapshot() == before


def test_share_error_names_the_sum(producer, producer_org, grid_area, trading, snapshot):
    other = AccountFactory()
    before = snapshot()
    with pytest.raises(SharesInvalid) as caught:
        register(producer, producer_org, grid_area, [owner(trading, "1/2"), owner(other, "1/3")])
    assert caught.value.extra["fields"]["owners"]["sum"] == ["5/6"]
    assert "5/6" in caught.value.detail
    assert snapshot() == before


@pytest.mark.parametrize("problem", ["foreign_account", "closed_account", "pending_org", "float"])
def test_bad_co_owner_is_reported_per_owner(
    producer, producer_org, grid_area, trading, snapshot, problem
):
    other = AccountFactory()
    spec = owner(other, "1/2")
    if problem == "foreign_account":
        spec["account_id"] = trading.pk
    elif problem == "closed_account":
        Account.objects.filter(pk=other.pk).update(status=Account.Status.CLOSED)
    elif problem == "pending_org":
        Organisation.objects.filter(pk=other.organisation_id).update(status="pending")
    else:
        spec["share"] = 0.5
    before = snapshot()
    with pytest.raises(OwnerInvalid) as caught:
        register(producer, producer_org, grid_area, [owner(trading, "1/2"), spec])
    assert "1" in caught.value.extra["fields"]["owners"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("technology_code", "T999999"),
        ("energy_source_code", "F01050100"),  # wind energy into a PV technology
        ("capacity_w", 0),
        ("latitude", Decimal("91")),
        ("longitude", Decimal("-180.5")),
        ("latitude", Decimal("52.1234567")),
        ("interval_minutes", 30),
        ("support", "grant"),
        ("commissioning_date", dt.date(2999, 1, 1)),
        ("issuance_policy", "weekly"),
    ],
)
def test_invalid_device_fields_store_nothing(
    producer, producer_org, grid_area, trading, snapshot, field, value
):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        register(producer, producer_org, grid_area, [owner(trading, "1")], **{field: value})
    assert field in caught.value.extra["fields"]
    assert snapshot() == before


def test_storage_device_needs_capacity_and_efficiency(
    producer, producer_org, grid_area, trading, snapshot
):
    before = snapshot()
    with pytest.raises(InvalidInput) as caught:
        register(
            producer,
            producer_org,
            grid_area,
            [owner(trading, "1")],
            technology_code="T070000",
            energy_source_code="F00000000",
            is_storage=True,
        )
    assert {"storage_capacity_wh", "round_trip_efficiency"} <= set(caught.value.extra["fields"])
    assert snapshot() == before
    battery = register(
        producer,
        producer_org,
        grid_area,
        [owner(trading, "1")],
        technology_code="T070000",
        energy_source_code="F00000000",
        is_storage=True,
        storage_capacity_wh=200_000,
        round_trip_efficiency=Decimal("0.8800"),
    )
    assert battery.is_storage and battery.round_trip_efficiency == Decimal("0.88")
    with pytest.raises(InvalidInput):
        register(producer, producer_org, grid_area, [owner(trading, "1")], storage_capacity_wh=1000)


def test_someone_elses_organisation_cannot_register(grid_area, trading, snapshot):
    outsider = member_of(OrganisationFactory())
    before = snapshot()
    with pytest.raises(NotDeviceOperator):
        register(outsider, trading.organisation, grid_area, [owner(trading, "1")])
    assert snapshot() == before


def test_viewer_cannot_register(producer_org, grid_area, trading, snapshot):
    viewer = member_of(producer_org, role=Membership.Role.VIEWER)
    before = snapshot()
    with pytest.raises(NotDeviceOperator):
        register(viewer, producer_org, grid_area, [owner(trading, "1")])
    assert snapshot() == before


# -- lifecycle -----------------------------------------------------------------------------

ALL_STATUSES = list(Device.Status.values)


@pytest.mark.parametrize("action", sorted(services.DEVICE_TRANSITIONS))
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_transition_table(producer, producer_org, issuer, snapshot, action, status):
    # given a device in `status`
    device = DeviceFactory(organisation=producer_org, status=status)
    transition = services.DEVICE_TRANSITIONS[action]
    actor = issuer if transition.by == "issuing_body" else producer
    before = snapshot()
    # when / then
    if status in transition.sources:
        services.device_transition(actor=actor, device_id=device.pk, action=action, reason="why")
        device.refresh_from_db()
        assert device.status == transition.target
        assert device.status_reason == "why"
        assert snapshot()["ledger_events"] == before["ledger_events"] + 1
        event = last_event()
        assert event["type"] == transition.kind
        assert event["data"] == {
            "device_id": device.pk,
            "from": status,
            "to": transition.target,
            "reason": "why",
        }
    else:
        with pytest.raises(DeviceStatusConflict):
            services.device_transition(actor=actor, device_id=device.pk, action=action, reason="x")
        device.refresh_from_db()
        assert device.status == status
        assert snapshot() == before


@pytest.mark.parametrize("action", ["approve", "reject", "suspend", "reinstate"])
def test_only_the_issuing_body_approves_rejects_suspends(producer, producer_org, snapshot, action):
    source = next(iter(services.DEVICE_TRANSITIONS[action].sources))
    device = DeviceFactory(organisation=producer_org, status=source)
    before = snapshot()
    with pytest.raises(NotIssuingBody):
        services.device_transition(actor=producer, device_id=device.pk, action=action, reason="r")
    assert snapshot() == before


def test_issuing_body_does_not_submit_for_the_producer(issuer, producer_org, snapshot):
    device = DeviceFactory(organisation=producer_org, status=Device.Status.DRAFT)
    before = snapshot()
    with pytest.raises(NotDeviceOperator):
        services.device_submit(actor=issuer, device_id=device.pk)
    assert snapshot() == before


@pytest.mark.parametrize("action", ["reject", "suspend", "reinstate", "decommission"])
def test_reason_required(issuer, producer_org, snapshot, action):
    source = next(iter(services.DEVICE_TRANSITIONS[action].sources))
    device = DeviceFactory(organisation=producer_org, status=source)
    before = snapshot()
    with pytest.raises(InvalidInput):
        services.device_transition(actor=issuer, device_id=device.pk, action=action, reason=" ")
    assert snapshot() == before


def test_full_lifecycle(producer, producer_org, issuer, grid_area, trading):
    device = register(producer, producer_org, grid_area, [owner(trading, "1")])
    services.device_submit(actor=producer, device_id=device.pk)
    services.device_reject(actor=issuer, device_id=device.pk, reason="Missing grid contract.")
    services.device_update(actor=producer, device_id=device.pk, capacity_w=98_000)
    services.device_submit(actor=producer, device_id=device.pk)
    services.device_approve(actor=issuer, device_id=device.pk)
    assert Device.objects.get(pk=device.pk).can_issue
    services.device_activate(actor=producer, device_id=device.pk)
    services.device_suspend(actor=issuer, device_id=device.pk, reason="Meter audit.")
    assert not Device.objects.get(pk=device.pk).can_issue
    services.device_reinstate(actor=issuer, device_id=device.pk, reason="Audit passed.")
    services.device_decommission(actor=producer, device_id=device.pk, reason="Roof renovation.")
    device.refresh_from_db()
    assert device.status == Device.Status.DECOMMISSIONED and device.approved_at is not None
    kinds = [json.loads(bytes(e.event))["type"] for e in PendingEvent.objects.order_by("id")]
    assert kinds[-10:] == [
        "device.registered",
        "device.submitted",
        "device.rejected",
        "device.updated",
        "device.submitted",
        "device.approved",
        "device.activated",
        "device.suspended",
        "device.reinstated",
        "device.decommissioned",
    ]


def test_submit_rechecks_owner_accounts(producer, producer_org, grid_area, trading, snapshot):
    device = register(producer, producer_org, grid_area, [owner(trading, "1")])
    Account.objects.filter(pk=trading.pk).update(status=Account.Status.CLOSED)
    before = snapshot()
    with pytest.raises(OwnerInvalid):
        services.device_submit(actor=producer, device_id=device.pk)
    assert Device.objects.get(pk=device.pk).status == Device.Status.DRAFT
    assert snapshot() == before


def test_edits_only_while_draft_or_rejected(producer, producer_org, snapshot):
    device = DeviceFactory(organisation=producer_org, status=Device.Status.ACTIVE)
    before = snapshot()
    with pytest.raises(DeviceStatusConflict):
        services.device_update(actor=producer, device_id=device.pk, name="Renamed")
    assert snapshot() == before


def test_update_validates_the_merged_device(producer, producer_org, snapshot):
    device = DeviceFactory(organisation=producer_org, status=Device.Status.DRAFT)
    before = snapshot()
    with pytest.raises(InvalidInput):
        services.device_update(actor=producer, device_id=device.pk, energy_source_code="F01050100")
    with pytest.raises(InvalidInput):
        services.device_update(actor=producer, device_id=device.pk, organisation_id=1)
    assert snapshot() == before


def test_owners_replaced_with_one_event(producer, producer_org, snapshot):
    device = DeviceFactory(organisation=producer_org)
    a, b = AccountFactory(organisation=producer_org), AccountFactory()
    before = snapshot()
    services.device_owners_set(
        actor=producer, device_id=device.pk, owners=[owner(a, "3/4"), owner(b, "1/4")]
    )
    assert [o.share for o in device_owners(device_id=device.pk)] == [Fraction(3, 4), Fraction(1, 4)]
    after = snapshot()
    assert after["ledger_events"] == before["ledger_events"] + 1
    assert after["DeviceOwner"] == before["DeviceOwner"] + 1
    with pytest.raises(SharesInvalid):
        services.device_owners_set(actor=producer, device_id=device.pk, owners=[owner(a, "3/4")])
    assert snapshot() == after


def test_policy_is_set_by_the_issuing_body(producer, producer_org, issuer, snapshot):
    device = DeviceFactory(organisation=producer_org)
    before = snapshot()
    with pytest.raises(NotIssuingBody):
        services.device_policy_set(
            actor=producer, device_id=device.pk, reason="x", require_signed_readings=True
        )
    assert snapshot() == before
    services.device_policy_set(
        actor=issuer,
        device_id=device.pk,
        reason="Large plant: attested data only.",
        require_signed_readings=True,
        issuance_requires_approval=True,
    )
    device.refresh_from_db()
    assert device.require_signed_readings and device.issuance_requires_approval
    assert snapshot()["ledger_events"] == before["ledger_events"] + 1
    assert last_event()["type"] == "device.policy_changed"
