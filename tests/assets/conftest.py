import pytest

from accounts.models import Membership
from assets.models import Reading, ReadingBatch
from tests.assets.factories import (
    DeviceFactory,
    GridAreaFactory,
    MeterFactory,
    add_key,
    signing_key,
)
from tests.factories import OrganisationFactory, auditor_user, issuing_body_user, member_of


@pytest.fixture
def producer_org(db):
    return OrganisationFactory(legal_name="Sunny Rooftops Cooperative eG")


@pytest.fixture
def producer(producer_org):
    return member_of(producer_org, role=Membership.Role.OPERATOR)


@pytest.fixture
def issuer(db):
    return issuing_body_user()


@pytest.fixture
def auditor(db):
    return auditor_user()


@pytest.fixture
def grid_area(db):
    return GridAreaFactory()


@pytest.fixture
def device(producer_org, grid_area):
    return DeviceFactory(organisation=producer_org, grid_area=grid_area)


@pytest.fixture
def key():
    return signing_key(7)


@pytest.fixture
def meter(device, key):
    meter = MeterFactory(device=device, serial="SRC-PV-0001")
    add_key(meter, key)
    return meter


@pytest.fixture
def stored():
    """(readings, batches) stored so far."""

    def count() -> tuple[int, int]:
        return Reading.objects.count(), ReadingBatch.objects.count()

    return count


@pytest.fixture
def snapshot(ledger_pending_count):
    """Row counts of every assets table plus ledger events, to show nothing changed."""
    from assets import models

    names = ["GridArea", "Device", "DeviceOwner", "Meter", "MeterKey", "ReadingBatch",
             "Reading", "PendingReading"]  # fmt: skip

    def take() -> dict[str, int]:
        counts = {name: getattr(models, name).objects.count() for name in names}
        counts["ledger_events"] = ledger_pending_count()
        return counts

    return take
