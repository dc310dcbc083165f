"""The hand-written SQL of the transfer path reads and writes what the ORM would."""

import datetime as dt

import pytest

from accounts.models import Membership, Organisation
from accounts.permissions import user_can_act_for
from certificates import storage
from certificates.models import Bundle, Transfer, TransferPolicy
from certificates.services import certificate_transfer
from tests.certificates.factories import DAY
from tests.conftest import requires_postgres
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
FIELDS = [
    "id",
    "device_id",
    "issuance_id",
    "account_id",
    "parent_id",
    "unit_start",
    "unit_end",
    "period_start",
    "period_end",
    "expires_on",
    "status",
]


def _row(bundle: Bundle) -> tuple:
    return tuple(getattr(bundle, name) for name in FIELDS)


def _child(parent: Bundle, account_id: int, offset: int, volume_wh: int) -> Bundle:
    """An unsaved active bundle of `volume_wh` units of `parent`, from `offset` on."""
    return Bundle(
        device_id=parent.device_id,
        issuance_id=parent.issuance_id,
        account_id=account_id,
        parent_id=parent.pk,
        unit_start=parent.unit_start + offset,
        unit_end=parent.unit_start + offset + volume_wh,
        period_start=parent.period_start,
        period_end=parent.period_end,
        expires_on=parent.expires_on,
        status=Bundle.Status.ACTIVE,
    )


@pytest.mark.parametrize("org_status", Organisation.Status.values)
@pytest.mark.parametrize("role", [None, *Membership.Role.values])
def test_holder_may_move_is_user_can_act_for(issued, org_status, role):
    # given a bundle's holder organisation in some status, and a user with some role in it
    organisation = issued.producer_account.organisation
    Organisation.objects.filter(pk=organisation.pk).update(status=org_status)
    organisation.refresh_from_db()
    user = UserFactory()
    if role is not None:
        MembershipFactory(user=user, organisation=organisation, role=role)
    bundle = issued.bundles[0]
    # when the lock reads the permission
    held = storage.bundles_lock_for_move([bundle.pk], user.pk)[bundle.pk]
    # then it agrees with the shared permission function
    assert held.may_move == user_can_act_for(user, organisation)
    assert held.may_move == (role in ("operator", "admin") and org_status == "approved")


def test_lock_reads_bundles_as_the_orm_does(issued):
    ids = [b.pk for b in issued.bundles[:5]][::-1]
    held = storage.bundles_lock_for_move(ids, issued.producer.pk)
    assert list(held) == sorted(ids)
    for pk, item in held.items():
        orm = Bundle.objects.get(pk=pk)
        assert _row(item.bundle) == _row(orm)
        assert isinstance(item.bundle.period_start, dt.datetime)
        assert item.bundle.period_start.tzinfo is not None
        assert item.account.pk == orm.account_id
        assert item.account.number == orm.account.number
        assert item.account.organisation_id == orm.account.organisation_id
        assert (item.account.kind, item.account.status) == (orm.account.kind, orm.account.status)
        assert item.may_move
        # one bundle alone takes the prepared statement (PostgreSQL): the same row
        (alone,) = storage.bundles_lock_for_move([pk], issued.producer.pk).values()
        assert (_row(alone.bundle), alone.account.number, alone.may_move) == (
            _row(item.bundle),
            item.account.number,
            item.may_move,
        )
    assert storage.bundles_lock_for_move([10**9], issued.producer.pk) == {}


@pytest.mark.parametrize("pk", [0, -1, 2**63, 2**70])
def test_an_id_beyond_bigint_locks_nothing(issued, pk):
    # given an id no bigint column holds (a path segment like 096873076066975131074)
    # then the locks find nothing, on PostgreSQL not an out-of-range error from the
    # prepared statement's bigint parameter
    assert storage.bundles_lock_for_move([pk], issued.producer.pk) == {}
    assert storage.bundles_lock_for_move([pk, issued.bundles[0].pk], issued.producer.pk).keys() == {
        issued.bundles[0].pk
    }
    assert storage.account_lock_for_receiving(account_id=pk) is None


def test_receiving_account_and_its_policy(issued):
    account, policy = storage.account_lock_for_receiving(account_id=issued.buyer_account.pk)
    assert (account.pk, account.number, account.is_open, policy) == (
        issued.buyer_account.pk,
        issued.buyer_account.number,
        True,
        False,
    )
    TransferPolicy.objects.create(
        organisation=issued.buyer_account.organisation, require_acceptance=True
    )
    assert storage.account_lock_for_receiving(account_id=issued.buyer_account.pk)[1] is True
    assert storage.account_lock_for_receiving(account_id=10**9) is None
    by_number = storage.account_lock_for_receiving(number=issued.buyer_account.number)
    assert by_number[0].pk == issued.buyer_account.pk
    assert storage.account_lock_for_receiving(number="GP-NOPE") is None


def test_inserts_and_updates_write_what_the_orm_reads_back(issued):
    parent = issued.bundles[0]
    children = [
        _child(parent, account.pk, offset, 5)
        for offset, account in ((0, issued.buyer_account), (5, issued.producer_account))
    ]
    storage.bundles_insert(children)
    for child in children:
        assert child.pk and _row(Bundle.objects.get(pk=child.pk)) == _row(child)
    storage.bundles_update([parent.pk], status=Bundle.Status.SPLIT)
    storage.bundles_update(
        [children[0].pk], status=Bundle.Status.RESERVED, account_id=issued.own_second_account.pk
    )
    assert Bundle.objects.get(pk=parent.pk).status == Bundle.Status.SPLIT
    moved = Bundle.objects.get(pk=children[0].pk)
    assert (moved.status, moved.account_id) == (
        Bundle.Status.RESERVED,
        issued.own_second_account.pk,
    )
    transfer = Transfer(
        bundle=children[0],
        source=parent,
        from_account=issued.producer_account,
        to_account=issued.buyer_account,
        volume_wh=5,
        status=Transfer.Status.COMPLETED,
        created_by=issued.producer,
        created_at=DAY,
    )
    storage.transfers_insert([transfer])
    stored = Transfer.objects.get(pk=transfer.pk)
    assert (stored.bundle_id, stored.volume_wh, stored.created_at, stored.created_by_id) == (
        children[0].pk,
        5,
        DAY,
        issued.producer.pk,
    )


@pytest.mark.parametrize("count", [1, 2, 3])
def test_inserts_of_any_length_give_ids_in_order(issued, count):
    """Up to PREPARED_INSERT_ROWS rows go as a prepared statement, more as a plain one."""
    parent = issued.bundles[0]
    children = [_child(parent, issued.buyer_account.pk, i, 1) for i in range(count)]
    storage.bundles_insert(children)
    ids = [child.pk for child in children]
    assert ids == sorted(ids)
    assert [_row(b) for b in Bundle.objects.filter(pk__in=ids).order_by("pk")] == [
        _row(c) for c in children
    ]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_transfer_runs_its_statements_prepared_and_the_same_plain(issued, settings):
    """The transfer's locks and inserts are prepared statements; switched off
    (DATABASE_PREPARED_STATEMENTS) the plain ones store the same."""
    from django.db import connection

    connection.close()  # a new server session: nothing prepared on it
    outcomes = []
    for prepared in (True, False):
        settings.DATABASE_PREPARED_STATEMENTS = prepared
        bundle = issued.bundles[len(outcomes)]
        transfer = certificate_transfer(
            actor=issued.producer,
            bundle_id=bundle.pk,
            to_account_number=issued.buyer_account.number,
            volume_wh=1,
        )
        moved = Bundle.objects.get(pk=transfer.bundle_id)
        outcomes.append(
            (
                transfer.volume_wh,
                transfer.source_id == bundle.pk,
                moved.account_id,
                moved.unit_end - moved.unit_start,
                Bundle.objects.filter(parent_id=bundle.pk).count(),
                Bundle.objects.get(pk=bundle.pk).status,
            )
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements")
            names = {name for (name,) in cursor.fetchall()}
        assert names >= {
            "gp_bundle_lock_for_move",
            "gp_account_lock_receiving_by_number",
            "gp_certificates_bundle_insert_2",
            "gp_certificates_transfer_insert_1",
        }
    expected = (1, True, issued.buyer_account.pk, 1, 2, Bundle.Status.SPLIT)
    assert outcomes == [expected, expected]
