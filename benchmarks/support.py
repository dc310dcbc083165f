"""Shared set-up for the benchmarks: run as `python benchmarks/<topic>.py`.

Importing this puts the repository on sys.path and selects the development settings,
so each benchmark can then import Django and the project.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_ENV", "development")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")


def ensure_database(why: str = "this benchmark measures PostgreSQL") -> dict:
    """Create the PostgreSQL database named by DATABASE_URL if missing; return its config."""
    import dj_database_url
    import psycopg2

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(f"Set DATABASE_URL=postgres://... ({why}).")
    cfg = dj_database_url.parse(url)
    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"] or None,
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()
    return cfg


def recreate_database(cfg: dict) -> None:
    """Drop and create the PostgreSQL database of a Django database config (benchmarks that
    count the rows they made start from nothing)."""
    import psycopg2

    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"] or None,
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}"')
        cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()


SMOKE_HELP = "tiny sizes, a few seconds: checks that the benchmark still runs (CI), not speed"


def apply_smoke(args, **tiny) -> None:
    """With --smoke, replace the sizes in `args` by the tiny ones given."""
    if getattr(args, "smoke", False):
        for name, value in tiny.items():
            setattr(args, name, value)
        print(f"smoke run ({', '.join(f'{k}={v}' for k, v in tiny.items())}): figures mean nothing")


def dsn(cfg: dict) -> str:
    """A psycopg2 connection string for the raw baselines, from a Django database config."""
    parts = {
        "dbname": cfg["NAME"],
        "user": cfg["USER"],
        "password": cfg["PASSWORD"],
        "host": cfg["HOST"],
        "port": cfg["PORT"],
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def setup_django() -> None:
    """django.setup(); without CELERY_BROKER_URL the ledger's on-commit kick is switched off.

    Without a broker the kick integrates inline; in production it only sets a Redis flag
    (and now and then enqueues the integrator task). Give a CELERY_BROKER_URL to pay that
    round trip per commit, as production does.
    """
    import django

    django.setup()
    if not os.environ.get("CELERY_BROKER_URL"):
        import ledger.services

        ledger.services.kick = lambda: None


def schedstat_ns(pid: int) -> int:
    """CPU nanoseconds process `pid` has run (Linux /proc/<pid>/schedstat, precise to the
    nanosecond); 0 when there is no such process here (a server on another machine)."""
    path = Path(f"/proc/{pid}/schedstat")
    return int(path.read_text().split()[0]) if pid and path.exists() else 0


def backend_cpu_ns():
    """A function giving the CPU nanoseconds the PostgreSQL backend of Django's connection
    has run so far (`schedstat_ns`); one giving 0 when that server does not run on this
    machine (or the backend is not PostgreSQL)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return lambda: 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return lambda: schedstat_ns(pid)


# ---------------------------------------------------------------- bench worlds (after setup)


def bench_grid_area():
    """The benchmarks' grid area (made once per database)."""
    from assets.models import GridArea

    area, _ = GridArea.objects.get_or_create(
        code="10YBENCH-------1",
        defaults={
            "name": "Bench",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "emission_factor_g_per_kwh": "380",
            "expiry_months": 12,
        },
    )
    return area


def bench_organisations(tag: str, names: tuple[str, ...], prefix: str) -> list:
    """Approved producer-and-trader organisations, one per name (registration ids
    `<prefix>-<name>-<tag>`, so runs with distinct tags never clash)."""
    from accounts.models import Organisation

    return [
        Organisation.objects.create(
            legal_name=f"Bench {name} {tag}",
            country="DE",
            registration_id=f"{prefix}-{name}-{tag}",
            is_producer=True,
            is_trader=True,
            status=Organisation.Status.APPROVED,
        )
        for name in names
    ]


def bench_device(organisation, name: str):
    """An approved 1 GW solar device of `organisation` in the benchmarks' grid area."""
    import datetime as dt

    from assets.models import Device

    return Device.objects.create(
        name=name,
        organisation=organisation,
        grid_area=bench_grid_area(),
        technology_code="T010101",
        energy_source_code="F01040100",
        capacity_w=10**9,
        commissioning_date=dt.date(2020, 1, 1),
        latitude=0,
        longitude=0,
        status=Device.Status.APPROVED,
    )


def bench_issued_bundles(organisation, account, tag: str, n_bundles: int, start, hour_of=None):
    """An approved device of `organisation` with one hourly issuance of `n_bundles` active
    1 kWh bundles held by `account`; bundle i covers hour `hour_of(i)` after `start`
    (default i). Rows are written directly: the benchmarks measure what comes after."""
    import datetime as dt

    from certificates.models import Bundle, Issuance

    hour, wh = dt.timedelta(hours=1), 1_000
    hour_of = hour_of or (lambda i: i)
    area = bench_grid_area()
    device = bench_device(organisation, f"Bench PV {tag}")
    issuance = Issuance.objects.create(
        device=device,
        issued_at=start,
        granularity="hour",
        period_start=start,
        period_end=start + n_bundles * hour,
        unit_start=0,
        unit_end=n_bundles * wh,
        volume_wh=n_bundles * wh,
        device_name=device.name,
        technology_code=device.technology_code,
        energy_source_code=device.energy_source_code,
        grid_area=area,
        grid_area_code=area.code,
        country="DE",
    )
    bundles = Bundle.objects.bulk_create(
        [
            Bundle(
                device=device,
                issuance=issuance,
                account=account,
                unit_start=i * wh,
                unit_end=(i + 1) * wh,
                period_start=start + hour_of(i) * hour,
                period_end=start + (hour_of(i) + 1) * hour,
                status=Bundle.Status.ACTIVE,
            )
            for i in range(n_bundles)
        ],
        batch_size=5000,
    )
    return device, bundles


def statements_profile(run, label: str, *, cprofile: bool = False, top: int = 25) -> None:
    """Call `run()` and print its statements grouped by shape (numbers and parameter
    lists folded), with count and total ms, the costliest first; with `cprofile`, also
    the functions that spent the most time of their own. Shows what grows with a
    database's size when a first round is set beside a last one."""
    import cProfile
    import pstats
    import re
    import time
    from collections import defaultdict

    from django.db import connection

    spent: dict[str, list] = defaultdict(lambda: [0, 0.0])

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r"\(%s(, %s)*\)|\d+", "#", " ".join(str(sql).split()))[:150]
            spent[shape][0] += 1
            spent[shape][1] += time.perf_counter() - began

    profiler = cProfile.Profile() if cprofile else None
    began = time.perf_counter()
    with connection.execute_wrapper(timed):
        if profiler:
            profiler.runcall(run)
        else:
            run()
    total = time.perf_counter() - began
    in_sql = sum(ms for _n, ms in spent.values())
    print(
        f"--- {label}: {total * 1000:.0f} ms, {sum(n for n, _ in spent.values())} statements, "
        f"{in_sql * 1000:.0f} ms in them"
    )
    for shape, (n, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{n:6d} {seconds * 1000:9.1f} ms  {shape}")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(top)
        project = f"^{REPO}/(?!\\.venv|benchmarks)"
        stats.sort_stats("cumulative").print_stats(project, 2 * top)
