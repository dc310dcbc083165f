"""Server time of a one-bundle read, `GET /api/v1/bundles/{id}/`, against a bare DRF read.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_read \\
        .venv/bin/python benchmarks/bundle_read_bench.py [--bundles 100000] \\
        [--requests 2000] [--rounds 5] [--smoke]

Creates and migrates the database if needed, adds `--bundles` 1 kWh bundles held by one
organisation, and an API token for one of its members. Then, in rounds, it sends
`--requests` requests of each kind through Django's WSGI handler in this process (the
whole middleware stack, token authentication, throttling, the JSON renderer; no network,
so what is measured is the server's own time), alternating one of each so the shared
machine's load hits both alike:

- the bundle read, a random bundle each request, with its certificate attributes;
- the baseline: a bare DRF endpoint with the same authentication and throttling that
  reads one row by primary key and returns a small body (`benchmarks/certificates_urls.py`).

Printed: p50 and p99 in ms of each, and the bundle read's rate as a share of the bare
read's (the aim: at least 60%), plus the SQL queries of one bundle read.
"""

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.certificates_settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import support
from support import SMOKE_HELP, apply_smoke


def make_world(n_bundles: int, tag: str) -> tuple[list[int], str]:
    """n_bundles bundles of one organisation; a token of one of its members."""
    from django.db import transaction

    from accounts.models import Account, Membership, User
    from accounts.services import api_token_create

    with transaction.atomic():
        (org,) = support.bench_organisations(tag, ("reader",), "R")
        account = Account.objects.create(organisation=org, number=f"READ-{tag}", name="Trading")
        user = User.objects.create(username=f"read-{tag}")
        Membership.objects.create(user=user, organisation=org, role=Membership.Role.VIEWER)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        _device, bundles = support.bench_issued_bundles(org, account, tag, n_bundles, start)
        _token, plaintext = api_token_create(user=user, name="bench")
    return [b.pk for b in bundles], plaintext


def _timed(handler, environ_for, paths: list[str]) -> list[float]:
    """Milliseconds per request; every answer must be 200."""
    times = []
    statuses: list[str] = []

    def start_response(status, headers, *_):
        statuses.append(status)

    for path in paths:
        environ = environ_for(path)
        started = time.perf_counter()
        b"".join(handler(environ, start_response))
        times.append((time.perf_counter() - started) * 1000)
        if not statuses[-1].startswith("200"):
            sys.exit(f"{path}: {statuses[-1]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    parser.add_argument("--profile", action="store_true", help="cProfile the bundle reads")
    args = parser.parse_args()
    apply_smoke(args, bundles=50, requests=20, rounds=1)

    support.ensure_database()
    for scope in ("ANON", "USER", "LOGIN", "LEDGER"):  # throttled as in production, never hit
        os.environ[f"THROTTLE_{scope}"] = "100000000/minute"
    support.setup_django()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.client import RequestFactory

    call_command("migrate", verbosity=0)
    tag = uuid.uuid4().hex[:8]
    print(f"making {args.bundles:,} bundles...", flush=True)
    ids, token = make_world(args.bundles, tag)
    handler = get_wsgi_application()
    factory = RequestFactory(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="localhost")

    def environ_for(path: str) -> dict:
        return factory.get(path).environ

    rng = random.Random(1)
    _timed(handler, environ_for, ["/bench/read/", f"/api/v1/bundles/{ids[0]}/"] * 20)  # warm
    queries: list[str] = []

    def record(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        _timed(handler, environ_for, [f"/api/v1/bundles/{ids[0]}/"])
    if args.profile:
        import cProfile
        import pstats

        paths = [f"/api/v1/bundles/{rng.choice(ids)}/" for _ in range(args.requests)]
        profiler = cProfile.Profile()
        profiler.runcall(_timed, handler, environ_for, paths)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        return
    bare_ms: list[float] = []
    read_ms: list[float] = []
    for round_ in range(args.rounds):
        # one bare read, one bundle read, alternately: both see the same moment of the machine
        paths = []
        for _ in range(args.requests):
            paths += ["/bench/read/", f"/api/v1/bundles/{rng.choice(ids)}/"]
        times = _timed(handler, environ_for, paths)
        bare_ms += times[0::2]
        read_ms += times[1::2]
        print(
            f"  round {round_ + 1}: bare p50 {statistics.median(times[0::2]):.3f} ms, "
            f"bundle p50 {statistics.median(times[1::2]):.3f} ms",
            flush=True,
        )

    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    bare50, read50 = statistics.median(bare_ms), statistics.median(read_ms)
    print(f"\n{args.bundles:,} bundles, {args.rounds} x {args.requests} requests of each kind")
    print(f"{'':28}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'bare DRF read (baseline)':28}{bare50:9.3f}{p(bare_ms, 0.99):9.3f}")
    print(f"{'GET /api/v1/bundles/{id}/':28}{read50:9.3f}{p(read_ms, 0.99):9.3f}")
    print(f"bundle read rate / bare read rate: {bare50 / read50:.0%} (aim: >= 60%)")
    print(f"SQL queries of one bundle read: {len(queries)}")
    for sql in queries:
        print(f"  {sql[:160]}")


if __name__ == "__main__":
    main()
