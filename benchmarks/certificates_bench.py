"""Certificates on PostgreSQL: transfers (service layer and HTTP) and batch hourly issuance.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_certificates \
        .venv/bin/python benchmarks/certificates_bench.py \
        [--transfers 2000] [--rounds 3] [--http-seconds 10] [--http-rounds 3] [--devices 100] \
        [--skip-transfers] [--skip-http] [--skip-issuance]

Creates and migrates the database if needed and adds a fresh world each run (the
bundles to move are bulk-loaded: setup, not measured). Then, each against a raw baseline
measured in the same run:

- transfers through `certificate_transfer` (a split: 1 Wh of a bundle moves to another
  organisation's account; lock, checks, parent UPDATE, two children, the transfer row and
  the queued ledger event, one transaction each), from one and from two processes on
  disjoint bundles; the baseline does the same row locks, UPDATE and INSERTs with plain
  psycopg2, one transaction each. Whole-bundle transfers likewise. With CELERY_BROKER_URL
  each commit pays the ledger's on-commit kick (a Redis round trip) as in production;
  without it the kick is switched off (it would integrate inline). The integrator itself
  runs in a worker in production (see benchmarks/ledger_bench.py for its rate). Also
  printed: the CPU µs a transfer of the processes' Python and, with PostgreSQL on this
  machine, of their database backends (/proc/<pid>/schedstat; the raw baseline's from its
  connection): steadier than rates on a shared machine.
- the same split transfer through HTTP: Granian on loopback (2 workers x 4
  threads), `wrk` POSTing `/api/v1/bundles/{id}/transfers/` with a Bearer token, each
  request a different bundle; the baseline is a bare DRF endpoint (same authentication,
  one primary-key read) served by the same server in the same run. Needs `wrk` and
  CELERY_BROKER_URL (its own Redis db): commits then only kick the integrator, as in
  production, instead of integrating inside the request; the queued tasks are purged.
- hourly issuance in batch: DEVICES devices x one year of hourly readings (8,760 each,
  bulk-loaded), one `certificate_issue` call per device (8,760 bundles, one event), in a
  child process: bundles/s and the child's peak RSS; the baseline COPYs the same bundle
  and period rows and marks the readings issued with plain psycopg2.
"""

import argparse
import datetime as dt
import io
import json
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import http_support
import support
from support import SMOKE_HELP, apply_smoke, dsn, ensure_database, setup_django

HOUR = dt.timedelta(hours=1)
BUNDLE_WH = 1_000


# ---------------------------------------------------------------- world


def make_world(n_bundles: int, tag: str):
    """Two approved organisations, an issued device and n_bundles active 1 kWh bundles."""
    from django.db import transaction

    from accounts.models import Account, Membership, User
    from assets.models import DeviceOwner

    with transaction.atomic():
        orgs = support.bench_organisations(tag, ("producer", "buyer"), "B")
        accounts = [
            Account.objects.create(organisation=org, number=f"BENCH-{tag}-{i}", name="Trading")
            for i, org in enumerate(orgs)
        ]
        user = User.objects.create(username=f"bench-{tag}")
        Membership.objects.create(user=user, organisation=orgs[0], role=Membership.Role.OPERATOR)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        device, bundles = support.bench_issued_bundles(orgs[0], accounts[0], tag, n_bundles, start)
        DeviceOwner.objects.create(
            device=device,
            organisation=orgs[0],
            account=accounts[0],
            share_numerator=1,
            share_denominator=1,
        )
    return user, accounts, [b.pk for b in bundles]


# ---------------------------------------------------------------- transfers


def service_transfers(user_id: int, to_account_id: int, ids: list[int], volume) -> None:
    from accounts.models import User
    from certificates.services import certificate_transfer

    actor = User.objects.get(pk=user_id)
    for bundle_id in ids:
        certificate_transfer(
            actor=actor, bundle_id=bundle_id, to_account_id=to_account_id, volume_wh=volume
        )


RAW_BUNDLE_COLUMNS = (
    "id, device_id, issuance_id, account_id, parent_id, unit_start, unit_end, "
    "period_start, period_end, expires_on, status"
)


def raw_transfers(dsn_: str, user_id: int, to_account_id: int, ids: list[int], volume) -> None:
    """The same locks, updates and inserts as the service, with psycopg2 and no checks."""
    import psycopg2

    conn = psycopg2.connect(dsn_)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    _backend_pid[0] = cur.fetchone()[0]
    conn.commit()
    for bundle_id in ids:
        cur.execute(
            f"SELECT {RAW_BUNDLE_COLUMNS} FROM certificates_bundle WHERE id = %s FOR UPDATE",
            [bundle_id],
        )
        (_id, device, issuance, account, _parent, start, end, p_start, p_end, expires, _st) = (
            cur.fetchone()
        )
        cur.execute(
            "SELECT id, status, organisation_id FROM accounts_account WHERE id = %s FOR KEY SHARE",
            [to_account_id],
        )
        cur.fetchone()
        now = dt.datetime.now(dt.UTC)
        if volume is None:
            cur.execute(
                "UPDATE certificates_bundle SET account_id = %s, status = 1 WHERE id = %s",
                [to_account_id, bundle_id],
            )
            moved, rest = bundle_id, None
        else:
            cut = start + volume
            cur.execute("UPDATE certificates_bundle SET status = 3 WHERE id = %s", [bundle_id])
            cur.execute(
                "INSERT INTO certificates_bundle (device_id, issuance_id, account_id, parent_id, "
                "unit_start, unit_end, period_start, period_end, expires_on, status) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 1), (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1) "
                "RETURNING id",
                [
                    *(device, issuance, to_account_id, bundle_id, start, cut, p_start, p_end),
                    *(expires, device, issuance, account, bundle_id, cut, end, p_start, p_end),
                    expires,
                ],
            )
            moved, rest = (row[0] for row in cur.fetchall())
        cur.execute(
            "INSERT INTO certificates_transfer (bundle_id, source_id, from_account_id, "
            "to_account_id, volume_wh, status, created_by_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [
                moved,
                bundle_id,
                account,
                to_account_id,
                volume or end - start,
                "completed",
                user_id,
                now,
            ],
        )
        transfer_id = cur.fetchone()[0]
        subjects = [
            f"bundle:{bundle_id}",
            f"bundle:{moved}",
            f"bundle:{rest}",
            f"transfer:{transfer_id}",
        ]
        event = json.dumps(
            {
                "type": "certificate.transferred",
                "at": now.isoformat(),
                "actor": f"user:{user_id}",
                "subject": subjects,
                "data": {"transfer_id": transfer_id, "bundle_id": bundle_id, "moved": moved},
            },
            sort_keys=True,
        ).encode()
        cur.execute(
            "INSERT INTO ledger_pendingevent (kind, subjects, actor, event, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            ["certificate.transferred", json.dumps(subjects), f"user:{user_id}", event, now],
        )
        conn.commit()
    conn.close()


_backend_pid = [0]
"""The PostgreSQL backend a child process's transfers ran on (set by the child)."""


def _child(kind: str, args: tuple, ready, go, spent) -> None:
    if kind.startswith("service"):
        from django.db import connection, connections

        connections.close_all()  # a fresh connection per process
        if kind == "service without kick":
            import ledger.services

            ledger.services.kick = lambda: None
        elif os.environ.get("CELERY_BROKER_URL"):
            from ledger.kick import kick

            kick()  # load the broker client before the clock starts, as a web worker has
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            _backend_pid[0] = cursor.fetchone()[0]
        backend = support.schedstat_ns(_backend_pid[0])
        ready.set()
        go.wait()
        own = time.process_time()
        service_transfers(*args)
    else:
        ready.set()
        go.wait()
        own, backend = time.process_time(), 0
        raw_transfers(*args)  # connects, then records its backend
    spent.put((time.process_time() - own, support.schedstat_ns(_backend_pid[0]) - backend))


def timed_parallel(kind: str, chunks: list[tuple]) -> tuple[float, float, float]:
    """len(chunks) processes, released together, each doing one chunk: the wall time, and
    the CPU seconds their Python and their PostgreSQL backends spent, summed."""
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    go, spent = ctx.Event(), ctx.Queue()
    readies, procs = [], []
    for args in chunks:
        ready = ctx.Event()
        proc = ctx.Process(target=_child, args=(kind, args, ready, go, spent))
        proc.start()
        readies.append(ready)
        procs.append(proc)
    for ready in readies:
        ready.wait()
    started = time.perf_counter()
    go.set()
    cpu = [spent.get() for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            sys.exit(f"a {kind} worker failed (exit {proc.exitcode})")
    wall = time.perf_counter() - started
    return wall, sum(c[0] for c in cpu), sum(c[1] for c in cpu) / 1e9


def bench_transfers(cfg: dict, n: int, rounds: int) -> dict:
    kinds = ["raw", "service"]
    if os.environ.get("CELERY_BROKER_URL"):
        kinds.append("service without kick")  # the same, minus the ledger's Redis round trip
    print(f"\n== Transfers through the service layer ({n} per process, median of {rounds}) ==")
    need = n * 3 * len(kinds) * 2 * rounds  # (1 + 2 processes) x kinds x (split, whole)
    user, accounts, ids = make_world(need, f"t{int(time.time())}")
    dsn_ = dsn(cfg)
    results = {}
    for label, volume in (("split 1 Wh", 1), ("whole bundle", None)):
        for procs in (1, 2):
            rates: dict[str, list[float]] = {kind: [] for kind in kinds}
            cpu: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
            for _round in range(rounds):  # interleaved, so all kinds see the same machine
                for kind in kinds:
                    chunks = []
                    for _ in range(procs):
                        chunk, ids = ids[:n], ids[n:]
                        base = (user.pk, accounts[1].pk, chunk, volume)
                        chunks.append((dsn_, *base) if kind == "raw" else base)
                    wall, python, backend = timed_parallel(kind, chunks)
                    rates[kind].append(procs * n / wall)
                    cpu[kind].append((python * 1e6 / (procs * n), backend * 1e6 / (procs * n)))
            median = {kind: statistics.median(values) for kind, values in rates.items()}
            results[(label, procs)] = median
            line = f"{label:>13}, {procs} process{'es' if procs > 1 else '  '}: "
            line += f"raw psycopg2 {median['raw']:6.0f}/s"
            for kind in kinds[1:]:
                line += f"   {kind} {median[kind]:6.0f}/s ({median[kind] / median['raw']:.0%})"
            print(line)
            line = " " * 26 + "CPU µs a transfer, client + PostgreSQL:"
            for kind in kinds:
                client = statistics.median(c[0] for c in cpu[kind])
                server = statistics.median(c[1] for c in cpu[kind])
                line += f"  {kind} {client:.0f}" + (f" + {server:.0f}" if server else "")
            print(line)
    return results


# ---------------------------------------------------------------- HTTP


WRK_TRANSFER = """
local ids = {%(ids)s}
local nthreads = %(threads)d
local tcount = 0
function setup(thread)
  thread:set("tid", tcount)
  tcount = tcount + 1
end
function init(args)
  k = 0
end
request = function()
  local i = 1 + tid + k * nthreads
  k = k + 1
  if i > #ids then
    return wrk.format("GET", "/api/v1/bundles/0/")
  end
  return wrk.format("POST", "/api/v1/bundles/" .. ids[i] .. "/transfers/",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"},
    '{"to_account": "%(account)s", "volume_wh": 1}')
end
"""


def _wrk(args: list[str]) -> tuple[float, int, int, str]:
    out = subprocess.run(["wrk", *args], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, total, int(bad.group(1)) if bad else 0, out


def bench_http(cfg: dict, seconds: int, rounds: int) -> dict | None:
    print(f"\n== Transfers through HTTP (Granian + wrk, {rounds} x {seconds} s, interleaved) ==")
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk): skipped.")
        return None
    if not os.environ.get("CELERY_BROKER_URL"):
        # Without a broker every commit would integrate the ledger inside the request.
        print("needs CELERY_BROKER_URL (a Redis db of its own), as in production: skipped.")
        return None
    from django.db.models import Max

    from accounts.services import api_token_create
    from certificates.models import Transfer

    user, accounts, ids = make_world(1500 * seconds * rounds, f"h{int(time.time())}")
    _token, plaintext = api_token_create(user=user, name="bench")
    bare_rates, rates, failed, sent = [], [], 0, 0
    before = Transfer.objects.count()
    with http_support.serve() as port:
        base = f"http://127.0.0.1:{port}"
        auth = ["-H", f"Authorization: Bearer {plaintext}"]
        common = ["-t2", "-c8", f"-d{seconds}s", "--latency"]
        _wrk(["-t1", "-c2", "-d2s", *auth, f"{base}/bench/read/"])  # warm up both workers
        for _round in range(rounds):  # interleaved, so both see the same machine
            bare, _total, bare_bad, _ = _wrk([*common, *auth, f"{base}/bench/read/"])
            bare_rates.append(bare)
            failed += bare_bad
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                script.write(
                    WRK_TRANSFER
                    % {
                        "ids": ",".join(map(str, ids)),
                        "threads": 2,
                        "token": plaintext,
                        "account": accounts[1].number,
                    }
                )
            rate, _total, bad, out = _wrk([*common, "-s", script.name, base])
            os.unlink(script.name)
            time.sleep(1)  # let requests still in flight finish
            sent = Transfer.objects.count() - before
            used = Transfer.objects.aggregate(Max("source_id"))["source_id__max"]
            ids = [pk for pk in ids if pk > used]  # wrk threads interleave: skip past the last
            rates.append(rate)
            failed += bad
            latency = re.search(r"^\s+50%\s+(\S+).*?^\s+99%\s+(\S+)", out, re.S | re.M)
            print(
                f"  round {_round + 1}: bare {bare:6.0f} req/s, transfer {rate:6.0f} req/s "
                f"(p50 {latency.group(1)}, p99 {latency.group(2)}; {bad} non-2xx)"
            )
    bare, rate = statistics.median(bare_rates), statistics.median(rates)
    print(f"bare DRF endpoint (one read):  {bare:7.0f} req/s (median)")
    print(f"POST transfer (split 1 Wh):    {rate:7.0f} req/s (median; {sent} transfers stored)")
    print(f"ratio {rate / bare:.0%}" + (f"; WARNING: {failed} failed requests" if failed else ""))
    return {"bare": bare, "transfer": rate, "ratio": rate / bare}


# ---------------------------------------------------------------- issuance


def load_readings(
    cfg: dict, devices: int, tag: str, hours: int = 8760
) -> tuple[list[int], int, dt.datetime]:
    """`devices` approved single-owner devices with `hours` hourly readings (COPY)."""
    import psycopg2
    from django.db import transaction

    from accounts.models import Account, Organisation
    from assets.models import Device, DeviceOwner, GridArea, Meter, ReadingBatch

    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with transaction.atomic():
        area = GridArea.objects.get(code="10YBENCH-------1")
        org = Organisation.objects.create(
            legal_name=f"Bench fleet {tag}",
            country="DE",
            registration_id=f"F-{tag}",
            is_producer=True,
            status=Organisation.Status.APPROVED,
        )
        account = Account.objects.create(organisation=org, number=f"FLEET-{tag}", name="Fleet")
        device_ids, meters, batches = [], [], []
        for d in range(devices):
            device = Device.objects.create(
                name=f"Fleet {tag} #{d}",
                organisation=org,
                grid_area=area,
                technology_code="T020001",
                energy_source_code="F01050100",
                capacity_w=5_000_000,
                commissioning_date=dt.date(2020, 1, 1),
                latitude=0,
                longitude=0,
                status=Device.Status.APPROVED,
            )
            DeviceOwner.objects.create(
                device=device,
                organisation=org,
                account=account,
                share_numerator=1,
                share_denominator=1,
            )
            meter = Meter.objects.create(serial=f"FL-{tag}-{d}", device=device)
            batch = ReadingBatch.objects.create(
                organisation=org,
                device=device,
                meter=meter,
                status=ReadingBatch.Status.ACCEPTED,
                size=hours,
                merkle_root="0" * 64,
            )
            device_ids.append(device.pk)
            meters.append(meter.pk)
            batches.append(batch.pk)
    conn = psycopg2.connect(dsn(cfg))
    with conn, conn.cursor() as cur:
        for device_id, meter_id, batch_id in zip(device_ids, meters, batches, strict=True):
            buf = io.StringIO()
            for h in range(hours):
                s = start + h * HOUR
                buf.write(
                    f"{device_id}\t{meter_id}\t{batch_id}\t{s.isoformat()}\t"
                    f"{(s + HOUR).isoformat()}\t{1000 + (h * 7919) % 4000}\tf\t{h}\n"
                )
            buf.seek(0)
            cur.copy_expert(
                'COPY assets_reading (device_id, meter_id, batch_id, start, "end", wh, '
                "is_signed, index_in_batch) FROM STDIN",
                buf,
            )
    conn.close()
    return device_ids, account.pk, start


def _issue_child(device_ids: list[int], start_iso: str, actor_id: int, pipe) -> None:
    from django.db import connections

    from accounts.models import User
    from certificates.services import certificate_issue

    connections.close_all()
    actor = User.objects.get(pk=actor_id)
    start = dt.datetime.fromisoformat(start_iso)
    t0 = time.perf_counter()
    bundles = 0
    for device_id in device_ids:
        issuance = certificate_issue(
            actor=actor,
            device_id=device_id,
            period_start=start,
            period_end=start + dt.timedelta(days=365),
        )
        bundles += issuance.bundles.count()
    seconds = time.perf_counter() - t0
    pipe.send((bundles, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _raw_issue(cfg: dict, device_ids: list[int], account_id: int, start: dt.datetime) -> float:
    """COPY the same bundle and period rows and mark the readings, one transaction a device."""
    import psycopg2

    conn = psycopg2.connect(dsn(cfg))
    cur = conn.cursor()
    t0 = time.perf_counter()
    for device_id in device_ids:
        cur.execute(
            'SELECT id, start, "end", wh FROM raw_reading WHERE device_id = %s '
            "AND issued_at IS NULL ORDER BY start",
            [device_id],
        )
        rows = cur.fetchall()
        cur.execute(
            "INSERT INTO certificates_issuance (device_id, issued_at, granularity, period_start, "
            "period_end, unit_start, unit_end, volume_wh, device_name, technology_code, "
            "energy_source_code, grid_area_id, grid_area_code, country, support, is_storage, "
            "imported_from) "
            "SELECT %s, now(), 'hour', %s, %s, 0, 0, 0, 'raw', 'T', 'F', id, code, country, '', "
            "false, '' FROM assets_gridarea LIMIT 1 RETURNING id",
            [device_id, rows[0][1], rows[-1][2]],
        )
        issuance_id = cur.fetchone()[0]
        periods, bundles = io.StringIO(), io.StringIO()
        unit = 10**12
        for _pk, s, e, wh in rows:
            times = f"{s.isoformat()}\t{e.isoformat()}"
            periods.write(f"{device_id}\t{issuance_id}\t{times}\t{unit}\t{unit + wh}\t\\N\n")
            bundles.write(
                f"{device_id}\t{issuance_id}\t{account_id}\t\\N\t{unit}\t{unit + wh}\t"
                f"{s.isoformat()}\t{e.isoformat()}\t\\N\t1\n"
            )
            unit += wh
        periods.seek(0)
        bundles.seek(0)
        # The raw rows go to scratch copies of the tables (same columns and indexes).
        cur.copy_expert(
            "COPY raw_issuedperiod (device_id, issuance_id, period_start, period_end, "
            "unit_start, unit_end, withdrawn_at) FROM STDIN",
            periods,
        )
        cur.copy_expert(
            "COPY raw_bundle (device_id, issuance_id, account_id, parent_id, unit_start, "
            "unit_end, period_start, period_end, expires_on, status) FROM STDIN",
            bundles,
        )
        cur.execute("UPDATE raw_reading SET issued_at = now() WHERE device_id = %s", [device_id])
        conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds


def bench_issuance(cfg: dict, devices: int, hours: int = 8760) -> dict:
    import psycopg2

    from accounts.models import Membership, Organisation, User

    print(f"\n== Hourly issuance in batch: {devices} devices x {hours} hours ==")
    tag = f"i{int(time.time())}"
    device_ids, account_id, start = load_readings(cfg, devices, tag, hours)
    ib_org = Organisation.objects.create(
        legal_name=f"Bench IB {tag}",
        country="DE",
        registration_id=f"IB-{tag}",
        is_issuing_body=True,
        status=Organisation.Status.APPROVED,
    )
    actor = User.objects.create(username=f"ib-{tag}")
    Membership.objects.create(user=actor, organisation=ib_org, role=Membership.Role.ADMIN)
    # Scratch tables for the baseline, cloned with their indexes (no constraints/FKs).
    conn = psycopg2.connect(dsn(cfg))
    with conn, conn.cursor() as cur:
        for table, source in (
            ("raw_bundle", "certificates_bundle"),
            ("raw_issuedperiod", "certificates_issuedperiod"),
        ):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} (LIKE {source} INCLUDING ALL)")
        cur.execute("DROP TABLE IF EXISTS raw_reading")
        cur.execute(
            "CREATE TABLE raw_reading AS SELECT * FROM assets_reading WHERE device_id = ANY(%s)",
            [device_ids],
        )
        cur.execute("CREATE INDEX ON raw_reading (device_id, start)")
    conn.close()

    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_issue_child, args=(device_ids, start.isoformat(), actor.pk, child))
    proc.start()
    bundles, seconds, peak_kib = parent.recv()
    proc.join()
    raw_seconds = _raw_issue(cfg, device_ids, account_id, start)
    rate, raw_rate = bundles / seconds, bundles / raw_seconds
    print(
        f"service: {bundles} bundles in {seconds:.1f} s = {rate:,.0f} bundles/s, "
        f"peak RSS of the issuing process {peak_kib / 1024:.0f} MiB"
    )
    print(f"raw COPY baseline: {raw_rate:,.0f} bundles/s   ratio {rate / raw_rate:.0%}")
    conn = psycopg2.connect(dsn(cfg))
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pg_total_relation_size('certificates_bundle'), count(*) "
            "FROM certificates_bundle"
        )
        size, count = cur.fetchone()
        cur.execute("DROP TABLE raw_bundle, raw_issuedperiod, raw_reading")
    conn.close()
    print(f"certificates_bundle: {size / count:.0f} bytes per row with indexes ({count} rows)")
    return {"bundles": bundles, "rate": rate, "raw": raw_rate, "peak_mib": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transfers", type=int, default=2000, help="per process and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--http-seconds", type=int, default=10)
    parser.add_argument("--http-rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--hours", type=int, default=8760, help="hourly readings per device")
    parser.add_argument("--skip-transfers", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-issuance", action="store_true")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, transfers=20, rounds=1, http_seconds=1, http_rounds=1, devices=2, hours=48)

    cfg = ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"PostgreSQL {cfg['NAME']} at {cfg['HOST'] or 'localhost'}; {os.cpu_count()} CPUs")
    if not args.skip_transfers:
        bench_transfers(cfg, args.transfers, args.rounds)
    if not args.skip_http:
        bench_http(cfg, args.http_seconds, args.http_rounds)
    if not args.skip_issuance:
        bench_issuance(cfg, args.devices, args.hours)


if __name__ == "__main__":
    main()
