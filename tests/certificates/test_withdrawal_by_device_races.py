"""Real threads against PostgreSQL: a withdrawal by device and period misses no piece that
a concurrent transfer split off, and runs once when asked twice at the same moment."""

import datetime as dt

import pytest

from certificates import errors, services
from certificates.models import Bundle, Transfer, Withdrawal
from certificates.replay import replay_ledger
from certificates.storage import bundle_tree_ids
from registry.errors import DomainError
from tests.certificates.conftest import run_together
from tests.certificates.factories import DAY
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
HOUR = dt.timedelta(hours=1)


def _withdraw(ib, device):
    return services.certificate_withdraw_for_device(
        actor=ib, device_id=device.pk, period_start=DAY, period_end=DAY + HOUR, reason="race"
    )


def test_a_withdrawal_racing_transfers_leaves_no_live_piece(race_world):
    # given a 1,000 Wh hour; one thread withdraws the device's hour, nine transfer from it
    device, _account, producer, bundle, receivers, ib = race_world

    def work(i: int):
        if i == 0:
            return _withdraw(ib, device)
        return services.certificate_transfer(
            actor=producer, bundle_id=bundle.pk, to_account_id=receivers[i].pk, volume_wh=100
        )

    # when
    results = run_together(work, n=10)

    # then the withdrawal ran, whichever transfer got in first, and every piece of the hour
    # (the sold one too) is withdrawn; the losers were refused, nothing else changed
    assert isinstance(results[0], services.DeviceWithdrawal), results[0]
    refused = [r for r in results[1:] if isinstance(r, DomainError)]
    assert {type(e) for e in refused} <= {errors.BundleNotActive}
    assert Transfer.objects.count() == 9 - len(refused) <= 1
    pieces = Bundle.objects.filter(pk__in=bundle_tree_ids([bundle.pk])).exclude(
        status=Bundle.Status.SPLIT
    )
    assert {p.status for p in pieces} == {Bundle.Status.WITHDRAWN}
    assert sum(p.volume_wh for p in pieces) == 1_000 == results[0].withdrawal.volume_wh
    assert replay_ledger().ok


def test_two_withdrawals_of_one_period_at_once_withdraw_once(race_world):
    # given
    device, *_rest, ib = race_world

    # when
    results = run_together(lambda i: _withdraw(ib, device), n=6)

    # then one wins, the others find nothing left (409), and one withdrawal exists
    won = [r for r in results if isinstance(r, services.DeviceWithdrawal)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == 5, results
    assert {e.code for e in lost} == {"nothing_to_withdraw"}
    assert Withdrawal.objects.count() == 1
    assert replay_ledger().ok
