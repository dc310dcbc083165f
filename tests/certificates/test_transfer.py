import datetime as dt
import json

import pytest

from accounts import services as account_services
from accounts.errors import AccountNotEmpty
from accounts.models import Account, Membership
from certificates import errors, services
from certificates.models import Bundle, Transfer
from ledger.models import PendingEvent
from registry.errors import DomainError
from tests.certificates.conftest import last_event_id, new_events, snapshot
from tests.certificates.factories import DAY, holder
from tests.factories import AccountFactory, member_of

pytestmark = pytest.mark.django_db


def _transfer(plant, bundle=None, to=None, **kwargs):
    return services.certificate_transfer(
        actor=kwargs.pop("actor", plant.producer),
        bundle_id=(bundle or plant.bundles[0]).pk,
        to_account_id=(to or plant.buyer_account).pk,
        **kwargs,
    )


def test_whole_transfer_moves_the_bundle_in_place(issued):
    bundle = issued.bundles[0]
    before = last_event_id()
    transfer = _transfer(issued, bundle)
    bundle.refresh_from_db()
    assert transfer.bundle_id == bundle.pk and transfer.status == Transfer.Status.COMPLETED
    assert bundle.account_id == issued.buyer_account.pk and bundle.status == Bundle.Status.ACTIVE
    assert not Bundle.objects.filter(parent=bundle).exists()
    assert new_events(before) == ["certificate.transferred"]
    data = json.loads(bytes(PendingEvent.objects.get(pk__gt=before).event))["data"]
    assert data["moved_bundle_id"] == bundle.pk and data["rest_bundle_id"] is None


def test_partial_transfer_splits_into_children_that_partition_the_parent(issued):
    # given a bundle
    parent = issued.bundles[3]
    start, end = parent.unit_start, parent.unit_end
    before = last_event_id()
    # when 100 Wh of it move
    transfer = _transfer(issued, parent, volume_wh=100)
    # then the parent is split (its range unchanged) into the moved part and the rest
    parent.refresh_from_db()
    assert parent.status == Bundle.Status.SPLIT and (parent.unit_start, parent.unit_end) == (
        start,
        end,
    )
    moved, rest = Bundle.objects.filter(parent=parent).order_by("unit_start")
    assert transfer.bundle_id == moved.pk
    assert (moved.unit_start, moved.unit_end, moved.account_id) == (
        start,
        start + 100,
        issued.buyer_account.pk,
    )
    assert (rest.unit_start, rest.unit_end, rest.account_id) == (
        start + 100,
        end,
        issued.producer_account.pk,
    )
    for child in (moved, rest):
        assert child.status == Bundle.Status.ACTIVE
        assert (child.period_start, child.issuance_id, child.expires_on) == (
            parent.period_start,
            parent.issuance_id,
            parent.expires_on,
        )
    assert new_events(before) == ["certificate.transferred"]


def test_transfer_within_the_organisation_and_to_another(issued):
    _transfer(issued, issued.bundles[0], to=issued.own_second_account)
    _transfer(issued, issued.bundles[1], to=issued.buyer_account, volume_wh=1)
    assert Bundle.objects.get(pk=issued.bundles[0].pk).account == issued.own_second_account


def _retired(plant):
    services.certificate_retire(
        actor=plant.producer,
        items=[(plant.bundles[0].pk, None)],
        beneficiary_name="Someone",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(days=1),
        purpose="disclosure",
    )
    return plant.bundles[0]


def _expired(plant):
    Bundle.objects.filter(pk=plant.bundles[0].pk).update(expires_on=dt.datetime.now(dt.UTC).date())
    return plant.bundles[0]


def _withdrawn(plant):
    services.certificate_withdraw(actor=plant.ib, reason="error", bundle_ids=[plant.bundles[0].pk])
    return plant.bundles[0]


def _split(plant):
    _transfer(plant, plant.bundles[0], volume_wh=10)
    return plant.bundles[0]


@pytest.mark.parametrize(
    ("prepare", "kwargs", "error", "status"),
    [
        (lambda p: p.bundles[0], {"volume_wh": 10**7}, errors.InsufficientVolume, 409),
        (lambda p: p.bundles[0], {"volume_wh": 0}, errors.InvalidVolume, 400),
        (lambda p: p.bundles[0], {"volume_wh": -5}, errors.InvalidVolume, 400),
        (lambda p: p.bundles[0], {"volume_wh": True}, errors.InvalidVolume, 400),
        (_retired, {}, errors.BundleNotActive, 409),
        (_expired, {}, errors.BundleExpired, 409),
        (_withdrawn, {}, errors.BundleNotActive, 409),
        (_split, {}, errors.BundleNotActive, 409),
        (
            lambda p: Bundle.objects.get(account=p.neighbour_account, period_start=DAY),
            {},
            errors.NotBundleHolder,
            403,
        ),
    ],
    ids=[
        "more-than-held",
        "zero",
        "negative",
        "bool",
        "retired",
        "expired",
        "withdrawn",
        "split",
        "foreign",
    ],
)
def test_refused_transfers_change_nothing(issued, prepare, kwargs, error, status):
    # given
    bundle = prepare(issued)
    before = snapshot()
    # when / then
    with pytest.raises(error) as raised:
        _transfer(issued, bundle, **kwargs)
    assert raised.value.status == status and raised.value.code
    assert snapshot() == before


def test_transfer_to_a_closed_or_missing_account_is_refused(issued):
    closed = AccountFactory(status=Account.Status.CLOSED)
    before = snapshot()
    with pytest.raises(errors.AccountClosed):
        _transfer(issued, to=closed)
    with pytest.raises(errors.SameAccount):
        _transfer(issued, to=issued.producer_account)
    with pytest.raises(errors.AccountNotFoundForTransfer):
        services.certificate_transfer(
            actor=issued.producer, bundle_id=issued.bundles[0].pk, to_account_id=10**9
        )
    with pytest.raises(errors.BundleNotFound):
        services.certificate_transfer(
            actor=issued.producer, bundle_id=10**9, to_account_id=issued.buyer_account.pk
        )
    assert snapshot() == before


def test_viewers_and_auditors_cannot_move_certificates(issued):
    from tests.factories import auditor_user

    viewer = member_of(issued.producer_account.organisation, role=Membership.Role.VIEWER)
    before = snapshot()
    for actor in (viewer, auditor_user(), issued.ib, issued.buyer):
        with pytest.raises(errors.NotBundleHolder):
            _transfer(issued, actor=actor)
    assert snapshot() == before


# ---------------------------------------------------------------- acceptance


def test_acceptance_reserves_units_until_the_receiver_accepts(issued):
    # given a transfer that asks the receiver to accept
    bundle = issued.bundles[0]
    transfer = _transfer(issued, bundle, volume_wh=50, require_acceptance=True)
    moved = transfer.bundle
    assert transfer.status == Transfer.Status.PENDING
    assert (moved.account_id, moved.status) == (issued.producer_account.pk, Bundle.Status.RESERVED)
    # reserved units cannot move meanwhile
    with pytest.raises(errors.BundleNotActive):
        _transfer(issued, moved, to=issued.own_second_account)
    # the sender cannot accept, the receiver can
    with pytest.raises(errors.NotTransferParty):
        services.certificate_transfer_accept(actor=issued.producer, transfer_id=transfer.pk)
    before = last_event_id()
    services.certificate_transfer_accept(actor=issued.buyer, transfer_id=transfer.pk)
    moved.refresh_from_db()
    assert (moved.account_id, moved.status) == (issued.buyer_account.pk, Bundle.Status.ACTIVE)
    assert new_events(before) == ["certificate.transfer_accepted"]
    # and a second decision is refused without changing anything
    state = snapshot()
    with pytest.raises(errors.TransferNotPending):
        services.certificate_transfer_reject(actor=issued.buyer, transfer_id=transfer.pk)
    assert snapshot() == state


@pytest.mark.parametrize(
    ("decide", "who", "kind"),
    [
        (services.certificate_transfer_reject, "buyer", "certificate.transfer_rejected"),
        (services.certificate_transfer_withdraw, "producer", "certificate.transfer_withdrawn"),
    ],
)
def test_rejected_or_withdrawn_transfer_frees_the_units_at_the_sender(issued, decide, who, kind):
    transfer = _transfer(issued, issued.bundles[0], require_acceptance=True)
    before = last_event_id()
    decide(actor=getattr(issued, who), transfer_id=transfer.pk)
    bundle = Bundle.objects.get(pk=transfer.bundle_id)
    assert (bundle.account_id, bundle.status) == (issued.producer_account.pk, Bundle.Status.ACTIVE)
    assert Transfer.objects.get(pk=transfer.pk).status in ("rejected", "withdrawn")
    assert new_events(before) == [kind]


def test_receiving_organisation_policy_asks_for_acceptance(issued):
    buyer_admin = holder(issued.buyer_account, role=Membership.Role.ADMIN)
    before = last_event_id()
    services.transfer_policy_set(
        actor=buyer_admin,
        organisation_id=issued.buyer_account.organisation_id,
        require_acceptance=True,
    )
    assert new_events(before) == ["transfer_policy.updated"]
    assert _transfer(issued, issued.bundles[0]).status == Transfer.Status.PENDING
    # a transfer inside one's own organisation never waits
    assert (
        _transfer(issued, issued.bundles[1], to=issued.own_second_account).status
        == Transfer.Status.COMPLETED
    )


def test_policy_is_set_by_an_administrator_only(issued):
    before = snapshot()
    with pytest.raises(DomainError) as raised:
        services.transfer_policy_set(
            actor=issued.buyer,  # an operator
            organisation_id=issued.buyer_account.organisation_id,
            require_acceptance=True,
        )
    assert raised.value.status == 403
    assert snapshot() == before


# ---------------------------------------------------------------- batch


def test_batch_transfer_moves_everything_in_one_event(issued):
    items = [(issued.bundles[0].pk, None), (issued.bundles[1].pk, 10), (issued.bundles[2].pk, None)]
    before = last_event_id()
    transfers = services.certificate_transfer_batch(
        actor=issued.producer, to_account_id=issued.buyer_account.pk, items=items
    )
    assert [t.volume_wh for t in transfers] == [
        issued.bundles[0].volume_wh,
        10,
        issued.bundles[2].volume_wh,
    ]
    assert new_events(before) == ["certificate.batch_transferred"]
    held = Bundle.objects.filter(account=issued.buyer_account, status=Bundle.Status.ACTIVE)
    assert sum(b.volume_wh for b in held) == sum(t.volume_wh for t in transfers)


def test_batch_is_all_or_nothing(issued):
    before = snapshot()
    foreign = Bundle.objects.filter(account=issued.neighbour_account).first()
    bad_batches = [
        [(issued.bundles[0].pk, None), (issued.bundles[1].pk, 10**9)],
        [(issued.bundles[0].pk, None), (foreign.pk, None)],
        [(issued.bundles[0].pk, None), (issued.bundles[0].pk, 5)],
        [],
    ]
    for items in bad_batches:
        with pytest.raises(DomainError) as raised:
            services.certificate_transfer_batch(
                actor=issued.producer, to_account_id=issued.buyer_account.pk, items=items
            )
        assert raised.value.status in (400, 403, 409)
    assert snapshot() == before


# ---------------------------------------------------------------- account close guard


def test_an_account_holding_active_bundles_cannot_close(issued):
    admin = holder(issued.buyer_account, role=Membership.Role.ADMIN)
    _transfer(issued, issued.bundles[0])
    with pytest.raises(AccountNotEmpty):
        account_services.account_close(actor=admin, account_id=issued.buyer_account.pk)
    services.certificate_retire(
        actor=issued.buyer,
        items=[(issued.bundles[0].pk, None)],
        beneficiary_name="Buyer",
        beneficiary_country="DE",
        consumption_start=DAY,
        consumption_end=DAY + dt.timedelta(days=1),
        purpose="disclosure",
    )
    account_services.account_close(actor=admin, account_id=issued.buyer_account.pk)
    assert Account.objects.get(pk=issued.buyer_account.pk).status == Account.Status.CLOSED
