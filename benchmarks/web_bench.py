"""Server time of every dashboard of the web app, against a bare template render.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_web \\
        .venv/bin/python benchmarks/web_bench.py [--devices 50] [--days 365] \\
        [--bundles 100000] [--requests 100] [--smoke]

Creates and migrates the database if needed and adds a fresh world each run: the web
tests' world (`tests/web/world.py`: one of each person, something waiting in every queue),
then a producer fleet of `--devices` devices with `--days` of hourly readings each (one
accepted batch per device, written by COPY through `assets.storage.readings_insert`) and
`--bundles` certificate bundles in the buyer's account (spread over the fleet, a year of
vintages, one in ten retired; `certificates.storage.bundle_rows_insert`). The set-up goes
around the services on purpose: the benchmark measures the pages, not the writes.

Each page is fetched `--requests` times through Django's test Client in this process
(the whole middleware stack: sessions, authentication, CSRF, locale, CSP), the pages
interleaved so the shared machine's load hits all alike. The baseline, in the same run:
a view rendering a one-line template through the same stack for a signed-in person
(`/bench/bare/`). Printed: p50 and p99 in ms, p50 over the baseline's, and the number of
SQL queries each page makes (one request, counted separately from the timed ones).
"""

import argparse
import datetime as dt
import itertools
import statistics
import sys
import time
import types
import uuid

from support import SMOKE_HELP, apply_smoke, ensure_database, setup_django

PAGES = [
    ("bare template (baseline)", "producer", "/bench/bare/"),
    ("front door /", None, "/"),
    ("producer /producer/", "producer", "/producer/"),
    ("producer chart, hourly", "producer", "/producer/generation/?step=hour"),
    ("producer chart, monthly", "producer", "/producer/generation/?step=month"),
    ("buyer /holdings/", "buyer", "/holdings/"),
    ("auditor /audit/", "auditor", "/audit/"),
    ("issuing body /issuing/", "issuing_body", "/issuing/"),
    ("household /household/", "household", "/household/"),
    ("household /household/consents/", "household", "/household/consents/"),
]


def _bare_urlconf():
    """The registry's URLs plus /bench/bare/: a trivial template, the same middleware."""
    from django.http import HttpResponse
    from django.template import engines
    from django.urls import path

    from registry.urls import urlpatterns

    template = engines["django"].from_string("<!doctype html><p>{{ user.username }}</p>")

    def bare(request):
        return HttpResponse(template.render({"user": request.user}, request))

    module = types.ModuleType("web_bench_urls")
    module.urlpatterns = [path("bench/bare/", bare), *urlpatterns]
    return module


def _fleet(world, devices: int, days: int) -> list:
    """`devices` approved devices of the world's producer, `days` of hourly readings each."""
    from django.db import transaction
    from django.utils import timezone

    from assets.ingest.records import Entry
    from assets.models import ReadingBatch
    from assets.storage import readings_insert
    from tests.assets.factories import MeterFactory
    from tests.certificates.factories import device_with_owners

    producer = world.device.organisation
    end = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days)
    hours = days * 24
    stamps = [start + dt.timedelta(hours=i) for i in range(hours + 1)]
    fleet = [world.device]
    began = time.perf_counter()
    with transaction.atomic():
        for i in range(devices - 1):
            device, _ = device_with_owners(
                producer=producer, name=f"Fleet {i:02d}", issuance_requires_approval=False
            )
            fleet.append(device)
        for n, device in enumerate(fleet):
            meter = MeterFactory(device=device)
            batch = ReadingBatch.objects.create(
                organisation=producer,
                device=device,
                meter=meter,
                status=ReadingBatch.Status.ACCEPTED,
                size=hours,
                merkle_root="0" * 64,
            )
            info = types.SimpleNamespace(id=meter.pk, device=types.SimpleNamespace(id=device.pk))
            entries = [
                Entry(
                    row=i,
                    meter=info,
                    start=stamps[i],
                    end=stamps[i + 1],
                    wh=(i * 37 + n * 101) % 5000,
                    signature=None,
                )
                for i in range(hours)
            ]
            readings_insert(batch, entries, held=False)
    seconds = time.perf_counter() - began
    print(f"  fleet: {len(fleet)} devices x {hours} hourly readings in {seconds:.1f} s")
    return fleet


def _bundles(world, fleet: list, count: int) -> None:
    """`count` bundles in the buyer's account, a year of vintages, one in ten retired."""
    from django.db import transaction
    from django.utils import timezone

    from certificates.models import Bundle
    from certificates.storage import bundle_rows_insert

    issuance_id = Bundle.objects.filter(device=world.device).values_list("issuance_id", flat=True)[
        0
    ]
    first = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=366)
    rows = []
    for i in range(count):
        period_start = first + dt.timedelta(hours=i % (365 * 24))
        status = Bundle.Status.RETIRED if i % 10 == 9 else Bundle.Status.ACTIVE
        units = 10_000_000 + i * 1000  # far above any unit the world issued
        rows.append(
            [
                fleet[i % len(fleet)].pk,
                issuance_id,
                world.buyer_account.pk,
                None,
                units,
                units + 1000,
                period_start,
                period_start + dt.timedelta(hours=1),
                (period_start + dt.timedelta(days=365)).date(),
                int(status),
            ]
        )
    began = time.perf_counter()
    with transaction.atomic():
        bundle_rows_insert(rows)
    print(f"  buyer: {count} bundles in {time.perf_counter() - began:.1f} s")


def _clients(world) -> dict:
    from django.test import Client

    clients = {None: Client(HTTP_HOST="localhost")}
    for role in ("producer", "buyer", "auditor", "issuing_body", "household"):
        client = Client(HTTP_HOST="localhost")
        client.force_login(world.users[role])
        clients[role] = client
    return clients


def _measure(clients: dict, requests: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    queries = {}
    for name, role, url in PAGES:  # warm-up, status check and query count
        with CaptureQueriesContext(connection) as captured:
            response = clients[role].get(url)
        if response.status_code != 200:
            sys.exit(f"{url} as {role}: HTTP {response.status_code}")
        queries[name] = len(captured)
    samples = {name: [] for name, _, _ in PAGES}
    for _ in range(requests):
        for name, role, url in PAGES:
            began = time.perf_counter()
            clients[role].get(url)
            samples[name].append(time.perf_counter() - began)
    return {"samples": samples, "queries": queries}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50, help="producer's devices")
    parser.add_argument("--days", type=int, default=365, help="hourly readings per device")
    parser.add_argument("--bundles", type=int, default=100_000, help="bundles the buyer holds")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, devices=3, days=3, bundles=300, requests=3)

    ensure_database()
    setup_django()
    from django.core.management import call_command
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    from tests.web.world import build_web_world

    _fresh_sequences()
    print(
        f"world: {args.devices} devices x {args.days} days of hourly readings, "
        f"{args.bundles} bundles for the buyer"
    )
    world = build_web_world(tag="-" + uuid.uuid4().hex[:8])
    fleet = _fleet(world, args.devices, args.days)
    _bundles(world, fleet, args.bundles)
    _analyze()

    with override_settings(ROOT_URLCONF=_bare_urlconf()):
        result = _measure(_clients(world), args.requests)
    samples, queries = result["samples"], result["queries"]
    base = statistics.median(samples[PAGES[0][0]])
    print(f"\nserver time per page, {args.requests} requests each (ms; test Client, in process):")
    print(f"  {'page':34s} {'p50':>8s} {'p99':>8s} {'p50/bare':>9s} {'queries':>8s}")
    for name, _, _ in PAGES:
        values = samples[name]
        p50 = statistics.median(values)
        print(
            f"  {name:34s} {p50 * 1000:8.2f} {_p99(values) * 1000:8.2f} "
            f"{p50 / base:8.1f}x {queries[name]:8d}"
        )


def _fresh_sequences() -> None:
    """Start every test factory's sequence at a new number, so a second run's unique
    names, registration ids and serials do not collide with the first's."""
    import factory

    import tests.assets.factories
    import tests.certificates.factories
    import tests.consumers.factories
    import tests.factories

    stamp = time.time_ns() // 1000 % 10**9
    tests.consumers.factories._points = itertools.count(stamp)  # metering point ids
    pending = [factory.django.DjangoModelFactory]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if not sub._meta.abstract:
                sub.reset_sequence(stamp, force=True)


def _analyze() -> None:
    """Fresh planner statistics after the bulk load (autovacuum may not have run yet)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


if __name__ == "__main__":
    main()
