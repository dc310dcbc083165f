"""Delivery settlement of one cleared energy slot with N sellers and N buyers, against a
raw psycopg2 baseline of the same statements in the same run.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/settlement_bench.py --parties 500

Each round builds a fresh slot (setup, not measured): N selling and N buying
organisations, one order each, cleared through `slot_clear`, one generation or
consumption meter per party with a reading for the slot (sellers deliver 80%). Measured:
- service: `slot_settle` (the readings query, the locks, the rules, the journal, the
  settlement rows, the orders, the ledger event);
- raw baseline: the same reads and writes in psycopg2 on a second slot built the same
  way, without checks or the ledger event (lock the clearing and the orders, read the
  readings, look up and lock the sellers' bundles for the slot (none here: the benchmark
  measures the money path), lock the accounts, insert the settlement, its lines, one
  journal entry and its lines, update the accounts and the bids).
The figure is the service's time over the baseline's (median over the rounds).
--smoke runs tiny sizes (CI). Without CELERY_BROKER_URL the ledger's on-commit kick is
switched off (as in market_bench.py).
"""

import argparse
import datetime as dt
import statistics
import time

import support
from support import SMOKE_HELP, apply_smoke, dsn, ensure_database, setup_django

SLOT = dt.timedelta(minutes=15)


def make_slot(tag: str, parties: int):
    """A cleared slot of a new market: `parties` sellers and buyers, meters and readings."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Account, Membership, User
    from assets.models import Meter, Reading, ReadingBatch
    from market import services
    from market.models import Market, OrderBook

    now = timezone.now()
    slot = dt.datetime.fromtimestamp(int(now.timestamp()) // 900 * 900, tz=dt.UTC) - 8 * SLOT
    names = tuple(f"s{i}" for i in range(parties)) + tuple(f"b{i}" for i in range(parties))
    with transaction.atomic():
        orgs = support.bench_organisations(tag, (*names, "operator"), "S")
        market = Market.objects.create(
            code=f"settle-{tag}",
            name=f"Settle {tag}",
            kind=Market.Kind.ENERGY,
            matching=Market.Matching.UNIFORM,
            currency="EUR",
            operator=orgs[-1],
            price_min=0,
            price_max=10**6,
            grid_fee_per_mwh=500,
            fallback_buy_price=12_000,
            created_at=now,
        )
        OrderBook.objects.create(market=market)
        support.bench_grid_area()  # made once per database
        traders = []
        for i, org in enumerate(orgs[:-1]):
            account = Account.objects.create(
                organisation=org, number=f"SB-{tag}-{i}", name="Trading"
            )
            user = User.objects.create(username=f"sbench-{tag}-{i}")
            Membership.objects.create(user=user, organisation=org, role=Membership.Role.OPERATOR)
            device = support.bench_device(org, f"Bench {tag} {i}")
            selling = i < parties
            meter = Meter.objects.create(
                serial=f"SB-{tag}-{i}",
                device=device,
                kind=Meter.Kind.GENERATION if selling else Meter.Kind.CONSUMPTION,
            )
            batch = ReadingBatch.objects.create(
                organisation=org,
                device=device,
                meter=meter,
                status=ReadingBatch.Status.ACCEPTED,
                size=1,
                merkle_root="0" * 64,
            )
            Reading.objects.create(
                device=device,
                meter=meter,
                batch=batch,
                start=slot,
                end=slot + SLOT,
                wh=800 if selling else 1_200,
                index_in_batch=0,
            )
            traders.append((user, account, selling))
    for user, account, selling in traders:
        if not selling:
            services.settlement_deposit(
                actor="system:bench",
                organisation_id=account.organisation_id,
                currency="EUR",
                amount_minor=10**6,
                reference=f"bench {tag} {account.pk}",
            )
        services.order_place(
            actor=user,
            market_id=market.pk,
            side="sell" if selling else "buy",
            limit_price=5_000 if selling else 9_000,
            quantity_wh=1_000,
            account_id=account.pk,
            slot_start=slot,
            now=slot - 2 * SLOT,
        )
    return services.slot_clear(market_id=market.pk, slot_start=slot, now=slot)


RAW = {
    "lock_clearing": "SELECT id FROM market_slotclearing WHERE id = %s FOR UPDATE",
    "orders": (
        "SELECT id, side, organisation_id, filled_wh, reserved_minor, settlement_account_id, "
        "certificate_account_id "
        "FROM market_order WHERE clearing_id = %s AND filled_wh > 0 ORDER BY id FOR UPDATE"
    ),
    "readings": (
        "SELECT d.organisation_id, r.wh FROM assets_reading r "
        "JOIN assets_meter m ON m.id = r.meter_id JOIN assets_device d ON d.id = m.device_id "
        "WHERE d.organisation_id = ANY(%s) AND r.start < %s AND r.end > %s"
    ),
    "bundles": (
        "SELECT id FROM certificates_bundle WHERE account_id = ANY(%s) AND status = 1 "
        "AND period_start <= %s AND period_end >= %s ORDER BY id FOR UPDATE"
    ),
    "lock_accounts": (
        "SELECT id FROM market_settlementaccount WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
    ),
}


def raw_settle(conn, clearing, operator_account_id: int) -> float:
    """The settlement's statements in psycopg2, without checks or ledger event."""
    from psycopg2.extras import execute_values

    started = time.perf_counter()
    with conn, conn.cursor() as cur:
        cur.execute(RAW["lock_clearing"], [clearing.pk])
        cur.execute(RAW["orders"], [clearing.pk])
        orders = cur.fetchall()
        end = clearing.slot_start + SLOT
        cur.execute(RAW["readings"], [[o[2] for o in orders], end, clearing.slot_start])
        metered = dict(cur.fetchall())
        cur.execute(
            RAW["bundles"], [[o[6] for o in orders if o[1] == "sell"], end, clearing.slot_start]
        )
        accounts = sorted({o[5] for o in orders} | {operator_account_id})
        cur.execute(RAW["lock_accounts"], [accounts])
        cur.execute(
            "INSERT INTO market_slotsettlement (clearing_id, market_id, slot_start, status, "
            "reason, missing_organisations, cleared_wh, delivered_wh, buyers_paid_minor, "
            "sellers_received_minor, grid_fee_minor, released_minor, shortfall_charged_minor, "
            "surplus_paid_minor, uncollected_minor, certificates_pending_wh, created_at, "
            "settled_at) VALUES "
            "(%s, %s, %s, 'settled', '', '[]', %s, 0, 0, 0, 0, 0, 0, 0, 0, 0, now(), now()) "
            "RETURNING id",
            [clearing.pk, clearing.market_id, clearing.slot_start, clearing.volume_wh],
        )
        settlement_id = cur.fetchone()[0]
        lines = [
            (
                settlement_id,
                o[0],
                o[2],
                o[1],
                o[3],
                metered.get(o[2], 0),
                o[3],
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            )
            for o in orders
        ]
        execute_values(
            cur,
            "INSERT INTO market_slotsettlementline (settlement_id, order_id, organisation_id, "
            "side, cleared_wh, metered_wh, delivered_wh, surplus_wh, shortfall_wh, "
            "amount_minor, released_minor, charge_minor, surplus_paid_minor, "
            "uncollected_minor, certificates_wh) VALUES %s",
            lines,
        )
        cur.execute(
            "INSERT INTO market_journalentry (kind, currency, reference, reference_salt, "
            "created_at) VALUES ('delivery', 'EUR', '', '', now()) RETURNING id"
        )
        entry_id = cur.fetchone()[0]
        journal = [(entry_id, o[5], "available", 1) for o in orders]
        execute_values(
            cur,
            "INSERT INTO market_journalline (entry_id, account_id, bucket, amount) VALUES %s",
            journal,
        )
        execute_values(
            cur,
            "UPDATE market_settlementaccount a SET available = a.available + v.amount "
            "FROM (VALUES %s) AS v(id, amount) WHERE a.id = v.id",
            [(o[5], 0) for o in orders],
        )
        execute_values(
            cur,
            "UPDATE market_order o SET reserved_minor = 0, updated_at = now() "
            "FROM (VALUES %s) AS v(id) WHERE o.id = v.id",
            [(o[0],) for o in orders if o[1] == "buy"],
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=500, help="sellers (and as many buyers)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, parties=5, rounds=1)
    cfg = ensure_database()
    setup_django()
    import psycopg2
    from django.core.management import call_command

    from market import services
    from market.services.money import settlement_account_ensure

    call_command("migrate", verbosity=0)
    conn = psycopg2.connect(dsn(cfg))
    tag0 = f"{time.time_ns():x}"
    service_times, raw_times = [], []
    for round_ in range(args.rounds):
        measured = make_slot(f"{tag0}-{round_}s", args.parties)
        baseline = make_slot(f"{tag0}-{round_}r", args.parties)
        operator_id = settlement_account_ensure(
            organisation_id=baseline.market.operator_id, currency="EUR"
        )
        raw_times.append(raw_settle(conn, baseline, operator_id))
        started = time.perf_counter()
        settlement = services.slot_settle(clearing_id=measured.pk)
        service_times.append(time.perf_counter() - started)
        assert settlement.status == "settled", settlement.status
        assert settlement.delivered_wh == 800 * args.parties, settlement.delivered_wh
    service, raw = statistics.median(service_times), statistics.median(raw_times)
    orders = 2 * args.parties
    print(f"one slot, {orders:,} cleared orders ({args.parties:,} sellers, as many buyers)")
    rate = orders / service
    print(f"service slot_settle            {service * 1000:8.1f} ms  ({rate:,.0f} orders/s)")
    print(f"raw psycopg2 (same statements) {raw * 1000:8.1f} ms  ({orders / raw:,.0f} orders/s)")
    print(
        f"service / raw                 {service / raw:9.2f}x  (raw is {raw / service:.0%} of it)"
    )
    conn.close()


if __name__ == "__main__":
    main()
