"""A month of hourly household retirements: the standing-retirement execution against the
certificates app's retirement in a loop and a bare psycopg2 transaction (PostgreSQL).

Each household has a confirmed site whose import meter read every hour of January 2026 (744
hours) and a rooftop plant with one 1 kWh certificate per hour in the household's account
(rows written directly: set-up, not measured). Consumption varies from 600 to 1,399 Wh an
hour, so about half the hours retire a whole certificate and half split one. Three fleets of
identical households, run household by household, interleaved:

- raw: one bare psycopg2 transaction per household that, for every hour, locks the bundle,
  marks it retired and inserts a retirement row and an event row (the rows an execution
  writes, without the registry's rules, splits, statements or canonical events);
- certificate_retire: the certificates app's retirement of each hour's consumption, one call
  per hour, in one transaction per household (the execution's writes, without the contract
  or the consumption lookup);
- execution: `contract_execute` of the household's `standing_retirement` contract for the
  month: the consumers app's consumption lookup (contracts.consumption_lookups), the hourly
  plan, one `certificate_retire` per matched hour and the `contract.executed` event.

Prints retirements/s and ledger events/s of each and their ratios to raw. `--profile` also
prints the statements of one more execution grouped by shape (a query per hour shows as a
shape repeated ~744 times).

    DATABASE_URL=postgres://…/gp_bench python benchmarks/household_retirement_bench.py [--smoke]
"""

import argparse
import datetime as dt
import json
import re
import time
from collections import Counter

import support

MONTH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PERIOD = "2026-01"
HOUR = dt.timedelta(hours=1)
CERTIFICATE_WH = 1_000
TERMS = {"beneficiary_name": "Household", "beneficiary_country": "DE", "purpose": "disclosure"}


def consumed(i: int) -> int:
    """Wh the household consumed in hour i of the month: 600..1,399."""
    return 600 + (i * 379) % 800


def build_household(tag: str, hours: int):
    """A household with a confirmed site, an import meter that read `hours` hours, and one
    1 kWh certificate per hour in its account; returns (person, account, bundles)."""
    from assets.models import Reading, ReadingBatch
    from tests.consumers.factories import HouseholdFactory, SiteFactory, site_meter

    household = HouseholdFactory()
    organisation = household.organisation
    account = organisation.accounts.get()
    site = SiteFactory(household=household, grid_area=support.bench_grid_area())
    meter = site_meter(site).meter
    batch = ReadingBatch.objects.create(
        organisation=organisation,
        device=meter.device,
        meter=meter,
        status=ReadingBatch.Status.ACCEPTED,
        size=hours,
        merkle_root="0" * 64,
    )
    Reading.objects.bulk_create(
        [
            Reading(
                device=meter.device,
                meter=meter,
                batch=batch,
                index_in_batch=i,
                start=MONTH + i * HOUR,
                end=MONTH + (i + 1) * HOUR,
                wh=consumed(i),
            )
            for i in range(hours)
        ],
        batch_size=5000,
    )
    _device, bundles = support.bench_issued_bundles(organisation, account, tag, hours, MONTH)
    return household.person, account, bundles


def standing_retirement(person, account):
    from contracts import services
    from contracts.kinds.retirement import STANDING_RETIREMENT

    contract = services.contract_create(
        actor=person,
        kind=STANDING_RETIREMENT,
        terms={"account": account.number, **TERMS},
        start_at=MONTH - dt.timedelta(days=1),
        end_at=MONTH + dt.timedelta(days=365),
    )
    services.contract_agree(actor=person, contract_id=contract.pk)
    return contract


def run_raw(dsn: str, bundles) -> int:
    """The same rows in a bare psycopg2 transaction: per hour a bundle lock and update, a
    retirement row and an event row. Returns the events written."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            for i, bundle in enumerate(bundles):
                start = MONTH + i * HOUR
                cur.execute(
                    "SELECT id FROM certificates_bundle WHERE id = %s FOR UPDATE", [bundle.pk]
                )
                cur.execute("UPDATE certificates_bundle SET status = 4 WHERE id = %s", [bundle.pk])
                cur.execute(
                    "INSERT INTO bench_raw_retirement (bundle_id, volume_wh, consumption_start, "
                    "consumption_end, beneficiary) VALUES (%s, %s, %s, %s, %s)",
                    [bundle.pk, min(consumed(i), CERTIFICATE_WH), start, start + HOUR, "Household"],
                )
                body = {
                    "type": "certificate.retired",
                    "bundle": bundle.pk,
                    "hour": start.isoformat(),
                }
                cur.execute(
                    "INSERT INTO bench_raw_event (kind, body) VALUES (%s, %s)",
                    ["certificate.retired", json.dumps(body)],
                )
    finally:
        conn.close()
    return len(bundles)


def run_service(person, bundles) -> None:
    """certificate_retire per hour, in one transaction for the household's month."""
    from django.db import transaction

    from certificates import services as certificates

    with transaction.atomic():
        for i, bundle in enumerate(bundles):
            certificates.certificate_retire(
                actor=person,
                items=[(bundle.pk, min(consumed(i), CERTIFICATE_WH))],
                consumption_start=MONTH + i * HOUR,
                consumption_end=MONTH + (i + 1) * HOUR,
                **TERMS,
            )


def run_execution(contract) -> None:
    from contracts import services

    execution = services.contract_execute(
        contract_id=contract.pk, trigger=f"period:{PERIOD}", now=MONTH + dt.timedelta(days=40)
    )
    if execution is None or execution.status != "applied":
        raise SystemExit(f"execution not applied: {execution and execution.reason_detail}")


def profile(contract) -> None:
    """The statements of one execution grouped by shape, most frequent first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as run:
        run_execution(contract)
    shapes = Counter(
        re.sub(r"\d+", "N", re.sub(r"'[^']*'", "S", q["sql"]))[:150] for q in run.captured_queries
    )
    print(f"profile: {len(run.captured_queries)} statements in one execution; by shape:")
    for shape, count in shapes.most_common(12):
        print(f"{count:7d}  {shape}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=4, help="per fleet")
    parser.add_argument("--hours", type=int, default=744, help="hours of the month with data")
    parser.add_argument("--profile", action="store_true", help="statements of one execution")
    parser.add_argument("--smoke", action="store_true", help=support.SMOKE_HELP)
    args = parser.parse_args()
    support.apply_smoke(args, households=1, hours=24)
    cfg = support.ensure_database()
    support.recreate_database(cfg)  # the factories' names repeat from run to run
    support.setup_django()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from certificates.models import Retirement
    from ledger.models import PendingEvent

    with connection.cursor() as cur:
        cur.execute(
            "CREATE TABLE bench_raw_retirement (id bigserial PRIMARY KEY, bundle_id bigint, "
            "volume_wh bigint, consumption_start timestamptz, consumption_end timestamptz, "
            "beneficiary text)"
        )
        cur.execute(
            "CREATE TABLE bench_raw_event (id bigserial PRIMARY KEY, kind text, body jsonb)"
        )

    fleets = {"raw": [], "certificate_retire": [], "execution": []}
    for h in range(args.households + (1 if args.profile else 0)):
        for name in fleets:
            person, account, bundles = build_household(f"{name}-{h}", args.hours)
            contract = standing_retirement(person, account) if name == "execution" else None
            fleets[name].append((person, account, bundles, contract))
    profiled = fleets["execution"].pop() if args.profile else None

    dsn = support.dsn(cfg)
    spent = dict.fromkeys(fleets, 0.0)
    retired = dict.fromkeys(fleets, 0)
    events = dict.fromkeys(fleets, 0)
    for h in range(args.households):
        for name, fleet in fleets.items():
            person, account, bundles, contract = fleet[h]
            before_events = PendingEvent.objects.count()
            began = time.perf_counter()
            if name == "raw":
                written = run_raw(dsn, bundles)
            elif name == "certificate_retire":
                run_service(person, bundles)
            else:
                run_execution(contract)
            spent[name] += time.perf_counter() - began
            if name == "raw":
                retired[name] += written
                events[name] += written
            else:
                retired[name] += Retirement.objects.filter(account=account).count()
                events[name] += PendingEvent.objects.count() - before_events
    expected = args.households * args.hours
    print(
        f"PostgreSQL {cfg['NAME']}; {args.households} households per fleet x {args.hours} hours "
        f"of January 2026 (one 1 kWh certificate and one reading per hour)"
    )
    print(f"{'':20s} {'seconds':>9s} {'retirements/s':>14s} {'events/s':>10s} {'x raw time':>11s}")
    for name in fleets:
        seconds = spent[name]
        print(
            f"{name:20s} {seconds:9.2f} {retired[name] / seconds:14.1f} "
            f"{events[name] / seconds:10.1f} {seconds / spent['raw']:10.2f}x"
        )
    per_household = events["execution"] / max(args.households, 1)
    print(f"events per household-month (execution): {per_household:.0f}")
    for name in ("certificate_retire", "execution"):
        if retired[name] != expected:
            raise SystemExit(f"{name}: {retired[name]} retirements, expected {expected}")
    if profiled:
        profile(profiled[3])


if __name__ == "__main__":
    main()
