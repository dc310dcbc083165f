"""Storage balancing days against the issuance of the same days' solar, in one run
(PostgreSQL).

Each of N communities has a rooftop plant (hourly readings, 10:00-14:00 UTC) and a battery
with a charge and a discharge meter (charging at midday, discharging in the evening); a
`storage_balancing` contract moves the plant's certificates through the battery. Day by
day, interleaved: the baseline issues each plant's day (24 hourly periods, the plant's
certificates: `certificate_issue`); then each battery's day is executed (`contract_execute`:
plan, cancel the charge's certificates, layers, storage issuance with origins, state of
charge, one event). Prints both rates and the ratio of the storage day to the issuance it
follows, then checks the invariants (every day applied, certified <= cancelled x
efficiency, the storage replay agrees).

    DATABASE_URL=postgres://…/gp_bench python benchmarks/storage_bench.py [--smoke]
"""

import argparse
import datetime as dt
import os
import time
from decimal import Decimal
from fractions import Fraction

import support

SOLAR = {10: 5_000, 11: 6_000, 12: 6_500, 13: 5_500}
CHARGE = {10: 3_000, 11: 4_000, 12: 4_500, 13: 3_500}
DISCHARGE = {18: 3_000, 19: 3_500, 20: 3_500, 21: 3_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batteries", type=int, default=20)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--smoke", action="store_true", help="tiny: 2 batteries x 2 days")
    args = parser.parse_args()
    support.apply_smoke(args, batteries=2, days=2)
    os.environ.pop("CELERY_BROKER_URL", None)
    cfg = support.ensure_database()
    support.recreate_database(cfg)
    support.setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Membership
    from assets.models import Meter
    from certificates import services as certificates
    from contracts import services
    from contracts.models import ContractExecution
    from contracts.replay import replay_storage
    from tests.certificates.factories import MeterFactory, add_readings, device_with_owners
    from tests.certificates.factories import holder as member
    from tests.factories import OrganisationFactory, issuing_body_user

    first = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    ib = issuing_body_user()
    fleet = []
    for _ in range(args.batteries):
        org = OrganisationFactory()
        plant, (account,) = device_with_owners([Fraction(1)], producer=org)
        battery, (storage_account,) = device_with_owners(
            [Fraction(1)],
            producer=org,
            is_storage=True,
            storage_capacity_wh=50_000,
            round_trip_efficiency=Decimal("0.9"),
        )
        charge = MeterFactory(device=battery, kind=Meter.Kind.CONSUMPTION)
        discharge = MeterFactory(device=battery, kind=Meter.Kind.STORAGE)
        hours = 24 * args.days
        add_readings(plant, start=first, hours=hours, wh=lambda i: SOLAR.get(i % 24, 0))
        add_readings(
            battery, start=first, hours=hours, wh=lambda i: CHARGE.get(i % 24, 0), meter=charge
        )
        add_readings(
            battery,
            start=first,
            hours=hours,
            wh=lambda i: DISCHARGE.get(i % 24, 0),
            meter=discharge,
        )
        operator = member(storage_account, Membership.Role.ADMIN)
        contract = services.contract_create(
            actor=operator,
            kind="storage_balancing",
            terms={
                "device_id": battery.pk,
                "charge_account": account.number,
                "storage_account": storage_account.number,
                "efficiency_ppm": 900_000,
                "capacity_wh": 50_000,
            },
            start_at=first,
            end_at=first + dt.timedelta(days=400),
        )
        services.contract_agree(actor=operator, contract_id=contract.pk)
        fleet.append((plant, contract))

    spent = {"issuance alone": 0.0, "storage day": 0.0}
    for d in range(args.days):
        start = first + dt.timedelta(days=d)
        began = time.perf_counter()
        for plant, _contract in fleet:
            certificates.certificate_issue(
                actor=ib,
                device_id=plant.pk,
                period_start=start,
                period_end=start + dt.timedelta(days=1),
            )
        spent["issuance alone"] += time.perf_counter() - began
        began = time.perf_counter()
        for _plant, contract in fleet:
            services.contract_execute(
                contract_id=contract.pk, trigger=f"day:{start.date().isoformat()}"
            )
        spent["storage day"] += time.perf_counter() - began

    days = args.batteries * args.days
    applied = ContractExecution.objects.filter(status="applied")
    print(f"PostgreSQL {cfg['NAME']}; {args.batteries} batteries x {args.days} days")
    for name, seconds in spent.items():
        print(f"{name:16s} {seconds:8.2f} s  {days / seconds:8.1f} days/s")
    ratio = spent["storage day"] / spent["issuance alone"]
    print(f"ratio (storage day / the plant's issuance of the day): {ratio:.2f}x")
    certified = sum(e.result["certified_wh"] for e in applied)
    cancelled = sum(e.result["cancelled_wh"] for e in applied)
    print(
        f"days applied {applied.count()} of {days}; "
        f"cancelled {cancelled} Wh, certified {certified} Wh"
    )
    report = replay_storage()
    print(f"replay: {report.summary}; {'agrees' if report.ok else report.problems}")
    if applied.count() != days or not report.ok or certified > cancelled * 9 // 10:
        raise SystemExit("storage invariants broken")


if __name__ == "__main__":
    main()
