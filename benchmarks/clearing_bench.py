"""Uniform-price clearing of one slot (market/clearing.py) against sorting the same orders.

    .venv/bin/python benchmarks/clearing_bench.py --orders 100000 --rounds 7

No database: clearing is pure. Two books of the same orders: every order of its own
organisation (self-trade prevention only checks), and orders shared among `--orders / 4`
organisations (with the default seed 47% of the orders lose Wh to netting; `--owners`
changes the count). Two baselines run in the same process on the same orders:
Python's `sorted` of both sides by their ranking keys (what any clearing must at least do),
and numpy's lexsort of the already-extracted price/seq arrays (the sort alone, no Python
objects). Figures are medians over the rounds; ratios hold across machines.
"""

import argparse
import random
import statistics
import time

import numpy as np
import support  # noqa: F401 - puts the repository on sys.path
from support import SMOKE_HELP, apply_smoke

from market.clearing import BUY, SELL, SlotOrder, clear, self_trade_netting


def make_orders(count: int, owners: int, rng: random.Random) -> list[SlotOrder]:
    """A slot's book: prices around EUR 80/MWh (minor units), 0.1-20 kWh, arrival order,
    each order of a random one of `owners` organisations (0: each of its own)."""
    orders = []
    for i in range(count):
        side = BUY if rng.random() < 0.5 else SELL
        centre = 8_200 if side == BUY else 7_800
        price = max(0, int(rng.gauss(centre, 1_500)))
        quantity = rng.randint(100, 20_000)
        owner = rng.randrange(owners) if owners else i
        orders.append(SlotOrder(i + 1, side, price, quantity, i, owner))
    return orders


def python_sort(orders: list[SlotOrder]) -> None:
    sorted((o for o in orders if o.side == BUY), key=lambda o: (-o.price, o.seq, o.id))
    sorted((o for o in orders if o.side == SELL), key=lambda o: (o.price, o.seq, o.id))


def numpy_sort(prices: np.ndarray, seqs: np.ndarray, buys: np.ndarray) -> None:
    np.lexsort((seqs[buys], -prices[buys]))
    np.lexsort((seqs[~buys], prices[~buys]))


def median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--owners", type=int, default=0, help="organisations sharing the orders (default N/4)"
    )
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, orders=1_000, rounds=2)

    shared = make_orders(args.orders, args.owners or max(1, args.orders // 4), random.Random(2))
    orders = make_orders(args.orders, 0, random.Random(args.seed))
    prices = np.array([o.price for o in orders], dtype=np.int64)
    seqs = np.array([o.seq for o in orders], dtype=np.int64)
    buys = np.array([o.side == BUY for o in orders])

    result = clear(orders)
    assert result.volume > 0 and result.price is not None, "the generated book must cross"
    cleared = median_seconds(lambda: clear(orders), args.rounds)
    netting = median_seconds(lambda: self_trade_netting(orders), args.rounds)
    shared_result = clear(shared)
    assert shared_result.netted, "the shared book must cross some owner's own orders"
    cleared_shared = median_seconds(lambda: clear(shared), args.rounds)
    netting_shared = median_seconds(lambda: self_trade_netting(shared), args.rounds)
    by_python = median_seconds(lambda: python_sort(orders), args.rounds)
    by_numpy = median_seconds(lambda: numpy_sort(prices, seqs, buys), args.rounds)

    print(f"{args.orders:,} orders, median of {args.rounds} rounds")
    print(
        f"  cleared {result.volume:,} Wh at {result.price}/MWh: {len(result.allocations):,} orders"
    )
    print(f"  clear(), one order per owner     {cleared * 1000:9.1f} ms")
    print(f"    self_trade_netting() alone      {netting * 1000:9.1f} ms")
    netted_orders = len(shared_result.netted)
    netted_wh = sum(shared_result.netted.values()) // 2
    print(
        f"  clear(), {len({o.owner for o in shared}):,} owners: {netted_orders:,} orders netted"
        f" ({netted_wh:,} Wh)"
    )
    print(f"                                   {cleared_shared * 1000:9.1f} ms")
    print(f"    self_trade_netting() alone      {netting_shared * 1000:9.1f} ms")
    for name, base in (("Python sorted", by_python), ("numpy lexsort", by_numpy)):
        ratio, shared_ratio = cleared / base, cleared_shared / base
        print(
            f"  baseline: {name}, 2 sides {base * 1000:9.1f} ms  -> clear is {ratio:.2f}x"
            f" (shared owners {shared_ratio:.2f}x)"
        )


if __name__ == "__main__":
    main()
