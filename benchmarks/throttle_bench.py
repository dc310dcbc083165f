"""What the rate limit costs a request: DRF's sliding log against the window counters.

    DJANGO_ENV=development .venv/bin/python benchmarks/throttle_bench.py \
        [--redis redis://127.0.0.1:6379/12] [--requests 2000] [--smoke]

For each cache (the per-process memory cache, and Redis when --redis is given: the
production set-up) and each client rate, it fills the throttle's state as a client
sending that many requests a minute would have it, then times `allow_request` for
DRF's `UserRateThrottle` and for `registry.api.throttling.UserRateThrottle`, limit
far above the rate (every request admitted, as in normal use). The raw baseline, in the
same process and cache: one `get` and one `set` of a small integer, the least a shared
counter can cost. Needs no database.
"""

import argparse
import statistics
import time
import uuid
from types import SimpleNamespace

import django
import support  # noqa: F401  (sys.path, settings)

django.setup()

from django.core.cache.backends.locmem import LocMemCache  # noqa: E402
from django.core.cache.backends.redis import RedisCache  # noqa: E402
from rest_framework import throttling as drf  # noqa: E402

from registry.api import throttling as ours  # noqa: E402

PERIOD = 60
REQUEST = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=1), META={})


def bound(base, cache):
    class Throttle(base):
        rate = "100000000/minute"

    Throttle.cache = cache
    return Throttle


def prime(name: str, cache, per_minute: int, now: float) -> None:
    """The state a client at `per_minute` requests a minute leaves, evenly spread."""
    key = bound(drf.UserRateThrottle, cache)().get_cache_key(REQUEST, None)
    if name == "drf":
        cache.set(key, [now - i * PERIOD / per_minute for i in range(per_minute)], PERIOD)
        return
    window = int(now // PERIOD)
    elapsed = now / PERIOD - window
    cache.set(f"{key}:{window - 1}", per_minute, 2 * PERIOD)
    cache.set(f"{key}:{window}", int(per_minute * elapsed), 2 * PERIOD)


def per_request_us(throttle_class, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        allowed = throttle_class().allow_request(REQUEST, None)
        times.append(time.perf_counter() - start)
        assert allowed
    return statistics.median(times) * 1e6


def baseline_us(cache, n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        cache.get("baseline")
        cache.set("baseline", i, PERIOD)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def run(label: str, cache, rates: list[int], n: int) -> None:
    raw = baseline_us(cache, n)
    print(f"\n{label}: raw get + set of an integer {raw:.1f} us (baseline)")
    print(
        f"{'requests/minute':>16} {'DRF log us':>11} {'x raw':>6} {'counters us':>12} {'x raw':>6}"
    )
    for per_minute in rates:
        row = []
        for name, base in (("drf", drf.UserRateThrottle), ("ours", ours.UserRateThrottle)):
            cache.clear()
            prime(name, cache, per_minute, time.time())
            row.append(per_request_us(bound(base, cache), n))
        print(
            f"{per_minute:>16,} {row[0]:>11.1f} {row[0] / raw:>6.1f} {row[1]:>12.1f}"
            f" {row[1] / raw:>6.1f}"
        )
    cache.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", help="also measure through this Redis (its database is cleared)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per cell")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    rates = [100, 6000] if args.smoke else [100, 600, 6000, 20000]
    n = 20 if args.smoke else args.requests
    run("per-process memory cache", LocMemCache(f"bench-{uuid.uuid4().hex}", {}), rates, n)
    if args.redis:
        run(f"Redis ({args.redis})", RedisCache(args.redis, {}), rates, n)


if __name__ == "__main__":
    main()
