"""EV charging: sessions billed and matched per second, against the raw arithmetic.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_charging \
        .venv/bin/python benchmarks/charging_bench.py [--sessions 2000] [--stations N] [--smoke]

Creates and migrates the database if needed and adds a fresh world each run: a charge
point operator with its stations and one tariff (energy, time and flat components, a
time-of-day restriction), a driver with a card, and a PV plant in the same grid area with
hourly certificates for every hour a session touches (bulk-loaded readings,
`certificate_issue` per year at most: setup, not measured). With STATIONS stations (by
default one per 2,000 sessions, so 100,000 sessions span 2,000 hours, under a year of
certificates, instead of 11 years) each hour has one session per station, each station
its own charger meter and the driver a card per station. Then each of SESSIONS sessions
(45 minutes, inside one clock hour) goes through the services as in production:
`transaction_event_record` Started and Ended (the second bills it), then
`session_match` (one `certificate_retire` and the receipt). Reported: sessions/s billed,
matched and both, the peak RSS of the process, and the same sessions' raw arithmetic in
the same run (hourly split and pricing, `charging.tariffs`, no database) as the baseline.
`--smoke` runs 50 sessions to show the whole path works. Every 10,000 sessions a line
gives the rate so far (a long run shows whether it slows down).
"""

import argparse
import datetime as dt
import resource
import sys
import time

from support import ensure_database

HOUR = dt.timedelta(hours=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--stations", type=int, default=0, help="default: 1 per 2,000 sessions")
    parser.add_argument("--smoke", action="store_true", help="50 sessions, check the path")
    parser.add_argument(
        "--unfunded",
        action="store_true",
        help="no deposit for the driver: bills stay pending (short funds), no money moves",
    )
    args = parser.parse_args()
    sessions = 50 if args.smoke else args.sessions
    stations_n = args.stations or max(1, -(-sessions // 2_000))
    hours = -(-sessions // stations_n)
    ensure_database("the charging benchmark measures PostgreSQL")

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings

    import ledger.services

    if not settings.CELERY_BROKER_URL:
        # Without a broker the on-commit kick integrates inline; in production it only
        # starts the integrator in a worker (benchmarks/ledger_bench.py measures that).
        ledger.services.kick = lambda: None

    from accounts.models import Membership
    from assets.models import DeviceOwner, Meter, Reading, ReadingBatch
    from certificates.services import certificate_issue
    from charging import services, tariffs
    from charging.models import Bill, Receipt
    from market.services import settlement_deposit
    from tests.certificates.factories import DeviceFactory, GridAreaFactory, MeterFactory
    from tests.charging.factories import ocmf_key, tx_event
    from tests.factories import AccountFactory, OrganisationFactory, issuing_body_user, member_of

    elements = [
        {"price_components": [{"type": "FLAT", "price": "0.50", "step_size": 1}]},
        {
            "price_components": [{"type": "ENERGY", "price": "0.45", "step_size": 1}],
            "restrictions": {"start_time": "17:00", "end_time": "21:00"},
        },
        {
            "price_components": [
                {"type": "ENERGY", "price": "0.30", "step_size": 1},
                {"type": "TIME", "price": "1.20", "step_size": 1},
            ]
        },
    ]
    stamp = time.time_ns()
    from tests.factories import UserFactory

    for factory in (OrganisationFactory, UserFactory, AccountFactory, MeterFactory, DeviceFactory):
        # a fresh world in a reused database (force: some are subclasses of the assets ones)
        factory.reset_sequence(stamp // 1000 % 10**9, force=True)
    area = GridAreaFactory()
    cpo = OrganisationFactory(legal_name=f"Bench CPO {stamp}")
    driver = OrganisationFactory(legal_name=f"Bench Driver {stamp}")
    operator = member_of(cpo, Membership.Role.OPERATOR)
    tariff = services.tariff_create(
        actor=operator, organisation_id=cpo.pk, currency="EUR", elements=elements
    )
    stations = []
    for n in range(stations_n):
        device = DeviceFactory(organisation=cpo, grid_area=area)
        meter = MeterFactory(device=device, kind=Meter.Kind.CONSUMPTION)
        stations.append(
            services.station_register(
                actor=operator,
                device_id=device.pk,
                meter_serial=meter.serial,
                evse_id=f"DE*GPR*B{stamp}S{n}",
                tariff_id=tariff.pk,
                ocmf_public_key=ocmf_key()[1],
            )
        )
    if not args.unfunded:  # every bill is paid at once: driver -> CPO settlement accounts
        settlement_deposit(
            actor="system:bench",
            organisation_id=driver.pk,
            currency="EUR",
            amount_minor=10**12,
            reference=f"bench-{stamp}",
        )
    cards = [f"B{stamp}S{n}"[-20:] for n in range(stations_n)]
    driver_admin = member_of(driver)
    for card in cards:
        services.driver_token_register(
            actor=driver_admin, organisation_id=driver.pk, id_token=card, type="ISO14443"
        )
    account = AccountFactory(organisation=cpo)
    plant = DeviceFactory(organisation=cpo, grid_area=area)
    DeviceOwner.objects.create(
        device=plant, organisation=cpo, account=account, share_numerator=1, share_denominator=1
    )
    first = dt.datetime.combine(
        dt.date.today() - dt.timedelta(days=hours // 24 + 3), dt.time(0), tzinfo=dt.UTC
    )
    plant_meter = MeterFactory(device=plant)
    batch = ReadingBatch.objects.create(
        organisation=cpo,
        device=plant,
        meter=plant_meter,
        status=ReadingBatch.Status.ACCEPTED,
        size=hours,
        merkle_root="0" * 64,
    )
    Reading.objects.bulk_create(
        [
            Reading(
                device=plant,
                meter=plant_meter,
                batch=batch,
                start=first + i * HOUR,
                end=first + (i + 1) * HOUR,
                # some hours cover the sessions, some do not
                wh=(8_000 + (i % 7) * 1_000) * stations_n,
                index_in_batch=i,
            )
            for i in range(hours)
        ],
        batch_size=5000,
    )
    issuer = issuing_body_user()
    for year in range(0, hours, 8_760):
        certificate_issue(
            actor=issuer,
            device_id=plant.pk,
            period_start=first + year * HOUR,
            period_end=first + min(hours, year + 8_760) * HOUR,
        )

    # session i: station i % stations_n, hour i // stations_n; each station's register grows
    plan = [
        (
            f"BENCH-{i}",
            first + (i // stations_n) * HOUR + dt.timedelta(minutes=10),
            11_000 * (i // stations_n),
            11_000 * (i // stations_n) + 11_000,
        )
        for i in range(sessions)
    ]

    # the raw arithmetic: the same sessions split into hours and priced, no database
    t0 = time.perf_counter()
    raw_total = 0
    for _tx, start, begin, end in plan:
        periods = tariffs.hourly_periods(
            [(start, begin), (start + 45 * dt.timedelta(minutes=1), end)]
        )
        priced = tariffs.price_periods(
            elements=tariff.elements, currency="EUR", periods=periods, time_zone=area.time_zone
        )
        raw_total += priced.total_minor
    raw = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = []
    for i, (tx, start, begin, end) in enumerate(plan):
        n = i % stations_n
        for seq, (kind, at, wh) in enumerate(
            (("Started", start, begin), ("Ended", start + dt.timedelta(minutes=45), end))
        ):
            session = services.transaction_event_record(
                actor=operator,
                station_id=stations[n].pk,
                message=tx_event(kind, seq, at, wh, transaction_id=tx, id_token=cards[n]),
            )
        ids.append(session.pk)
        _progress("billed", i + 1, t0)
    billed = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i, session_id in enumerate(ids):
        services.session_match(actor=operator, session_id=session_id, account_id=account.pk)
        _progress("matched", i + 1, t0)
    matched = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from django.db.models import Count, Sum

    receipts = Receipt.objects.filter(session__station__in=stations)
    totals = receipts.aggregate(
        n=Count("pk"),
        billed=Sum("bill__total_minor"),
        renewable=Sum("renewable_wh"),
        energy=Sum("energy_wh"),
    )
    billed_total, renewable, energy = totals["billed"], totals["renewable"], totals["energy"]
    assert totals["n"] == sessions and billed_total == raw_total, (totals, raw_total)

    both = billed + matched
    share = renewable / energy
    print(
        f"sessions: {sessions} at {stations_n} stations over {hours} hours"
        f"  (energy {energy / 1000:.0f} kWh, renewable {share:.1%})"
    )
    print(f"raw arithmetic   {sessions / raw:12,.0f} sessions/s")
    print(f"billed (OCPP)    {sessions / billed:12,.0f} sessions/s  {billed / raw:8.0f}x raw")
    print(f"matched          {sessions / matched:12,.0f} sessions/s")
    print(f"billed + matched {sessions / both:12,.0f} sessions/s  {both / raw:8.0f}x raw")
    print(f"peak RSS         {peak_mb:12,.0f} MB")
    unpaid = Bill.objects.filter(billed_organisation=driver, settlement="pending").count()
    print(f"bills left unpaid {unpaid:11,d}{'  (unfunded run)' if args.unfunded else ''}")
    if unpaid != (sessions if args.unfunded else 0):
        raise SystemExit("bills paid do not match the funding")


def _progress(what: str, done: int, t0: float) -> None:
    if done % 10_000 == 0:
        spent = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {what} {done:,}: {done / spent:,.1f} sessions/s, peak RSS {peak:,.0f} MB")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
