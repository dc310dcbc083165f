"""Races on PostgreSQL: a community sharing period and the operator's own distribution
of the same hours at once; one period executed from several workers."""

import datetime as dt

import pytest

from certificates.models import Bundle
from consumers import services as consumers
from consumers.models import CommunityDistribution
from contracts import services
from contracts.models import ContractExecution
from tests.certificates.conftest import run_together
from tests.certificates.factories import DAY
from tests.conftest import requires_postgres
from tests.contracts.community_world import HOURS, PRODUCTION, active, held, make_world


def _conserved(world) -> None:
    """Every hour distributed once, and every issued Wh held by exactly one account."""
    assert CommunityDistribution.objects.count() == HOURS
    accounts = [world.operator_account.pk, *(m.account_id for m in world.members)]
    assert sum(held(a) for a in accounts) == sum(PRODUCTION)
    assert not Bundle.objects.filter(status=Bundle.Status.RESERVED).exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_one_period_executed_by_several_workers_applies_once():
    # given
    world = make_world()
    contract = active(world, granularity="day")
    trigger = f"day:{DAY:%Y-%m-%d}"

    # when
    results = run_together(
        lambda i: services.contract_execute(contract_id=contract.pk, trigger=trigger), n=4
    )

    # then
    assert [r for r in results if isinstance(r, Exception)] == []
    applied = [r for r in results if isinstance(r, ContractExecution)]
    assert [r.status for r in applied] == ["applied"]
    assert results.count(None) == 3
    _conserved(world)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_period_and_the_operators_own_distribution_at_once_distribute_each_hour_once():
    # given
    world = make_world()
    contract = active(world, granularity="day")
    trigger = f"day:{DAY:%Y-%m-%d}"

    def work(i: int):
        if i % 2:
            return consumers.community_certificates_distribute(
                actor=world.operator,
                community_id=world.community.pk,
                start=DAY,
                end=DAY + dt.timedelta(hours=HOURS),
            )
        return services.contract_execute(contract_id=contract.pk, trigger=trigger)

    # when
    results = run_together(work, n=4)

    # then: whoever came first distributed the hours (the community row queues them); the
    # contract's period applied, or was refused for want of anything left to distribute
    assert [r for r in results if isinstance(r, Exception)] == []
    (execution,) = ContractExecution.objects.filter(contract=contract)
    assert (execution.status, execution.reason_code) in {
        ("applied", ""),
        ("parked", "no_certificates"),
    }
    _conserved(world)
