"""The public reservation service: units other apps hold (reserve, release, deliver).

The functions append no event of their own (the caller does), so every success here
checks that nothing was queued, and every refusal that nothing changed.
"""

import datetime as dt
from fractions import Fraction

import pytest
from django.db import transaction

from accounts.models import Account
from certificates import errors, services
from certificates.models import Bundle, Transfer
from certificates.storage import bundle_tree_ids
from ledger.services import ledger_append
from registry.errors import DomainError
from tests.certificates.conftest import (
    active_rest,
    last_event_id,
    new_events,
    run_together,
    snapshot,
)
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
from tests.conftest import requires_postgres
from tests.factories import AccountFactory, issuing_body_user

TODAY = dt.datetime.now(dt.UTC).date()


def _reserve(plant, bundle=None, **kwargs):
    with transaction.atomic():
        return services.certificate_units_reserve(
            actor=kwargs.pop("actor", plant.producer),
            bundle_id=(bundle or plant.bundles[0]).pk,
            **kwargs,
        )


def _release(bundle_id: int):
    with transaction.atomic():
        return services.certificate_units_release(bundle_id=bundle_id)


def _deliver(bundle_id: int, to_account_id: int):
    with transaction.atomic():
        return services.certificate_units_deliver(bundle_id=bundle_id, to_account_id=to_account_id)


def _held_wh(root: Bundle) -> int:
    """Units of the root still somewhere (not split): they must always add up to the root."""
    pieces = Bundle.objects.filter(pk__in=bundle_tree_ids([root.pk])).exclude(
        status=Bundle.Status.SPLIT
    )
    return sum(p.volume_wh for p in pieces)


# ---------------------------------------------------------------- reserve


@pytest.mark.django_db
def test_reserving_a_whole_bundle_marks_it_reserved_where_it_is(issued):
    # given a producer's bundle
    bundle = issued.bundles[0]
    before = last_event_id()

    # when the producer reserves all of it
    change = _reserve(issued, bundle)

    # then the bundle itself is reserved, still held by the producer, and no event was queued
    bundle.refresh_from_db()
    assert change.bundle.pk == bundle.pk and change.parent is None and change.rest is None
    assert (bundle.status, bundle.account_id) == (
        Bundle.Status.RESERVED,
        issued.producer_account.pk,
    )
    assert change.subjects() == [change.bundle, ("account", issued.producer_account.pk)]
    assert change.data() == {
        "bundle_id": bundle.pk,
        "device_id": bundle.device_id,
        "moved_bundle_id": bundle.pk,
        "rest_bundle_id": None,
        "unit_start": bundle.unit_start,
        "unit_end": bundle.unit_end,
        "volume_wh": bundle.volume_wh,
    }
    assert new_events(before) == []


@pytest.mark.django_db
def test_reserving_part_of_a_bundle_splits_off_its_first_units(issued):
    # given a bundle
    parent = issued.bundles[3]
    start, end = parent.unit_start, parent.unit_end
    before = last_event_id()

    # when 100 Wh of it are reserved
    change = _reserve(issued, parent, volume_wh=100)

    # then the parent is split: the first 100 units reserved, the rest active, both held here
    parent.refresh_from_db()
    reserved, rest = Bundle.objects.filter(parent=parent).order_by("unit_start")
    assert parent.status == Bundle.Status.SPLIT
    assert (change.parent.pk, change.bundle.pk, change.rest.pk) == (parent.pk, reserved.pk, rest.pk)
    assert (reserved.unit_start, reserved.unit_end, reserved.status) == (
        start,
        start + 100,
        Bundle.Status.RESERVED,
    )
    assert (rest.unit_start, rest.unit_end, rest.status) == (start + 100, end, Bundle.Status.ACTIVE)
    assert {reserved.account_id, rest.account_id} == {issued.producer_account.pk}
    *bundles, account = change.subjects()
    assert [b.pk for b in bundles] == [parent.pk, reserved.pk, rest.pk]
    assert account == ("account", issued.producer_account.pk)
    assert change.data()["rest_bundle_id"] == rest.pk and change.volume_wh == 100
    assert _held_wh(parent) == end - start
    assert new_events(before) == []


@pytest.mark.django_db
def test_reserved_units_cannot_move_be_reserved_again_or_expire(issued):
    # given a reserved bundle, due to expire today
    bundle = issued.bundles[0]
    _reserve(issued, bundle)
    Bundle.objects.filter(pk=bundle.pk).update(expires_on=TODAY)

    # when its holder tries to transfer or reserve it; then both are refused as not active
    with pytest.raises(errors.BundleNotActive):
        services.certificate_transfer(
            actor=issued.producer, bundle_id=bundle.pk, to_account_id=issued.buyer_account.pk
        )
    with pytest.raises(errors.BundleNotActive):
        _reserve(issued, bundle)
    # and the expiry run leaves it to its reservation's outcome
    assert bundle.pk not in services.certificate_expire_due()
    assert Bundle.objects.get(pk=bundle.pk).status == Bundle.Status.RESERVED


def _not_holder(plant):
    return {"actor": plant.buyer}


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
    return {}


def _expired(plant):
    Bundle.objects.filter(pk=plant.bundles[0].pk).update(expires_on=TODAY)
    return {}


def _reserved(plant):
    _reserve(plant)
    return {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("prepare", "kwargs", "error", "status"),
    [
        (_not_holder, {}, errors.NotBundleHolder, 403),
        (_retired, {}, errors.BundleNotActive, 409),
        (_reserved, {}, errors.BundleNotActive, 409),
        (_expired, {}, errors.BundleExpired, 409),
        (lambda p: {}, {"volume_wh": 10**7}, errors.InsufficientVolume, 409),
        (lambda p: {}, {"volume_wh": 0}, errors.InvalidVolume, 400),
        (lambda p: {}, {"volume_wh": True}, errors.InvalidVolume, 400),
        (lambda p: {"bundle": Bundle(pk=10**9)}, {}, errors.BundleNotFound, 404),
    ],
    ids=[
        "not_holder",
        "retired",
        "reserved",
        "expired",
        "too_big",
        "zero",
        "bool",
        "missing",
    ],
)
def test_reserve_refusals_change_nothing(issued, prepare, kwargs, error, status):
    # given a bundle that may not be reserved, for the reason under test
    overrides = prepare(issued)
    before, events_before = snapshot(), last_event_id()

    # when it is reserved; then it is refused with the transfer's code, and nothing changed
    with pytest.raises(error) as refused:
        _reserve(issued, **overrides, **kwargs)
    assert refused.value.status == status
    assert snapshot() == before and new_events(events_before) == []


# ---------------------------------------------------------------- release and deliver


@pytest.mark.django_db
def test_release_makes_the_reservation_active_again_with_its_holder(issued):
    # given 100 Wh reserved from a bundle
    change = _reserve(issued, issued.bundles[2], volume_wh=100)
    before = last_event_id()

    # when the reservation is released
    released = _release(change.bundle.pk)

    # then the piece is active again in the producer's account; the split stays
    piece = Bundle.objects.get(pk=change.bundle.pk)
    assert released.bundle.pk == piece.pk
    assert released.subjects() == [released.bundle, ("account", issued.producer_account.pk)]
    assert (piece.status, piece.account_id) == (Bundle.Status.ACTIVE, issued.producer_account.pk)
    assert _held_wh(issued.bundles[2]) == issued.bundles[2].volume_wh
    assert new_events(before) == []


@pytest.mark.django_db
def test_deliver_makes_the_reservation_active_in_the_receiving_account(issued):
    # given 100 Wh reserved from a bundle
    change = _reserve(issued, issued.bundles[2], volume_wh=100)
    before = last_event_id()

    # when it is delivered to the buyer
    delivered = _deliver(change.bundle.pk, issued.buyer_account.pk)

    # then the buyer holds it, active; the rest stays with the producer; units are conserved
    piece = Bundle.objects.get(pk=change.bundle.pk)
    assert delivered.bundle.pk == piece.pk
    assert delivered.subjects() == [
        delivered.bundle,
        ("account", issued.producer_account.pk),
        ("account", issued.buyer_account.pk),
    ]
    assert (piece.status, piece.account_id) == (Bundle.Status.ACTIVE, issued.buyer_account.pk)
    assert Bundle.objects.get(pk=change.rest.pk).account_id == issued.producer_account.pk
    assert _held_wh(issued.bundles[2]) == issued.bundles[2].volume_wh
    assert new_events(before) == []


def _closed(plant, bundle_id):
    Account.objects.filter(pk=plant.buyer_account.pk).update(status=Account.Status.CLOSED)
    return lambda: _deliver(bundle_id, plant.buyer_account.pk)


def _to_nowhere(plant, bundle_id):
    return lambda: _deliver(bundle_id, 10**9)


def _expired_meanwhile(plant, bundle_id):
    Bundle.objects.filter(pk=bundle_id).update(expires_on=TODAY)
    return lambda: _deliver(bundle_id, plant.buyer_account.pk)


def _release_active(plant, bundle_id):
    return lambda: _release(plant.bundles[5].pk)


def _deliver_active(plant, bundle_id):
    return lambda: _deliver(plant.bundles[5].pk, plant.buyer_account.pk)


def _release_missing(plant, bundle_id):
    return lambda: _release(10**9)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("prepare", "error", "status"),
    [
        (_closed, errors.AccountClosed, 409),
        (_to_nowhere, errors.AccountNotFoundForTransfer, 404),
        (_expired_meanwhile, errors.BundleExpired, 409),
        (_release_active, errors.BundleNotReserved, 409),
        (_deliver_active, errors.BundleNotReserved, 409),
        (_release_missing, errors.BundleNotFound, 404),
    ],
    ids=["closed", "no_account", "expired", "release_active", "deliver_active", "missing"],
)
def test_release_and_deliver_refusals_change_nothing(issued, prepare, error, status):
    # given a reservation, and a reason to refuse
    change = _reserve(issued, issued.bundles[2], volume_wh=100)
    call = prepare(issued, change.bundle.pk)
    before, events_before = snapshot(), last_event_id()

    # when / then
    with pytest.raises(error) as refused:
        call()
    assert refused.value.status == status
    assert snapshot() == before and new_events(events_before) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "call",
    [
        lambda: services.certificate_units_reserve(actor="system:test", bundle_id=1),
        lambda: services.certificate_units_release(bundle_id=1),
        lambda: services.certificate_units_deliver(bundle_id=1, to_account_id=1),
    ],
    ids=["reserve", "release", "deliver"],
)
def test_outside_a_transaction_every_function_is_refused(call):
    # when called in autocommit; then refused before touching a row
    with pytest.raises(errors.UnitsChangeOutsideTransaction) as refused:
        call()
    assert refused.value.status == 500


@pytest.mark.django_db
def test_a_caller_names_the_change_in_its_own_event_and_units_are_conserved(issued):
    # given a caller (as the market will be) reserving, then delivering and releasing
    root = issued.bundles[4]
    before = last_event_id()
    with transaction.atomic():
        change = services.certificate_units_reserve(
            actor=issued.producer, bundle_id=root.pk, volume_wh=300
        )
        ledger_append(
            kind="test.units_reserved",
            actor=issued.producer,
            subject=change.subjects(),
            data={"units": change.data()},
        )
    second = _reserve(issued, change.rest, volume_wh=50)

    # when one reservation is delivered and the other released
    _deliver(change.bundle.pk, issued.buyer_account.pk)
    _release(second.bundle.pk)

    # then the caller's event is the only one, and every unit of the root is held once
    assert new_events(before) == ["test.units_reserved"]
    assert _held_wh(root) == root.volume_wh
    pieces = Bundle.objects.filter(pk__in=bundle_tree_ids([root.pk])).exclude(
        status=Bundle.Status.SPLIT
    )
    assert sorted((p.account_id, p.volume_wh, p.status) for p in pieces) == sorted(
        [
            (issued.buyer_account.pk, 300, Bundle.Status.ACTIVE),
            (issued.producer_account.pk, 50, Bundle.Status.ACTIVE),
            (issued.producer_account.pk, root.volume_wh - 350, Bundle.Status.ACTIVE),
        ]
    )


@pytest.mark.django_db
def test_a_pending_transfer_is_a_reservation_settled_by_deliver_or_release(issued):
    # given two pending transfers (the buyer's organisation asks for acceptance)
    first, second = (
        services.certificate_transfer(
            actor=issued.producer,
            bundle_id=issued.bundles[i].pk,
            to_account_id=issued.buyer_account.pk,
            volume_wh=10,
            require_acceptance=True,
        )
        for i in (0, 1)
    )
    assert Bundle.objects.get(pk=first.bundle_id).status == Bundle.Status.RESERVED

    # when one is accepted and the other rejected
    services.certificate_transfer_accept(actor=issued.buyer, transfer_id=first.pk)
    services.certificate_transfer_reject(actor=issued.buyer, transfer_id=second.pk)

    # then the accepted units are the buyer's, the rejected ones the producer's again
    assert Bundle.objects.get(pk=first.bundle_id).account_id == issued.buyer_account.pk
    assert Bundle.objects.get(pk=second.bundle_id).account_id == issued.producer_account.pk
    assert set(Transfer.objects.values_list("status", flat=True)) == {
        Transfer.Status.ACCEPTED,
        Transfer.Status.REJECTED,
    }


# ---------------------------------------------------------------- races (PostgreSQL)

RACERS = 10


@pytest.fixture
def race_bundle():
    """A producer's 1,000 Wh bundle, an issuing body, and a receiving account."""
    device, (account,) = device_with_owners([Fraction(1)])
    add_readings(device, hours=1, wh=lambda i: 1_000)
    services.certificate_issue(
        actor=issuing_body_user(),
        device_id=device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(hours=1),
    )
    bundle = Bundle.objects.get(account=account)
    return bundle, account, holder(account), AccountFactory()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_reservations_of_one_bundle_never_over_reserve_it(race_bundle):
    # given a 1,000 Wh bundle and ten callers who each want 150 Wh, retrying on the rest
    bundle, account, producer, _receiver = race_bundle

    def work(i: int):
        for _attempt in range(200):
            rest = active_rest(bundle, account)
            if rest is None:
                return "nothing left"
            try:
                with transaction.atomic():
                    return services.certificate_units_reserve(
                        actor=producer, bundle_id=rest.pk, volume_wh=150
                    )
            except errors.BundleNotActive:
                continue  # another caller split it first: look again
        return "gave up"

    # when all reserve at once
    results = run_together(work, n=RACERS)

    # then six reservations of 150 Wh fit; the others are refused; no unit is reserved twice
    won = [r for r in results if isinstance(r, services.UnitsChange)]
    assert len(won) == 6, results
    assert all(
        isinstance(r, errors.InsufficientVolume) or r == "nothing left"
        for r in results
        if not isinstance(r, services.UnitsChange)
    ), results
    pieces = Bundle.objects.filter(pk__in=bundle_tree_ids([bundle.pk])).exclude(
        status=Bundle.Status.SPLIT
    )
    at = bundle.unit_start
    for start, end in sorted((p.unit_start, p.unit_end) for p in pieces):
        assert start == at, "pieces overlap or leave a gap"
        at = end
    assert at == bundle.unit_end
    assert sum(p.volume_wh for p in pieces if p.status == Bundle.Status.RESERVED) == 900
    assert sum(p.volume_wh for p in pieces) == 1_000


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_release_and_deliver_of_one_reservation_race_and_exactly_one_wins(race_bundle):
    # given one reservation of 400 Wh
    bundle, account, producer, receiver = race_bundle
    with transaction.atomic():
        change = services.certificate_units_reserve(
            actor=producer, bundle_id=bundle.pk, volume_wh=400
        )

    # when ten callers at once release it (even) or deliver it (odd)
    def work(i: int):
        with transaction.atomic():
            if i % 2:
                return "delivered", services.certificate_units_deliver(
                    bundle_id=change.bundle.pk, to_account_id=receiver.pk
                )
            return "released", services.certificate_units_release(bundle_id=change.bundle.pk)

    results = run_together(work, n=RACERS)

    # then exactly one settles it; every other caller is told it is no longer reserved
    won = [r for r in results if isinstance(r, tuple)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == RACERS - 1, results
    assert {type(e) for e in lost} == {errors.BundleNotReserved}
    piece = Bundle.objects.get(pk=change.bundle.pk)
    expected = receiver.pk if won[0][0] == "delivered" else account.pk
    assert (piece.status, piece.account_id) == (Bundle.Status.ACTIVE, expected)
    assert _held_wh(bundle) == 1_000
