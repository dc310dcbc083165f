"""Market on PostgreSQL: order placement that matches and settles a certificate trade.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_market \
        .venv/bin/python benchmarks/market_bench.py [--orders 1000] [--rounds 3] \
        [--depth-small 100] [--depth-large 100000] [--depth-samples 200] [--processes 1] \
        [--smoke]

Creates and migrates the database if needed and adds a fresh market each run. Measured
one order after the other, each in its own transaction, in one process, or with
--processes N in N processes at once (each with its own connection, its own market, book,
seller and buyer: see benchmarks/README.md for why not one book), the rate being all the
processes' orders over the time from the first start to the last finish:

- placement through `market.services.order_place`: a bid for 1,000 Wh that crosses the
  best resting offer (a whole 1 kWh bundle): the book row lock, the bid's escrow, the
  match, the units delivered through the certificates reservation service, the trade, the
  money from escrow to the seller and the fee to the operator, the orders updated, one
  `order.placed` ledger event; orders/s;
- raw baseline: the same statements with psycopg2 and no checks (book lock and seq, the
  candidate read, the settlement accounts locked, order, journal entries and lines,
  balances, bundle lock and update, receiving account FOR KEY SHARE, trade, maker update,
  the pending ledger event), one transaction per order, against its own resting offers;
- book depth: p50 latency of the same placement with --depth-small and with
  --depth-large resting orders that do not cross (bids below and offers above the
  traded price, bulk-loaded), and their ratio.

--smoke runs tiny sizes, placement in 2 processes (CI: it checks the benchmark still runs,
the figures mean nothing).
Without CELERY_BROKER_URL the ledger's on-commit kick is switched off (as in
certificates_bench.py).
"""

import argparse
import datetime as dt
import json
import statistics
import time

import support
from support import dsn, ensure_database, setup_django

HOUR = dt.timedelta(hours=1)
BUNDLE_WH = 1_000
OFFER_PRICE = 50_000  # EUR 500.00 per MWh
BID_PRICE = 55_000


def make_world(n_bundles: int, tag: str):
    """A market with a fee, a producer with n_bundles 1 kWh bundles, a funded buyer."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Account, Membership, User
    from market import services
    from market.models import Market, OrderBook

    with transaction.atomic():
        orgs = support.bench_organisations(tag, ("producer", "buyer", "operator"), "M")
        accounts = [
            Account.objects.create(organisation=org, number=f"MB-{tag}-{i}", name="Trading")
            for i, org in enumerate(orgs[:2])
        ]
        users = []
        for i, org in enumerate(orgs[:2]):
            user = User.objects.create(username=f"mbench-{tag}-{i}")
            Membership.objects.create(user=user, organisation=org, role=Membership.Role.OPERATOR)
            users.append(user)
        start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - 30 * 24 * HOUR
        _, bundles = support.bench_issued_bundles(
            orgs[0], accounts[0], tag, n_bundles, start, hour_of=lambda i: i % 600
        )
        market = Market.objects.create(
            code=f"bench-{tag}",
            name=f"Bench {tag}",
            currency="EUR",
            operator=orgs[2],
            fee_bps=50,
            price_min=0,
            price_max=10**6,
            created_at=timezone.now(),
        )
        OrderBook.objects.create(market=market)
    services.settlement_deposit(
        actor="system:bench",
        organisation_id=orgs[1].pk,
        currency="EUR",
        amount_minor=10**12,
        reference=f"bench {tag}",
    )
    return market, users, accounts, [b.pk for b in bundles]


def rest_offers(market, seller, bundle_ids: list[int]) -> None:
    """Resting offers through the service (setup, not measured)."""
    from market.services import order_place

    for bundle_id in bundle_ids:
        order_place(
            actor=seller,
            market_id=market.pk,
            side="sell",
            limit_price=OFFER_PRICE,
            bundle_id=bundle_id,
        )


def place_bid(market, buyer, account_id: int) -> None:
    from market.services import order_place

    placed = order_place(
        actor=buyer,
        market_id=market.pk,
        side="buy",
        limit_price=BID_PRICE,
        quantity_wh=BUNDLE_WH,
        account_id=account_id,
    )
    assert len(placed.trades) == 1 and placed.order.status == "filled", placed


def service_run(market, buyer, account_id: int, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        place_bid(market, buyer, account_id)
    return time.perf_counter() - started


def raw_run(dsn_: str, market, buyer, buyer_account_id: int, n: int) -> float:
    """The service's statements for one matching bid, in psycopg2, without checks."""
    import psycopg2

    conn = psycopg2.connect(dsn_)
    cur = conn.cursor()
    cur.execute(
        "SELECT id FROM market_settlementaccount WHERE organisation_id = %s AND currency = 'EUR'",
        [market.operator_id],
    )
    row = cur.fetchone()
    fee_account = row[0] if row else None
    buyer_org = buyer.memberships.first().organisation_id
    started = time.perf_counter()
    for _ in range(n):
        now = dt.datetime.now(dt.UTC)
        cur.execute(
            "SELECT next_seq FROM market_orderbook WHERE market_id = %s FOR UPDATE", [market.pk]
        )
        seq = cur.fetchone()[0]
        cur.execute(
            "UPDATE market_orderbook SET next_seq = %s WHERE market_id = %s", [seq + 1, market.pk]
        )
        cur.execute(
            "SELECT id, settlement_account_id, certificate_account_id, bundle_id, quantity_wh, "
            "filled_wh, limit_price, organisation_id FROM market_order WHERE market_id = %s "
            "AND status = 'open' AND side = 'sell' AND limit_price <= %s "
            "ORDER BY limit_price, seq, id LIMIT 64",
            [market.pk, BID_PRICE],
        )
        maker, seller_money, _cert, bundle_id, qty, _filled, price, _org = cur.fetchone()
        cur.execute(
            "SELECT id FROM market_settlementaccount WHERE organisation_id = %s AND "
            "currency = 'EUR' AND kind = 'member'",
            [buyer_org],
        )
        buyer_money = cur.fetchone()[0]
        ids = sorted({buyer_money, seller_money, fee_account} - {None})
        cur.execute(
            "SELECT id, available, reserved FROM market_settlementaccount WHERE id = ANY(%s) "
            "ORDER BY id FOR UPDATE",
            [ids],
        )
        cur.fetchall()
        escrow = -(-BID_PRICE * qty // 1_000_000)
        amount = price * qty // 1_000_000
        fee = amount * market.fee_bps // 10_000
        cur.execute(
            "INSERT INTO market_order (market_id, organisation_id, side, product, status, "
            "time_in_force, limit_price, quantity_wh, filled_wh, min_fill_wh, seq, "
            "settlement_account_id, certificate_account_id, reserved_minor, cancel_reason, "
            "technology_code, energy_source_code, country, grid_area_code, "
            "accept_technology_code, accept_energy_source_code, accept_country, "
            "accept_grid_area_code, placed_by_id, created_at, updated_at) VALUES "
            "(%s, %s, 'buy', 'certificate', 'open', 'gtc', %s, %s, 0, 0, %s, %s, %s, 0, '', "
            "'', '', '', '', '', '', '', '', %s, %s, %s) RETURNING id",
            [
                market.pk,
                buyer_org,
                BID_PRICE,
                qty,
                seq,
                buyer_money,
                buyer_account_id,
                buyer.pk,
                now,
                now,
            ],
        )
        taker = cur.fetchone()[0]
        entries = []

        def post(kind, lines, order=None, trade=None, now=now, entries=entries):
            cur.execute(
                "INSERT INTO market_journalentry (kind, currency, order_id, trade_id, reference, "
                "reference_salt, created_by_id, created_at) VALUES "
                "(%s, 'EUR', %s, %s, '', '', %s, %s) RETURNING id",
                [kind, order, trade, buyer.pk, now],
            )
            entry = cur.fetchone()[0]
            entries.append(entry)
            cur.execute(
                "INSERT INTO market_journalline (entry_id, account_id, bucket, amount) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(lines)),
                [v for line in lines for v in (entry, *line)],
            )
            for account, bucket, delta in lines:
                cur.execute(
                    f"UPDATE market_settlementaccount SET {bucket} = {bucket} + %s WHERE id = %s",
                    [delta, account],
                )

        post(
            "reserve",
            [(buyer_money, "available", -escrow), (buyer_money, "reserved", escrow)],
            taker,
        )
        cur.execute("SELECT id FROM certificates_bundle WHERE id = %s FOR UPDATE", [bundle_id])
        cur.execute(
            "SELECT id, status FROM accounts_account WHERE id = %s FOR KEY SHARE",
            [buyer_account_id],
        )
        cur.execute(
            "UPDATE certificates_bundle SET account_id = %s, status = 1 WHERE id = %s",
            [buyer_account_id, bundle_id],
        )
        cur.execute(
            "INSERT INTO market_trade (market_id, buy_order_id, sell_order_id, aggressor, price, "
            "quantity_wh, amount_minor, fee_minor, bundle_id, created_at) VALUES "
            "(%s, %s, %s, 'buy', %s, %s, %s, %s, %s, %s) RETURNING id",
            [market.pk, taker, maker, price, qty, amount, fee, bundle_id, now],
        )
        trade = cur.fetchone()[0]
        lines = [(buyer_money, "reserved", -amount), (seller_money, "available", amount - fee)]
        if fee:
            lines.append((fee_account, "available", fee))
        post("trade", lines, trade=trade)
        post(
            "release",
            [
                (buyer_money, "reserved", amount - escrow),
                (buyer_money, "available", escrow - amount),
            ],
            taker,
        )
        cur.execute(
            "UPDATE market_order SET status = 'filled', filled_wh = quantity_wh, "
            "closed_at = %s, updated_at = %s WHERE id = %s",
            [now, now, maker],
        )
        cur.execute(
            "UPDATE market_order SET status = 'filled', filled_wh = quantity_wh, "
            "reserved_minor = 0, closed_at = %s, updated_at = %s WHERE id = %s",
            [now, now, taker],
        )
        subjects = [f"order:{taker}", f"order:{maker}", f"trade:{trade}", f"bundle:{bundle_id}"]
        event = json.dumps(
            {
                "type": "order.placed",
                "at": now.isoformat(),
                "actor": f"user:{buyer.pk}",
                "subject": subjects + [f"journal_entry:{e}" for e in entries],
                "data": {"order_id": taker, "trades": [trade], "price": price, "qty": qty},
            },
            sort_keys=True,
        ).encode()
        cur.execute(
            "INSERT INTO ledger_pendingevent (kind, subjects, actor, event, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            ["order.placed", json.dumps(subjects), f"user:{buyer.pk}", event, now],
        )
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _run(kind: str, dsn_: str, world: tuple[int, int, int], n: int) -> tuple[float, float]:
    """`n` orders of one kind on one world (market, buyer, account ids): (start, end)."""
    from accounts.models import User
    from market.models import Market

    market = Market.objects.get(pk=world[0])
    buyer = User.objects.get(pk=world[1])
    started = time.time()
    if kind == "raw":
        raw_run(dsn_, market, buyer, world[2], n)
    else:
        service_run(market, buyer, world[2], n)
    return started, time.time()


def _worker(kind: str, dsn_: str, world: tuple, n: int, barrier, results) -> None:
    """One process of a --processes run: its own Django, connection and world."""
    setup_django()
    from django.db import connection

    connection.ensure_connection()
    barrier.wait()
    results.put(_run(kind, dsn_, world, n))
    connection.close()


def _run_all(kind: str, dsn_: str, worlds: list[tuple], n: int) -> float:
    """Orders/s of all worlds at once, one process each (in this one when there is one)."""
    if len(worlds) == 1:
        started, ended = _run(kind, dsn_, worlds[0], n)
        return n / (ended - started)
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(worlds)), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(kind, dsn_, world, n, barrier, results))
        for world in worlds
    ]
    for proc in procs:
        proc.start()
    spans = [results.get(timeout=3600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"a {kind} process failed ({proc.exitcode})")
    return len(worlds) * n / (max(e for _, e in spans) - min(s for s, _ in spans))


def bench_placement(cfg: dict, n: int, rounds: int, processes: int = 1) -> dict:
    print(
        f"\n== Matching order placement ({n} orders per round and process, {processes} "
        f"process(es), median of {rounds}) =="
    )
    worlds = []
    for i in range(processes):
        market, (seller, buyer), accounts, ids = make_world(
            2 * n * rounds, f"p{int(time.time())}x{i}"
        )
        rest_offers(market, seller, ids)
        worlds.append((market.pk, buyer.pk, accounts[1].pk))
    if processes > 1:
        from django.db import connection

        connection.close()  # the children connect on their own
    rates = {"raw": [], "service": []}
    for _ in range(rounds):
        rates["raw"].append(_run_all("raw", dsn(cfg), worlds, n))
        rates["service"].append(_run_all("service", dsn(cfg), worlds, n))
    raw, service = statistics.median(rates["raw"]), statistics.median(rates["service"])
    print(f"raw psycopg2 (same statements)   {raw:10,.0f} orders/s")
    print(
        f"order_place (match + settle)     {service:10,.0f} orders/s  ({service / raw:.0%} of raw)"
    )
    return {"raw": raw, "service": service}


def _fill_depth(market, seller_org_id: int, buyer_org_id: int, depth: int) -> None:
    """`depth` resting orders that do not cross the bench's bids (bulk-loaded, not matched)."""
    from django.utils import timezone

    from market.models import Order, SettlementAccount

    money = {
        org: SettlementAccount.objects.get_or_create(organisation_id=org, currency="EUR")[0]
        for org in (seller_org_id, buyer_org_id)
    }
    from accounts.models import Account

    account = {org: Account.objects.filter(organisation_id=org).first() for org in money}
    now = timezone.now()
    rows = []
    for i in range(depth):
        buy = i % 2 == 0
        org = buyer_org_id if buy else seller_org_id
        rows.append(
            Order(
                market=market,
                organisation_id=org,
                side="buy" if buy else "sell",
                status="open",
                time_in_force="gtc",
                limit_price=(10_000 + i % 1000) if buy else (BID_PRICE + 1 + i % 1000),
                quantity_wh=1_000,
                seq=10**9 + i,
                settlement_account=money[org],
                certificate_account=account[org],
                technology_code="" if buy else "T010101",
                created_at=now,
                updated_at=now,
            )
        )
    Order.objects.bulk_create(rows, batch_size=5000)


def bench_depth(small: int, large: int, samples: int) -> dict:
    print(f"\n== Book depth: p50 placement with {small:,} and {large:,} resting orders ==")
    market, (seller, buyer), accounts, ids = make_world(2 * samples, f"d{int(time.time())}")
    rest_offers(market, seller, ids)
    org_of = {a.pk: a.organisation_id for a in accounts}
    p50 = {}
    resting = 0
    for depth in (small, large):
        _fill_depth(market, org_of[accounts[0].pk], org_of[accounts[1].pk], depth - resting)
        resting = depth
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            place_bid(market, buyer, accounts[1].pk)
            times.append(time.perf_counter() - started)
        p50[depth] = statistics.median(times)
        print(f"{depth:>9,} resting orders   p50 {p50[depth] * 1000:7.2f} ms")
    ratio = p50[large] / p50[small]
    print(f"ratio (deep / shallow)          {ratio:7.2f}")
    return {"p50": p50, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth-small", type=int, default=100)
    parser.add_argument("--depth-large", type=int, default=100_000)
    parser.add_argument("--depth-samples", type=int, default=200)
    parser.add_argument(
        "--processes", type=int, default=1, help="placement in N processes at once (N markets)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.orders, args.rounds = 20, 1
        args.depth_small, args.depth_large, args.depth_samples = 10, 1_000, 10
        args.processes = max(args.processes, 2)  # the parallel path too (depth: in process)
    cfg = ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    bench_placement(cfg, args.orders, args.rounds, args.processes)
    bench_depth(args.depth_small, args.depth_large, args.depth_samples)


if __name__ == "__main__":
    main()
