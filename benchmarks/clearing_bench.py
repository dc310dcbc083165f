"""Uniform-price clearing of one slot (market/clearing.py) against sorting the same orders.

    .venv/bin/python benchmarks/clearing_bench.py --orders 100000 --rounds 7

No database: clearing is pure. Two baselines run in the same process on the same orders:
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

from market.clearing import BUY, SELL, SlotOrder, clear


def make_orders(count: int, rng: random.Random) -> list[SlotOrder]:
    """A slot's book: prices around EUR 80/MWh (minor units), 0.1-20 kWh, arrival order."""
    orders = []
    for i in range(count):
        side = BUY if rng.random() < 0.5 else SELL
        centre = 8_200 if side == BUY else 7_800
        price = max(0, int(rng.gauss(centre, 1_500)))
        quantity = rng.randint(100, 20_000)
        orders.append(SlotOrder(i + 1, side, price, quantity, i))
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
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, orders=1_000, rounds=2)

    orders = make_orders(args.orders, random.Random(args.seed))
    prices = np.array([o.price for o in orders], dtype=np.int64)
    seqs = np.array([o.seq for o in orders], dtype=np.int64)
    buys = np.array([o.side == BUY for o in orders])

    result = clear(orders)
    assert result.volume > 0 and result.price is not None, "the generated book must cross"
    cleared = median_seconds(lambda: clear(orders), args.rounds)
    by_python = median_seconds(lambda: python_sort(orders), args.rounds)
    by_numpy = median_seconds(lambda: numpy_sort(prices, seqs, buys), args.rounds)

    print(f"{args.orders:,} orders, median of {args.rounds} rounds")
    print(
        f"  cleared {result.volume:,} Wh at {result.price}/MWh: {len(result.allocations):,} orders"
    )
    print(f"  clear()                          {cleared * 1000:9.1f} ms")
    for name, base in (("Python sorted", by_python), ("numpy lexsort", by_numpy)):
        ratio = cleared / base
        print(f"  baseline: {name}, 2 sides {base * 1000:9.1f} ms  -> clear is {ratio:.2f}x")


if __name__ == "__main__":
    main()
