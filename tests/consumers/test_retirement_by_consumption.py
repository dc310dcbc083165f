"""A household's standing retirement retires, hour by hour, what its site's import meters
consumed (the consumers app's lookup on `contracts.consumption_lookups`); another
organisation's retirement for the household's site needs a `supply` grant."""

import datetime as dt
from fractions import Fraction

import pytest

from accounts.models import Membership
from assets.models import Reading, ReadingBatch
from certificates import services as certificates
from certificates.models import Bundle, Retirement
from consumers.models import Consent, DataAccess
from contracts import services
from contracts.kinds.retirement import STANDING_RETIREMENT
from contracts.models import ContractExecution
from tests.certificates.factories import DAY, add_readings, device_with_owners
from tests.consumers.factories import SiteFactory, consent, site_meter
from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user, member_of

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
PERIOD = f"{DAY.year:04d}-{DAY.month:02d}"
AFTER = DAY + dt.timedelta(days=40)  # the month is over: the execution may run
PRODUCED = [1_000, 1_000, 1_000, 1_000, 1_000, 1_000]  # Wh per hour from DAY


def _household_with_plant_and_meter(consumed):
    """A confirmed site whose import meter read `consumed` (Wh per 15 minutes, None =
    missing) and a rooftop plant of the household whose certificates were issued."""
    site = SiteFactory()
    household = site.household.organisation
    link = site_meter(site)
    for i, wh in enumerate(consumed):
        if wh is not None:
            _quarter(link.meter, DAY + i * dt.timedelta(minutes=15), wh)
    plant, (account,) = device_with_owners([Fraction(1)], producer=household)
    add_readings(plant, hours=len(PRODUCED), wh=lambda i: PRODUCED[i])
    certificates.certificate_issue(
        actor=issuing_body_user(),
        device_id=plant.pk,
        period_start=DAY,
        period_end=DAY + len(PRODUCED) * HOUR,
    )
    return site, link, account


def _quarter(meter, start, wh):
    batch = ReadingBatch.objects.create(
        organisation=meter.device.organisation,
        device=meter.device,
        meter=meter,
        status=ReadingBatch.Status.ACCEPTED,
        size=1,
        merkle_root="0" * 64,
    )
    Reading.objects.create(
        device=meter.device,
        meter=meter,
        batch=batch,
        index_in_batch=0,
        start=start,
        end=start + dt.timedelta(minutes=15),
        wh=wh,
    )


def _standing(actor, account, **terms):
    contract = services.contract_create(
        actor=actor,
        kind=STANDING_RETIREMENT,
        terms={
            "account": account.number,
            "beneficiary_name": "Alex Example",
            "beneficiary_country": "DE",
            "purpose": "disclosure",
        }
        | terms,
        start_at=DAY - dt.timedelta(days=1),
        end_at=DAY + dt.timedelta(days=365),
    )
    services.contract_agree(actor=actor, contract_id=contract.pk)
    return contract


# 15-minute readings per hour: hour 0 = 700 Wh, hour 1 = 1,200 Wh (more than produced),
# hour 2 misses a quarter, hour 3 consumed 0, hours 4 and 5 have no readings at all.
CONSUMED = [175] * 4 + [300] * 4 + [100, None, 100, 100] + [0] * 4


def test_a_households_standing_retirement_retires_its_metered_consumption_hour_by_hour():
    # given
    site, _link, account = _household_with_plant_and_meter(CONSUMED)
    person = member_of(site.household.organisation, Membership.Role.ADMIN)
    contract = _standing(person, account)

    # when
    dry = services.contract_dry_run(contract_id=contract.pk, period=PERIOD)
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{PERIOD}", now=AFTER
    )

    # then: each hour retires min(held, consumed) of that hour's certificates only
    assert execution.status == "applied", execution.reason_detail
    assert dry["would_do"]["volume_wh"] == 700 + 1_000
    retirements = Retirement.objects.filter(account=account)
    by_hour = {r.consumption_start: r.volume_wh for r in retirements}
    assert by_hour == {DAY: 700, DAY + HOUR: 1_000}
    assert all(r.consumption_end - r.consumption_start == HOUR for r in retirements)
    assert len(execution.result["retirements"]) == 2
    # and the hours without complete readings retired nothing, with their reason
    skipped = execution.result["hours_skipped"]
    assert [row[1] for row in skipped] == ["no_readings"] * 3
    assert [dt.datetime.fromisoformat(row[0].replace("Z", "+00:00")) for row in skipped] == [
        DAY + 2 * HOUR,
        DAY + 4 * HOUR,
        DAY + 5 * HOUR,
    ]
    retired = Bundle.objects.filter(account=account, status=Bundle.Status.RETIRED)
    assert sum(b.unit_end - b.unit_start for b in retired) == 1_700
    # and the household read its own data: no access record
    assert not DataAccess.objects.exists()


def test_the_monthly_cap_still_bounds_the_hourly_retirements():
    # given
    site, _link, account = _household_with_plant_and_meter(CONSUMED)
    person = member_of(site.household.organisation, Membership.Role.ADMIN)
    contract = _standing(person, account, max_wh_per_month=1_000)

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{PERIOD}", now=AFTER
    )

    # then: hour 0 in full, hour 1 up to the cap
    assert execution.status == "applied"
    assert [row[1] for row in execution.result["hours_retired"]] == [700, 300]


def _supplier_world(**consent_kwargs):
    site, link, household_account = _household_with_plant_and_meter(CONSUMED)
    supplier = OrganisationFactory(legal_name="Green Supply GmbH")
    account = AccountFactory(organisation=supplier)
    # the household moved its certificates to its supplier (through the service, so that
    # the ledger, and the subject audit's replay, know where they are)
    household = member_of(household_account.organisation, Membership.Role.ADMIN)
    for bundle in Bundle.objects.filter(account=household_account):
        certificates.certificate_transfer(
            actor=household, bundle_id=bundle.pk, to_account_id=account.pk
        )
    if consent_kwargs is not None:
        consent(site, supplier, [link], **consent_kwargs)
    person = member_of(supplier, Membership.Role.ADMIN)
    contract = _standing(person, account, metering_point=site.metering_point_id)
    return site, supplier, account, contract


def test_a_suppliers_retirement_for_the_households_site_reads_under_a_supply_grant():
    # given
    site, supplier, _account, contract = _supplier_world(purpose=Consent.Purpose.SUPPLY)

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{PERIOD}", now=AFTER
    )

    # then: the same hourly matching, and the household sees the read in its access log
    assert execution.status == "applied", execution.reason_detail
    assert [row[1] for row in execution.result["hours_retired"]] == [700, 1_000]
    access = DataAccess.objects.get()
    assert (access.outcome, access.reader_organisation_id, access.what) == (
        "granted",
        supplier.pk,
        "standing_retirement",
    )
    assert access.reader_id is None
    assert access.site_id == site.pk


@pytest.mark.parametrize("grant", [None, {"purpose": Consent.Purpose.ADVICE}])
def test_a_suppliers_retirement_without_a_supply_grant_fails_and_retires_nothing(grant):
    # given: no grant, or a grant for another purpose
    _site, _supplier, account, contract = _supplier_world(**(grant or {}))
    if grant is None:
        Consent.objects.all().delete()

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{PERIOD}", now=AFTER
    )

    # then
    assert execution.status in (ContractExecution.Status.FAILED, ContractExecution.Status.PARKED)
    assert execution.reason_code == "consent_required"
    assert not Bundle.objects.filter(account=account, status=Bundle.Status.RETIRED).exists()


def test_an_account_no_household_holds_keeps_the_monthly_retirement():
    # given: a company's account, no sites
    company = OrganisationFactory()
    plant, (account,) = device_with_owners([Fraction(1)], producer=company)
    add_readings(plant, hours=2, wh=lambda i: 500)
    certificates.certificate_issue(
        actor=issuing_body_user(), device_id=plant.pk, period_start=DAY, period_end=DAY + 2 * HOUR
    )
    contract = _standing(member_of(company, Membership.Role.ADMIN), account)

    # when
    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{PERIOD}", now=AFTER
    )

    # then
    assert execution.status == "applied"
    assert execution.result["volume_wh"] == 1_000
    assert "matching" not in execution.result
