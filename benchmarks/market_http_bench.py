"""Market over HTTP: order-to-trade latency of crossing bids, against a bare DRF read.

    DJANGO_ENV=development CELERY_BROKER_URL=redis://127.0.0.1:6379/11 \\
        DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_market \\
        .venv/bin/python benchmarks/market_http_bench.py [--seconds 10] \\
        [--concurrency 1 2 4 8] [--offers 3000] [--port 0] [--smoke]

Creates and migrates the database if needed and adds a fresh market (market_bench.py's
world): a seller's resting offers, one whole 1 kWh bundle each (placed through
`order_place`: setup, not measured) and a funded buyer with an API token. The app runs
under Granian on loopback (2 workers x 4 threads, throttles lifted). Then, for
each concurrency, closed-loop clients (one keep-alive connection each) send for
`--seconds`, one after the other:

- the baseline: `GET /bench/read/`, a bare DRF endpoint with the same authentication and
  throttling doing one primary-key read;
- `POST /api/v1/market/orders/` with the buyer's Bearer token and a fresh `Idempotency-Key`:
  a bid for 1,000 Wh crossing the best offer. A response counts only if it is a 201
  whose body shows the bid filled by one trade (order-to-trade: the trade is settled when
  the response arrives); the market's trade count is checked against them at the end.

Printed per concurrency: req/s, p50 and p99 latency of each; then the highest rate whose
p50 ≤ 20 ms and p99 ≤ 100 ms (issue 11's aim), next to the bare endpoint's rate at the same
concurrency. With CELERY_BROKER_URL each commit only kicks the ledger integrator, as in
production (the queued tasks are purged); without it each request integrates the ledger
itself. --smoke runs tiny sizes (CI: checks it still runs; the figures mean nothing).
"""

import argparse
import json
import os
import sys
import time

import http_support
from market_bench import BID_PRICE, BUNDLE_WH, make_world, rest_offers
from support import SMOKE_HELP, apply_smoke, ensure_database, setup_django

P50_AIM_MS, P99_AIM_MS = 20, 100


def _filled_by_one_trade(status: int, body: bytes) -> bool:
    if status != 201:
        return False
    placed = json.loads(body)
    return placed["order"]["status"] == "filled" and len(placed["trades"]) == 1


def bench(seconds: float, levels: list[int], offers: int, port: int) -> dict:
    from accounts.services import api_token_create
    from market.models import Trade

    tag = f"h{int(time.time())}"
    print(f"\n== Order-to-trade over HTTP ({offers} resting offers, {seconds} s per run) ==")
    market, (seller, buyer), accounts, ids = make_world(offers, tag)
    started = time.perf_counter()
    rest_offers(market, seller, ids)
    print(f"setup: {offers} offers placed in {time.perf_counter() - started:.1f} s")
    _token, plaintext = api_token_create(user=buyer, name="bench")
    auth = {"Authorization": f"Bearer {plaintext}"}
    bid = json.dumps(
        {
            "market": market.pk,
            "side": "buy",
            "limit_price": BID_PRICE,
            "quantity_wh": BUNDLE_WH,
            "account": accounts[1].pk,
        }
    ).encode()
    bid_headers = auth | {"Content-Type": "application/json"}
    runs: dict[tuple[str, int], http_support.Run] = {}
    keys = iter(range(10**9))

    def read(_n: int) -> http_support.Request:
        return "GET", "/bench/read/", None, auth

    def order(_n: int) -> http_support.Request:
        return (
            "POST",
            "/api/v1/market/orders/",
            bid,
            bid_headers | {"Idempotency-Key": f"{tag}-{next(keys)}"},
        )

    with http_support.serve(port) as port:
        http_support.closed_loop(port, read, 2, min(seconds, 2))  # warm both workers up
        for concurrency in levels:  # interleaved: both kinds see the same machine
            for kind, request, check in (
                ("bare", read, http_support.ok),
                ("order", order, _filled_by_one_trade),
            ):
                run = http_support.closed_loop(port, request, concurrency, seconds, check)
                runs[kind, concurrency] = run
                print(f"  {concurrency} client{'s' if concurrency > 1 else ' '} {kind:>5}: {run}")
    trades = Trade.objects.filter(market=market).count()
    confirmed = sum(len(runs["order", c].latencies) for c in levels)
    failed = sum(run.failed for run in runs.values())
    counts = {"trades": trades, "confirmed": confirmed, "failed": failed}
    print(f"\ntrades stored {trades}, confirmed by responses {confirmed}; failed requests {failed}")
    print("\n| clients | bare req/s | bare p50 / p99 ms | orders/s | order p50 / p99 ms |")
    for c in levels:
        bare, placed = runs["bare", c], runs["order", c]
        print(
            f"| {c} | {bare.rate:,.0f} | {bare.p50:.1f} / {bare.p99:.1f} | {placed.rate:,.1f} | "
            f"{placed.p50:.1f} / {placed.p99:.1f} |"
        )
    within = [
        c
        for c in levels
        if runs["order", c].failed == 0
        and runs["order", c].p50 <= P50_AIM_MS
        and runs["order", c].p99 <= P99_AIM_MS
    ]
    if not within:
        print(f"no rate kept p50 <= {P50_AIM_MS} ms and p99 <= {P99_AIM_MS} ms")
        return {"runs": runs, "best": None, **counts}
    best = max(within, key=lambda c: runs["order", c].rate)
    placed, bare = runs["order", best], runs["bare", best]
    print(
        f"highest rate within p50 <= {P50_AIM_MS} ms, p99 <= {P99_AIM_MS} ms: "
        f"{placed.rate:,.1f} orders/s at {best} client(s) (p50 {placed.p50:.1f} ms, "
        f"p99 {placed.p99:.1f} ms); bare DRF read at {best}: {bare.rate:,.0f} req/s "
        f"({placed.rate / bare.rate:.0%})"
    )
    return {"runs": runs, "best": best, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per kind and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--offers", type=int, default=3000, help="resting offers to trade")
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    # Enough offers that no bid of the two 0.5 s order runs finds the book empty, even on a
    # fast machine (60 ran out at about 70 orders/s).
    apply_smoke(args, seconds=0.5, concurrency=[1, 2], offers=600)
    cfg = ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    broker = os.environ.get("CELERY_BROKER_URL")
    print(f"PostgreSQL {cfg['NAME']}; {os.cpu_count()} CPUs; load average {os.getloadavg()}")
    if not broker:
        print("no CELERY_BROKER_URL: each request integrates the ledger itself (not production)")
    result = bench(args.seconds, args.concurrency, args.offers, args.port)
    print(f"load average at the end {os.getloadavg()}")
    if result["trades"] != result["confirmed"] or result["failed"]:
        sys.exit("FAILED: every request must succeed and every bid trade (too few --offers?)")


if __name__ == "__main__":
    main()
