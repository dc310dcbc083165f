import datetime as dt
import threading
from collections.abc import Callable
from fractions import Fraction
from types import SimpleNamespace

import pytest
from django.db import connection

from accounts.models import Account
from certificates import services
from certificates.models import Bundle, Issuance, Retirement, Transfer, Withdrawal
from ledger.models import PendingEvent
from tests.certificates.factories import DAY, add_readings, device_with_owners, holder
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user


def snapshot() -> dict:
    """Every certificate row that matters plus the queued ledger events: equal before and
    after a refused call means nothing changed."""
    from ledger.models import LedgerEntry

    return {
        "bundles": list(
            Bundle.objects.order_by("pk").values_list(
                "pk", "account_id", "status", "unit_start", "unit_end", "parent_id"
            )
        ),
        "transfers": list(Transfer.objects.order_by("pk").values_list("pk", "status")),
        "retirements": Retirement.objects.count(),
        "withdrawals": Withdrawal.objects.count(),
        "issuances": Issuance.objects.count(),
        "accounts": list(Account.objects.order_by("pk").values_list("pk", "status")),
        "events": PendingEvent.objects.count() + LedgerEntry.objects.count(),
    }


def new_events(before: int) -> list[str]:
    return list(
        PendingEvent.objects.filter(pk__gt=before).order_by("pk").values_list("kind", flat=True)
    )


def last_event_id() -> int:
    return PendingEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


@pytest.fixture
def ib_user():
    return issuing_body_user()


@pytest.fixture
def plant(ib_user):
    """A co-owned PV plant (2/3 producer, 1/3 a neighbour) with a day of hourly readings."""
    device, (producer_account, neighbour_account) = device_with_owners(
        [Fraction(2, 3), Fraction(1, 3)]
    )
    add_readings(device)
    return SimpleNamespace(
        device=device,
        producer_account=producer_account,
        neighbour_account=neighbour_account,
        producer=holder(producer_account),
        neighbour=holder(neighbour_account),
        ib=ib_user,
    )


@pytest.fixture
def issued(plant):
    """The plant's day issued hourly: 24 periods x 2 owners."""
    plant.issuance = services.certificate_issue(
        actor=plant.ib,
        device_id=plant.device.pk,
        period_start=DAY,
        period_end=DAY + dt.timedelta(days=1),
    )
    plant.bundles = list(
        Bundle.objects.filter(account=plant.producer_account).order_by("period_start")
    )
    buyer_org = OrganisationFactory(legal_name="GreenBuy Energy GmbH", is_producer=False)
    plant.buyer_account = AccountFactory(organisation=buyer_org)
    plant.buyer = holder(plant.buyer_account)
    plant.own_second_account = AccountFactory(organisation=plant.producer_account.organisation)
    return plant


THREADS = 20


def run_together(work: Callable[[int], object], n: int = THREADS) -> list[object]:
    """Run work(i) in n threads released at once; each result or the exception raised."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def active_rest(root: Bundle, account: Account) -> Bundle | None:
    """The account's highest active piece of root, read in one statement.

    One statement is one snapshot. Reading the split tree first and the pieces second
    would race a concurrent split between the two: the tree would name the old rest, now
    split, and not its new pieces, and a caller would see "nothing left" while there is.
    Live pieces of one device never overlap, so root's unit range finds its pieces.
    """
    return (
        Bundle.objects.filter(
            device_id=root.device_id,
            unit_start__gte=root.unit_start,
            unit_end__lte=root.unit_end,
            account=account,
            status=Bundle.Status.ACTIVE,
        )
        .order_by("-unit_start")
        .first()
    )


@pytest.fixture
def race_world():
    """A 1,000 Wh bundle of a producer, an issuing body, and THREADS receiving accounts."""
    device, (account,) = device_with_owners([Fraction(1)])
    add_readings(device, hours=2, wh=lambda i: 1_000)
    ib = issuing_body_user()
    services.certificate_issue(
        actor=ib, device_id=device.pk, period_start=DAY, period_end=DAY + dt.timedelta(hours=2)
    )
    first = Bundle.objects.filter(account=account).order_by("pk").first()
    receivers = [AccountFactory() for _ in range(THREADS)]
    return device, account, holder(account), first, receivers, ib
