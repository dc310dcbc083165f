"""Community allocation + hourly matching in bulk, and the cost of a consent check on a read.

    .venv/bin/python benchmarks/consumers_bench.py [--households 1000] [--smoke]

Part 1 (pure numpy, no database): N households x a year of 15-minute intervals, processed
in chunks of intervals: the dynamic key's allocation with largest-remainder rounding plus
hourly matching, against the raw arithmetic of the same steps (floor division, minimum,
sums; no rounding repair) in the same run. Peak memory from tracemalloc (numpy reports
its buffers there).

Part 2 (SQLite in memory, or a fresh PostgreSQL database when DATABASE_URL names one: it
is dropped and created): p50 of a site's readings read by the household itself (no
consent check, no access record) against the same read by a grantee (consent check +
access record), and against the bare readings query. Then the check alone with
`--consents` grants in the table (other sites' and grantees', and the grantee's expired
history on the site) against a bare indexed SELECT on the consent table, with the ratio.

Part 3 (needs a broker on 127.0.0.1:1883, skipped otherwise): signed readings per second
published over MQTT and ingested by the meter gateway, against the same number of signed
readings POSTed to /api/v1/readings/ in batches of the same size (in-process HTTP stack).
"""

import argparse
import os
import statistics
import time
import tracemalloc
import warnings

import numpy as np
import support  # sets up sys.path and settings; recreate_database

from consumers.allocation import DYNAMIC, allocate, match_hourly

YEAR_QUARTERS = 365 * 96


def _chunk_inputs(rng, n_households: int, chunk: int):
    consumption = rng.integers(0, 400, size=(chunk, n_households), dtype=np.int64)
    production = rng.integers(0, 400 * n_households // 2, size=chunk, dtype=np.int64)
    active = np.ones((chunk, n_households), dtype=bool)
    certificates = rng.integers(0, 1600, size=(chunk // 4, n_households), dtype=np.int64)
    return production, consumption, active, certificates


def _raw(production, consumption, active, certificates):
    total = consumption.sum(axis=1)
    used = np.minimum(production, total)
    alloc = used[:, None] * consumption // np.maximum(total, 1)[:, None]
    hourly = consumption.reshape(-1, 4, consumption.shape[1]).sum(axis=1)
    return alloc.sum() + np.minimum(hourly, certificates).sum()


def _full(production, consumption, active, certificates):
    result = allocate(production=production, consumption=consumption, active=active, key=DYNAMIC)
    hourly = consumption.reshape(-1, 4, consumption.shape[1]).sum(axis=1)
    matching = match_hourly(hourly, certificates)
    return result.allocated.sum() + matching.matched.sum()


def bench_allocation(n_households: int, intervals: int, chunk: int) -> None:
    rng = np.random.default_rng(12)
    chunks = [chunk] * (intervals // chunk) + ([intervals % chunk] if intervals % chunk else [])
    inputs = {size: _chunk_inputs(rng, n_households, size) for size in set(chunks)}
    print(
        f"allocation + matching: {n_households} households x {intervals} intervals "
        f"(chunks of {chunk})"
    )
    rows = []
    for name, fn in (("raw numpy arithmetic (baseline)", _raw), ("allocate + match_hourly", _full)):
        tracemalloc.start()
        started = time.perf_counter()
        for size in chunks:
            fn(*inputs[size])
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((name, intervals / seconds, seconds, peak / 2**20))
    for name, rate, seconds, peak in rows:
        print(f"  {name:34s} {rate:12,.0f} intervals/s {seconds:8.2f} s  peak {peak:8.1f} MiB")
    print(f"  ratio full / raw time: {rows[1][2] / rows[0][2]:.2f}x")


def _database() -> str:
    """SQLite in memory, or a fresh PostgreSQL database when DATABASE_URL names one."""
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import dj_database_url

        cfg = dj_database_url.parse(url)
        support.recreate_database(cfg)  # start from nothing: the bench counts rows it made
        settings.DATABASES["default"] = cfg | {"ATOMIC_REQUESTS": False}
        vendor = "PostgreSQL"
    else:
        settings.DATABASES["default"] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
        }
        vendor = "SQLite"
    django.setup()
    return vendor


def bench_consent(reads: int, consents: int) -> None:
    import datetime as dt

    vendor = _database()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0, run_syncdb=True)
    from accounts.models import Membership, Organisation, User
    from assets.models import Reading
    from consumers.selectors import site_readings_read
    from tests.assets.factories import DeviceFactory, MeterFactory  # noqa: F401
    from tests.consumers.factories import SiteFactory, consent, site_meter

    site = SiteFactory()
    link = site_meter(site)
    supplier = Organisation.objects.create(
        legal_name="Supplier", country="DE", registration_id="S1", status="approved"
    )
    reader = User.objects.create(username="reader")
    Membership.objects.create(user=reader, organisation=supplier, role="viewer")
    consent(site, supplier, [link])
    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=1)
    from assets.models import ReadingBatch

    batch = ReadingBatch.objects.create(
        organisation=site.household.organisation, status="accepted", size=96, merkle_root="0" * 64
    )
    Reading.objects.bulk_create(
        Reading(
            device=link.meter.device,
            meter=link.meter,
            batch=batch,
            index_in_batch=i,
            start=start + dt.timedelta(minutes=15 * i),
            end=start + dt.timedelta(minutes=15 * (i + 1)),
            wh=100,
        )
        for i in range(96)
    )

    from consumers.selectors import AccessRequest, consent_check, site_for_read

    query = {"site_id": site.pk, "start": start, "end": end, "resolution": "hourly"}
    site_row = site_for_read(site_id=site.pk)
    request = AccessRequest("readings", [link], start, end, "hourly")
    jobs = {
        "bare readings query (baseline)": lambda: list(
            Reading.objects.filter(
                meter_id=link.meter_id, start__gte=start, end__lte=end
            ).values_list("start", "wh")
        ),
        "read by the household (no check)": lambda: site_readings_read(
            user=site.household.person, **query
        ),
        "read by a grantee (check + record)": lambda: site_readings_read(user=reader, **query),
        "household's own check (membership)": lambda: consent_check(
            user=site.household.person, site=site_row, request=request
        ),
        "grantee's check alone (grant + record)": lambda: consent_check(
            user=reader, site=site_row, request=request
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(reads):  # interleaved, so load on a shared machine hits all alike
        for name, job in jobs.items():
            began = time.perf_counter()
            job()
            samples[name].append(time.perf_counter() - began)
    p50 = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"consent check on a day of 15-minute readings (p50 of {reads} reads, {vendor}):")
    for name, value in p50.items():
        print(f"  {name:40s} {value:7.3f} ms")
    added = p50["read by a grantee (check + record)"] - p50["read by the household (no check)"]
    print(f"  consent check overhead on the read         {added:7.3f} ms")
    bench_consent_many(reads, consents, site, link, supplier, reader, start, end, vendor)


def bench_consent_many(reads, consents, site, link, supplier, reader, start, end, vendor):
    """The check alone with `consents` grants in the table (other sites' and other grantees',
    and the grantee's own expired ones on this site), against a bare indexed SELECT."""
    import datetime as dt

    from django.db import connection
    from django.utils import timezone

    from accounts.models import Organisation
    from consumers.models import Consent
    from consumers.selectors import AccessRequest, consent_check, site_for_read
    from tests.consumers.factories import SiteFactory, site_meter

    n_sites = max(1, int(consents**0.5))
    n_grantees = max(1, consents // n_sites)
    links = [site_meter(SiteFactory()) for _ in range(n_sites - 1)] + [link]
    others = Organisation.objects.bulk_create(
        Organisation(
            legal_name=f"Grantee {i}", country="DE", registration_id=f"G{i}", status="approved"
        )
        for i in range(n_grantees - 1)
    )
    grantees = [*others, supplier]
    now = timezone.now()
    rows = []
    for other in links:
        for grantee in grantees:
            if other.pk == link.pk and grantee.pk == supplier.pk:
                continue  # the grant in force exists already
            rows.append(
                Consent(
                    household_id=other.site.household_id,
                    site_id=other.site_id,
                    grantee=grantee,
                    purpose="supply",
                    resolution="hourly",
                    valid_from=now - dt.timedelta(days=400),
                    valid_to=now + dt.timedelta(days=400),
                    granted_by_id=other.site.household.person_id,
                    created_at=now,
                )
            )
    # the grantee's own history on this site: a grant a day, expired, for a long while
    history = max(1, consents // 100)
    rows += [
        Consent(
            household_id=site.household_id,
            site_id=site.pk,
            grantee=supplier,
            purpose="supply",
            resolution="hourly",
            valid_from=now - dt.timedelta(days=k + 3),
            valid_to=now - dt.timedelta(days=k + 2),
            granted_by_id=site.household.person_id,
            created_at=now,
        )
        for k in range(history)
    ]
    made = Consent.objects.bulk_create(rows, batch_size=2000)
    link_of = {x.site_id: x.pk for x in links}
    Through = Consent.meters.through
    Through.objects.bulk_create(
        (Through(consent_id=c.pk, sitemeter_id=link_of[c.site_id]) for c in made),
        batch_size=5000,
    )
    total = Consent.objects.count()
    site_row = site_for_read(site_id=site.pk)
    request = AccessRequest("readings", [link], start, end, "hourly")
    bare_sql = (
        "SELECT id FROM consumers_consent WHERE site_id = %s AND grantee_id = %s "
        "ORDER BY id DESC LIMIT 1"
    )

    def bare():
        with connection.cursor() as cursor:
            cursor.execute(bare_sql, [site.pk, supplier.pk])
            return cursor.fetchall()

    jobs = {
        "bare indexed SELECT (baseline)": bare,
        "grantee's check alone": lambda: consent_check(user=reader, site=site_row, request=request),
    }
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(reads):
        for name, job in jobs.items():
            began = time.perf_counter()
            job()
            samples[name].append(time.perf_counter() - began)
    p50 = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"consent check alone with {total} consents in the table (p50 of {reads}, {vendor}):")
    for name, value in p50.items():
        print(f"  {name:40s} {value:7.3f} ms")
    ratio = p50["grantee's check alone"] / p50["bare indexed SELECT (baseline)"]
    print(f"  ratio check / bare SELECT: {ratio:.1f}x")


def bench_mqtt(messages: int, per_message: int) -> None:
    import datetime as dt
    import json
    import socket
    import uuid

    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
    except OSError:
        print("mqtt ingestion: skipped (no broker on 127.0.0.1:1883)")
        return
    import paho.mqtt.client as mqtt
    from django.utils import timezone
    from rest_framework.test import APIClient

    from assets.models import Reading
    from consumers.gateway import MeterGateway
    from tests.assets.factories import DeviceFactory, add_key, interval_row, signing_key
    from tests.consumers.factories import SiteFactory, site_meter

    site = SiteFactory()
    key = signing_key(3)
    device = DeviceFactory(
        organisation=site.household.organisation, grid_area=site.grid_area, interval_minutes=15
    )
    meters = [site_meter(site, device=device).meter for _ in range(2)]
    for meter in meters:
        add_key(meter, key)
    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    first = end - dt.timedelta(minutes=15 * messages * per_message)  # within review limits

    def batches(meter):
        rows = [
            interval_row(
                meter, first + dt.timedelta(minutes=15 * i), 100 + i % 50, key=key, minutes=15
            )
            for i in range(messages * per_message)
        ]
        return [rows[i : i + per_message] for i in range(0, len(rows), per_message)]

    mqtt_batches, http_batches = batches(meters[0]), batches(meters[1])
    total = messages * per_message

    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = APIClient()
    client.force_authenticate(site.household.person)
    started = time.perf_counter()
    for batch in http_batches:
        response = client.post("/api/v1/readings/", batch, format="json")
        assert response.status_code == 201, response.content[:300]
    http_seconds = time.perf_counter() - started

    prefix = f"bench/{uuid.uuid4().hex}"
    gateway = MeterGateway(
        broker_url="mqtt://127.0.0.1:1883", prefix=prefix, client_id=f"bench-{uuid.uuid4().hex}"
    )
    gateway.start()
    publisher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    topic = f"{prefix}/{meters[0].serial}/readings"
    started = time.perf_counter()
    for batch in mqtt_batches:
        publisher.publish(topic, json.dumps(batch), qos=1)
    gateway.run(max_messages=messages, idle_exit=30)
    mqtt_seconds = time.perf_counter() - started
    publisher.loop_stop()
    publisher.disconnect()
    gateway.stop()
    stored = Reading.objects.filter(meter=meters[0]).count()
    assert stored == total, (stored, total, gateway.stats)
    print(f"signed readings ingestion: {messages} messages x {per_message} readings")
    print(f"  HTTP POST /api/v1/readings/ (baseline) {total / http_seconds:10,.0f} readings/s")
    print(f"  MQTT publish -> gateway -> stored      {total / mqtt_seconds:10,.0f} readings/s")
    print(f"  ratio MQTT / HTTP: {http_seconds / mqtt_seconds:.2f}x")


def main() -> None:
    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise")
    warnings.filterwarnings("ignore", message="No directory at")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=YEAR_QUARTERS)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--per-message", type=int, default=24)
    parser.add_argument("--consents", type=int, default=10_000)
    parser.add_argument(
        "--only", choices=["allocation", "consent", "mqtt"], help="run one part only"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.households, args.intervals, args.chunk, args.reads = 20, 960, 192, 20
        args.messages, args.per_message, args.consents = 5, 4, 200
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (shared machines vary run to run)")
    if args.only in (None, "allocation"):
        bench_allocation(args.households, args.intervals, args.chunk)
    if args.only in (None, "consent", "mqtt"):
        bench_consent(args.reads, args.consents)  # sets up Django (MQTT needs it too)
    if args.only in (None, "mqtt"):
        bench_mqtt(args.messages, args.per_message)


if __name__ == "__main__":
    main()
