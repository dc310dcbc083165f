"""Bulk ingestion of signed hourly readings through the service layer, against raw baselines.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_assets \
        .venv/bin/python benchmarks/assets_ingest.py [--rows 100000] [--meters 100] [--runs 3]

Creates the database if needed, migrates it, registers `--meters` active devices with one
signing meter each, and builds `--rows` signed hourly readings as one CSV upload (the last
rows/meters hours of every meter, all inside the backdating limit). Then, in this process:

- service: `readings_submit` over the streamed CSV (parsing, per-row validation, Ed25519
  verification on a thread pool, locks, one overlap query per device, Merkle root, COPY,
  one ledger event); the readings tables are emptied before each run;
- raw verify: PyNaCl `crypto_sign_open` of the same rows, one thread;
- raw COPY: psycopg2 `copy_expert` of the same rows, pre-rendered, into the same table,
  and its commit.

It prints readings/s, the ratio of the service time to raw verify + raw COPY, and the peak
resident memory growth during the service call (sampled every 5 ms).
"""

import argparse
import base64
import datetime as dt
import io
import os
import random
import statistics
import sys
import threading
import time

from support import SMOKE_HELP, apply_smoke, ensure_database


class PeakRss:
    """Samples this process's resident set size in a thread; reports the peak growth."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, rows=200, meters=2, runs=1)

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from nacl.bindings import crypto_sign_open
    from nacl.signing import SigningKey

    from accounts.models import Account, Membership, Organisation, User
    from assets import services
    from assets.canonical import reading_bytes
    from assets.models import Device, DeviceOwner, GridArea, Meter, MeterKey, ReadingBatch
    from assets.readings_io import iter_csv_rows

    call_command("migrate", verbosity=0)
    print(
        f"PostgreSQL {connection.pg_version}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )

    # -- fixtures ---------------------------------------------------------------------
    rng = random.Random(42)
    user, _ = User.objects.get_or_create(username="bench-producer")
    org, _ = Organisation.objects.get_or_create(
        country="DE",
        registration_id="BENCH-ASSETS",
        defaults={"legal_name": "Bench Producer", "is_producer": True, "status": "approved"},
    )
    Membership.objects.get_or_create(user=user, organisation=org, defaults={"role": "admin"})
    account, _ = Account.objects.get_or_create(
        number="GP-BENCH-ASSETS", defaults={"organisation": org, "name": "Trading"}
    )
    area, _ = GridArea.objects.get_or_create(
        code="10Y1001A1001A82H",
        defaults={
            "name": "DE-LU",
            "country": "DE",
            "time_zone": "Europe/Berlin",
            "emission_factor_g_per_kwh": "380",
        },
    )
    per_meter = args.rows // args.meters
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    first = now - dt.timedelta(hours=per_meter)
    meters = []
    for i in range(args.meters):
        serial = f"BENCH-{i:05d}"
        meter = Meter.objects.filter(serial=serial).select_related("device").first()
        key = SigningKey(bytes([i % 251 + 1]) * 31 + bytes([i // 251]))
        if meter is None:
            device = Device.objects.create(
                name=f"Bench PV {i}",
                organisation=org,
                grid_area=area,
                technology_code="T010101",
                energy_source_code="F01040100",
                capacity_w=50_000,
                commissioning_date=dt.date(2020, 1, 1),
                latitude="52.5",
                longitude="13.4",
                status=Device.Status.ACTIVE,
                require_signed_readings=True,
            )
            DeviceOwner.objects.create(
                device=device,
                organisation=org,
                account=account,
                share_numerator=1,
                share_denominator=1,
            )
            meter = Meter.objects.create(serial=serial, device=device)
            MeterKey.objects.create(
                meter=meter,
                public_key=base64.b64encode(bytes(key.verify_key)).decode(),
                valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            )
        meters.append((meter, key))

    # -- the upload -------------------------------------------------------------------
    t = time.perf_counter()
    lines = ["meter,start,end,wh,signature"]
    raw = []  # (message, signature, public key) for the verify baseline
    copy_rows = []  # (device, meter, start, end, wh, signature) for the COPY baseline
    for hour in range(per_meter):
        start = first + dt.timedelta(hours=hour)
        end = start + dt.timedelta(hours=1)
        s_iso, e_iso = start.isoformat(), end.isoformat()
        for meter, key in meters:
            wh = rng.randrange(0, 50_000)
            message = reading_bytes(meter.serial, start, end, wh)
            signature = key.sign(message).signature
            lines.append(
                f"{meter.serial},{s_iso},{e_iso},{wh},{base64.b64encode(signature).decode()}"
            )
            raw.append((message, signature, bytes(key.verify_key)))
            copy_rows.append((meter.device_id, meter.pk, s_iso, e_iso, wh, signature))
    body = ("\n".join(lines) + "\n").encode()
    rows = len(raw)
    print(
        f"{rows} signed readings of {args.meters} meters, CSV {len(body) / 1e6:.1f} MB "
        f"(built in {time.perf_counter() - t:.1f} s)"
    )
    del lines

    def empty_tables() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE assets_reading, assets_pendingreading, assets_readingbatch CASCADE"
            )
            cursor.execute("UPDATE assets_meter SET counter_wh = NULL, counter_at = NULL")

    # -- the service ------------------------------------------------------------------
    service_times = []
    growth = []
    for _run in range(args.runs):
        empty_tables()
        with PeakRss() as rss:
            t = time.perf_counter()
            result = services.readings_submit(
                actor=user, rows=iter_csv_rows(io.BytesIO(body), max_bytes=len(body) + 1), now=now
            )
            service_times.append(time.perf_counter() - t)
        growth.append(rss.growth_mb)
        assert result.stored == rows and result.batch.status == "accepted", result

    # -- raw baselines ----------------------------------------------------------------
    t = time.perf_counter()
    for message, signature, public_key in raw:
        crypto_sign_open(signature + message, public_key)
    verify_time = time.perf_counter() - t

    text = io.StringIO()
    copy_times = []
    for _run in range(args.runs):
        empty_tables()
        batch = ReadingBatch.objects.create(
            organisation=org, status="accepted", size=0, merkle_root="00" * 32
        )
        text = io.StringIO(
            "".join(
                f"{d}\t{m}\t{batch.pk}\t{s}\t{e}\t{wh}\t\\\\x{sig.hex()}\tt\t{i}\t\\N\n"
                for i, (d, m, s, e, wh, sig) in enumerate(copy_rows)
            )
        )
        t = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                'COPY assets_reading (device_id, meter_id, batch_id, start, "end", wh, signature, '
                "is_signed, index_in_batch, counter_wh) FROM STDIN",
                text,
            )
        copy_times.append(time.perf_counter() - t)  # COPY and its commit
    empty_tables()

    service = statistics.median(service_times)
    copy = statistics.median(copy_times)
    print()
    print(
        f"service readings_submit : {service:6.2f} s  {rows / service:9,.0f} readings/s"
        f"   (runs: {', '.join(f'{x:.2f}' for x in service_times)} s)"
    )
    print(
        f"raw PyNaCl verify       : {verify_time:6.2f} s  {rows / verify_time:9,.0f} /s (1 thread)"
    )
    print(f"raw psycopg2 COPY       : {copy:6.2f} s  {rows / copy:9,.0f} rows/s")
    print(f"ratio service / (verify + COPY) = {service / (verify_time + copy):.2f}x")
    print(
        f"peak RSS growth during the service call: {max(growth):.0f} MB "
        f"(process peak {PeakRss()._rss() / 1e6:.0f} MB now)"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} (other processes slow every figure above)")


if __name__ == "__main__":
    main()
