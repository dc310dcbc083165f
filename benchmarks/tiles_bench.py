"""C2SP tlog-tiles on PostgreSQL: tile write rate against the integrator, bytes on disk.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_tiles \
        .venv/bin/python benchmarks/tiles_bench.py [--rounds 20 --batch 5000] [--smoke]

Drops and recreates the database, then grows the log round by round, as the registry
does between checkpoints: queue `batch` transfer-sized events (COPY), integrate them
(`ledger_integrate`, timed: the integrator alone, the baseline), sign a checkpoint, then
bring the tiles directory up to it (`ledger.tiles.tiles_write`, timed). Prints, in the
same run:

- tiles written per round: entries/s, and the time against the integrator's for the
  same entries (the ratio tells whether one tiles writer keeps up with one integrator);
- a first fill: `tiles_write` of the whole log into an empty directory (the
  `manage.py ledger_tiles` catch-up), entries/s against the integrator;
- bytes per entry on disk: the files' bytes and the blocks they take, against the
  entries' own bytes;
- reading back: `check_tiles` (what `python -m ledger.verify tiles --dir` does) over the
  directory, entries/s;
- entry sizes: the canonical bytes of the largest events the services can make (a year
  of hourly issuance, a retirement of 1000 bundles, an expiry of 1000 bundles) against the
  65,535 bytes a tile's entry bundle can hold.
"""

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from support import SMOKE_HELP, apply_smoke, ensure_database, recreate_database, setup_django


def transfer_event(i: int) -> bytes:
    """A transfer-sized canonical event (about 300 bytes), keys in RFC 8785 order."""
    return (
        f'{{"actor":"user:{i % 997}","at":"2026-01-01T00:00:00.{i % 1_000_000:06d}Z",'
        f'"data":{{"bundle_id":{i},"from_account_id":{i % 1000},'
        f'"to_account_id":{(i + 1) % 1000},"unit_end":{i * 1000 + 1000},'
        f'"unit_start":{i * 1000},"volume_wh":1000}},'
        f'"subject":["bundle:{i}","account:{i % 1000}"],"type":"certificate.transferred"}}'
    ).encode()


def queue(start: int, count: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from ledger import storage

    now = timezone.now()
    rows = [
        (
            "certificate.transferred",
            f'["bundle:{i}", "account:{i % 1000}"]',
            f"user:{i % 997}",
            transfer_event(i),
            now,
        )
        for i in range(start, start + count)
    ]
    with transaction.atomic():
        storage.bulk_insert(
            "ledger_pendingevent", ("kind", "subjects", "actor", "event", "created_at"), rows
        )


def disk_usage(root: Path) -> tuple[int, int, int]:
    """(files, bytes, bytes of the blocks they take) under root, lock and temp files aside."""
    files = size = blocks = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            files += 1
            size += stat.st_size
            blocks += stat.st_blocks * 512
    return files, size, blocks


def largest_events() -> dict[str, int]:
    """Canonical bytes of the largest events the services can make (shaped like their
    builders in certificates/events.py and certificates/services)."""
    from ledger.canonical import canonical_bytes

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hours = 366 * 24  # certificates.services.issuance.MAX_REQUEST_DAYS of hourly periods
    unit = 10_000_000_000
    periods = [
        [
            at + dt.timedelta(hours=h),
            at + dt.timedelta(hours=h + 1),
            unit + h * 5000,
            unit + (h + 1) * 5000,
            [[1_000_000 + h, 12345, unit + h * 5000, unit + (h + 1) * 5000]],
        ]
        for h in range(hours)
    ]
    issued = {
        "type": "certificate.issued",
        "at": at,
        "actor": "user:123",
        "subject": ["issuance:99999", "device:4321", "account:12345"]
        + [f"bundle:{1_000_000 + h}" for h in range(hours)],
        "data": {
            "issuance_id": 99999,
            "request_id": 88888,
            "device_id": 4321,
            "issuing_body_id": 7,
            "granularity": "hourly",
            "unit_start": unit,
            "unit_end": unit + hours * 5000,
            "volume_wh": hours * 5000,
            "attributes": {
                "technology_code": "T020001",
                "energy_source_code": "F01050100",
                "grid_area": "10YDE-RWENET---I",
                "country": "DE",
                "capacity_w": 5_000_000,
                "commissioning_date": "2020-01-01",
                "support": "none",
                "emission_factor_g_per_kwh": "0",
                "is_storage": False,
                "expiry_months": 12,
            },
            "periods": periods,
        },
    }
    items = [
        {
            "bundle_id": 1_000_000 + i,
            "device_id": 4321,
            "moved_bundle_id": 2_000_000 + i,
            "rest_bundle_id": 3_000_000 + i,
            "unit_start": unit + i * 5000,
            "unit_end": unit + i * 5000 + 2500,
            "volume_wh": 2500,
        }
        for i in range(1000)
    ]
    retired = {
        "type": "certificate.retired",
        "at": at,
        "actor": "user:123",
        "subject": [f"bundle:{b}" for i in range(1000) for b in (1_000_000 + i, 2_000_000 + i)]
        + ["retirement:77777", "account:12345"],
        "data": {
            "retirement_id": 77777,
            "public_id": "R-2026-ABCDEFGHJKLM",
            "account_id": 12345,
            "volume_wh": 2_500_000,
            "beneficiary_country": "DE",
            "consumption_start": at,
            "consumption_end": at + dt.timedelta(days=31),
            "purpose": "x" * 200,
            "claim_commitment": "0" * 64,
            "items": items,
        },
    }
    ids = list(range(1_000_000, 1_001_000))
    expired = {
        "type": "certificate.expired",
        "at": at,
        "actor": "system:expiry",
        "subject": [f"bundle:{i}" for i in ids] + [f"account:{10_000 + i}" for i in range(1000)],
        "data": {"on": "2027-01-01", "bundle_ids": ids},
    }
    return {
        "certificate.issued, 366 days hourly (8,784 periods)": len(canonical_bytes(issued)),
        "certificate.retired, 1,000 bundles split": len(canonical_bytes(retired)),
        "certificate.expired, 1,000 bundles in 1,000 accounts": len(canonical_bytes(expired)),
        "certificate.transferred (the benchmark's entry)": len(transfer_event(123_456)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="checkpoints to grow the log by")
    parser.add_argument("--batch", type=int, default=5000, help="entries per checkpoint")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, rounds=2, batch=600)

    recreate_database(ensure_database())
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from ledger.services import checkpoint_create, ledger_integrate
    from ledger.tiles import tiles_write
    from ledger.verify.tiles import check_tiles

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(",")[0]
    print(f"{version}, {os.cpu_count()} CPUs, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"load average {os.getloadavg()[0]:.2f}")

    scratch = Path(tempfile.mkdtemp(prefix="tiles-bench-"))
    live, cold = scratch / "live", scratch / "cold"
    integrate_s = tiles_s = 0.0
    size = 0
    try:
        print(f"\n-- {args.rounds} rounds of {args.batch:,} entries, a checkpoint each")
        for _ in range(args.rounds):
            queue(size, args.batch)
            started = time.perf_counter()
            while ledger_integrate(max_batch=5000):
                pass
            integrate_s += time.perf_counter() - started
            checkpoint, _ = checkpoint_create()
            size = checkpoint.size
            started = time.perf_counter()
            assert tiles_write(directory=live) == size
            tiles_s += time.perf_counter() - started
        print(f"  ledger_integrate alone: {size / integrate_s:,.0f} entries/s (baseline)")
        print(
            f"  tiles_write after each checkpoint: {size / tiles_s:,.0f} entries/s "
            f"= {tiles_s / integrate_s:.2f}x the integrator's time for the same entries"
        )

        started = time.perf_counter()
        assert tiles_write(directory=cold) == size
        fill_s = time.perf_counter() - started
        print(
            f"  first fill of an empty directory ({size:,} entries): {size / fill_s:,.0f} "
            f"entries/s = {fill_s / integrate_s:.2f}x the integrator's time"
        )

        files, on_disk, blocks = disk_usage(live)
        event_bytes = sum(len(transfer_event(i)) for i in range(size))
        print(f"\n-- disk, {size:,} entries of {event_bytes / size:.0f} bytes on average")
        print(
            f"  {files:,} files, {on_disk / size:.1f} bytes/entry "
            f"({on_disk / event_bytes:.2f}x the entries' own bytes; the leaf hash and the "
            f"2-byte length add {32 + 2} + the upper tiles), {blocks / size:.1f} bytes/entry "
            "in filesystem blocks"
        )

        get_root = live

        def get(path: str) -> bytes | None:
            target = get_root / path
            return target.read_bytes() if target.is_file() else None

        started = time.perf_counter()
        check_tiles(get, size, bytes(checkpoint.root))
        check_s = time.perf_counter() - started
        print(f"\n-- read back: check_tiles over the directory: {size / check_s:,.0f} entries/s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print("\n-- the largest events, canonical bytes (a tile's entry bundle holds 65,535)")
    for name, length in largest_events().items():
        verdict = "over: tile/entries-u32/" if length > 0xFFFF else "fits"
        print(f"  {name}: {length:,} bytes ({verdict})")


if __name__ == "__main__":
    main()
