"""Where an API write's CPU goes: Python and PostgreSQL, per request and per statement.

    DJANGO_ENV=development CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \\
        DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_write_path \\
        .venv/bin/python benchmarks/write_path_bench.py [--requests 1000] [--rounds 3] \\
        [--kinds transfer retire] [--smoke]

In this process, through Django's WSGI handler with the whole middleware stack (no HTTP
server, no network: what is left is the application's own cost), one request after the
other on one database connection, in the world of `reference_registry_bench.py`:

- `POST /api/v1/bundles/{id}/transfers/`, 1 Wh split off a fresh bundle;
- `POST /api/v1/bundles/{id}/retirements/`, a whole fresh bundle for a beneficiary;
- the baseline, alternated with them in every round: the bare DRF read `/bench/read/`
  (token authentication, throttling, one primary-key read), the least an API request
  costs here.

Printed per kind, the median over the rounds: this process's CPU a request (Python, with
the driver) and its PostgreSQL backend's (/proc/<pid>/schedstat, when the server runs on
this machine), each against the baseline's. Then, from one more round per write kind,
each statement's share of the backend's CPU (grouped by shape), and what ran outside
statements (BEGIN, COMMIT with the deferred foreign-key checks). Steadier than rates on
a shared machine: CPU time, not wall time. With CELERY_BROKER_URL each commit kicks the
ledger's integrator as in production (no worker needs to run).
"""

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.certificates_settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reference_registry_bench import GridProof, gridproof_django
from support import SMOKE_HELP, apply_smoke, backend_cpu_ns

WRITES = {"transfer": "gp_transfer", "retire": "gp_retire"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", choices=list(WRITES), default=list(WRITES))
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, requests=10, rounds=1)

    gridproof_django()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.client import RequestFactory

    gp = GridProof(50)
    app = WSGIHandler()
    factory = RequestFactory(SERVER_NAME="localhost")
    rng = random.Random(3)

    def send(request) -> None:
        method, path, body, headers = request
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        extra.pop("HTTP_CONTENT_TYPE", None)
        if method == "GET":
            environ = factory.get(path, **extra).environ
        else:
            environ = factory.post(path, body, "application/json", **extra).environ
        statuses: list[str] = []
        b"".join(app(environ, lambda status, *_: statuses.append(status)))
        if not statuses[0].startswith(("200", "201")):
            sys.exit(f"{method} {path}: {statuses[0]}")

    def run(kind: str, n: int) -> tuple[float, float]:
        """CPU µs a request: this process's and its backend's."""
        if kind in gp.pools:
            gp.top_up(kind, n)
        make = gp.request(kind, rng)
        backend = backend_cpu_ns()
        own, server = time.process_time(), backend()
        for i in range(n):
            send(make(i))
        if kind in gp.pools:
            gp.pools[kind].used += n
        return (time.process_time() - own) * 1e6 / n, (backend() - server) / 1e3 / n

    kinds = ["bare", *(WRITES[k] for k in args.kinds)]
    for kind in kinds:  # warm: imports, prepared statements, caches
        run(kind, 20)
    spent: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            spent[kind].append(run(kind, args.requests))
    print(f"{args.requests:,} requests a kind and round, median of {args.rounds} rounds")
    base_py = statistics.median(s[0] for s in spent["bare"])
    base_pg = statistics.median(s[1] for s in spent["bare"])
    for kind in kinds:
        py = statistics.median(s[0] for s in spent[kind])
        pg = statistics.median(s[1] for s in spent[kind])
        line = f"  {kind:12} Python {py:7.0f} µs ({py / base_py:4.1f}x the bare read)"
        if base_pg:
            line += f", PostgreSQL {pg:6.0f} µs ({pg / base_pg:4.1f}x)"
        print(line)

    backend = backend_cpu_ns()
    if not backend():
        return
    for kind in kinds[1:]:
        shapes: dict[str, list[float]] = defaultdict(lambda: [0, 0])

        def timed(execute, sql, params, many, context, shapes=shapes):
            before = backend()
            try:
                return execute(sql, params, many, context)
            finally:
                shape = re.sub(r"\(%s(, %s)*\)|\d+", "#", " ".join(str(sql).split()))[:80]
                shapes[shape][0] += 1
                shapes[shape][1] += backend() - before

        n = args.requests
        gp.top_up(kind, n)
        make = gp.request(kind, rng)
        total = backend()
        with connection.execute_wrapper(timed):
            for i in range(n):
                send(make(i))
        gp.pools[kind].used += n
        total = backend() - total
        print(f"{kind}: PostgreSQL CPU µs a request, by statement")
        for shape, (count, ns) in sorted(shapes.items(), key=lambda item: -item[1][1]):
            print(f"  {ns / n / 1e3:7.1f}  {count / n:4.1f}x  {shape}")
        outside = (total - sum(ns for _count, ns in shapes.values())) / n / 1e3
        print(f"  {outside:7.1f}        outside statements (BEGIN, COMMIT)")
    stored = gp.stored()
    print("stored: " + ", ".join(f"{k} {stored[k]}" for k in kinds[1:]))


if __name__ == "__main__":
    main()
