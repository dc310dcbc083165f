"""What each middleware costs an API read: the whole stack against the stack without it.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_mw \\
        .venv/bin/python benchmarks/middleware_bench.py [--requests 1000] [--rounds 3] [--smoke]

Creates and migrates the database if needed and adds 2,000 bundles and an API token (as
`bundle_read_bench.py`). Then, in this process, two Django WSGI handlers: the registry's
whole middleware stack (the baseline) and the same stack without one middleware (or,
last, without every middleware an API request does not need: the ones that serve
pages, sessions, messages, CSRF, htmx, static files and the pages' headers). Each request
of a round, `GET /api/v1/bundles/{id}/` with a token and `Accept-Language: ru`, goes to
both handlers in a random order, so the shared machine's load hits both alike. Printed:
per variant, the median over the rounds of each round's median time a request, and what
leaving the middleware out saved (µs and share of the whole stack's time).

The requests change nothing, so the figures say what a middleware costs, not whether the
registry could do without it: the locale middleware, for one, picks the language of the
API's error messages.
"""

import argparse
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

PAGES_ONLY = (
    "ContentSecurityPolicyMiddleware",
    "WhiteNoiseMiddleware",
    "SessionMiddleware",
    "CommonMiddleware",
    "CsrfViewMiddleware",
    "AuthenticationMiddleware",
    "MessageMiddleware",
    "XFrameOptionsMiddleware",
    "HtmxMiddleware",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, requests=20, rounds=1)

    support.ensure_database()
    for scope in ("ANON", "USER", "LOGIN", "LEDGER"):  # throttled as in production, never hit
        os.environ[f"THROTTLE_{scope}"] = "100000000/minute"
    support.setup_django()
    from bundle_read_bench import make_world
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.test.client import RequestFactory
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    ids, token = make_world(50 if args.smoke else 2000, uuid.uuid4().hex[:8])
    factory = RequestFactory(
        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE="ru", SERVER_NAME="localhost"
    )

    def handler(without: tuple[str, ...]) -> WSGIHandler:
        stack = [m for m in settings.MIDDLEWARE if m.rsplit(".", 1)[1] not in without]
        with override_settings(MIDDLEWARE=stack):
            return WSGIHandler()

    def seconds(app: WSGIHandler, path: str) -> float:
        statuses: list[str] = []
        started = time.perf_counter()
        b"".join(app(factory.get(path).environ, lambda status, *_: statuses.append(status)))
        elapsed = time.perf_counter() - started
        if not statuses[0].startswith("200"):
            sys.exit(f"{path}: {statuses[0]}")
        return elapsed

    whole = handler(())
    # One at a time, but the session middleware only with the two that need it.
    sessions = ("SessionMiddleware", "AuthenticationMiddleware", "MessageMiddleware")
    groups = [(n,) for n in (*PAGES_ONLY, "LocaleMiddleware", "SecurityMiddleware")]
    groups = [g for g in groups if g[0] not in sessions] + [sessions]
    variants = [
        (f"without {'+'.join(g.removesuffix('Middleware') for g in group)}", group)
        for group in groups
    ]
    variants.append(("without every pages-only one", PAGES_ONLY))
    rng = random.Random(7)
    print(f"GET /api/v1/bundles/{{id}}/, {args.rounds} rounds x {args.requests:,} pairs")
    for label, without in variants:
        lean = handler(without)
        for app in (whole, lean):  # warm: imports, prepared statements, caches
            for _ in range(20):
                seconds(app, f"/api/v1/bundles/{ids[0]}/")
        whole_us, lean_us = [], []
        for _ in range(args.rounds):
            pairs = []
            for _ in range(args.requests):
                path = f"/api/v1/bundles/{rng.choice(ids)}/"
                if rng.random() < 0.5:
                    pairs.append((seconds(whole, path), seconds(lean, path)))
                else:
                    lean_first = seconds(lean, path)
                    pairs.append((seconds(whole, path), lean_first))
            whole_us.append(statistics.median(p[0] for p in pairs) * 1e6)
            lean_us.append(statistics.median(p[1] for p in pairs) * 1e6)
        full, cut = statistics.median(whole_us), statistics.median(lean_us)
        print(
            f"  {label:44} whole stack {full:6.0f} µs, {cut:6.0f} µs without: "
            f"saves {full - cut:4.0f} µs ({(full - cut) / full:5.1%})",
            flush=True,
        )


if __name__ == "__main__":
    main()
