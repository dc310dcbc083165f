"""The Merkle ledger on PostgreSQL: proofs at growing sizes, append cost, integrator, verify.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_ledger \
        [CELERY_BROKER_URL=redis://127.0.0.1:6379/9] \
        .venv/bin/python benchmarks/ledger_bench.py [--sizes 10000,100000,1000000,10000000]

Creates and migrates the database if needed, then grows the log to each size in turn by
bulk load (the integrator's own `build_batch` + COPY, 100,000 entries a transaction, no
queue) and measures, each against a raw baseline in this process:

- proofs: inclusion proof, consistency proof (to the current size) and root of a random
  older size through `ledger.selectors`, p50/p99, against a primary-key lookup of one
  entry's leaf hash through the same cursor;

and once, at the largest size:

- append: one transaction per event, `INSERT` into a scratch table with and without
  `ledger_append` (and its on-commit kick), p50/p99, the added cost, and committed
  appends/s from one client and from four processes;
- integrator: `ledger_integrate` over a queue of events, entries/s, against the COPY
  that queued the same events;
- integration delay (needs CELERY_BROKER_URL: starts a real `celery worker`): commit ->
  the event has a seq, p50/p99, sampled by a probe while two threads append flat out;
- verify: `ledger_verify` over the whole log, entries/s, against hashlib computing the
  same hashes over the same bytes (leaf hashes alone, and every hash the check makes);
- storage: pg_total_relation_size of each ledger table per entry.

The database keeps its entries between runs: a later run with larger sizes loads only
the difference (drop it to start over), and `--only append,integrator` re-measures some
sections. Each section prints the load average: on a shared machine, read it first.
"""

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from support import REPO, SMOKE_HELP, apply_smoke, ensure_database

LOAD_CHUNK = 100_000
SECTIONS = ("proofs", "append", "delay", "integrator", "verify", "storage")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def p50_p99(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def timed(call, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def synthetic_event(i: int) -> bytes:
    """A transfer-sized canonical event (about 300 bytes), keys in RFC 8785 order."""
    return (
        f'{{"actor":"user:{i % 997}","at":"2026-01-01T00:00:00.{i % 1_000_000:06d}Z",'
        f'"data":{{"bundle_id":{i},"from_account_id":{i % 1000},'
        f'"to_account_id":{(i + 1) % 1000},"unit_end":{i * 1000 + 1000},'
        f'"unit_start":{i * 1000},"volume_wh":1000}},'
        f'"subject":["bundle:{i}","account:{i % 1000}"],"type":"certificate.transferred"}}'
    ).encode()


def pending_rows(start: int, count: int, pending_id_base: int, at) -> list[tuple]:
    """Rows shaped like the integrator's queue: (id, kind, actor, subjects, event, created_at)."""
    return [
        (
            pending_id_base - i,
            "certificate.transferred",
            f"user:{i % 997}",
            [f"bundle:{i}", f"account:{i % 1000}"],
            synthetic_event(i),
            at,
        )
        for i in range(start, start + count)
    ]


def bulk_load(to_size: int) -> None:
    """Grow the log to `to_size` with the integrator's code, bypassing the queue."""
    from django.db import connection, transaction
    from django.utils import timezone

    from ledger import storage
    from ledger.merkle import EMPTY_ROOT
    from ledger.services import _resume_tree, build_batch, store_batch

    with connection.cursor() as cursor, transaction.atomic():
        size, root, chain = storage.tree_head_lock(cursor, empty_root=EMPTY_ROOT)
        tree = _resume_tree(size, root)
    if size >= to_size:
        print(f"  log already holds {size} entries")
        return
    started, first = time.perf_counter(), size
    while tree.size < to_size:
        count = min(LOAD_CHUNK, to_size - tree.size)
        now = timezone.now()
        # Bulk-loaded entries get negative "pending ids" so that real ones never collide.
        rows = pending_rows(tree.size, count, -1, now)
        with transaction.atomic(), connection.cursor() as cursor:
            entries, subjects, nodes, chain = build_batch(tree, chain, rows, now)
            store_batch(entries, subjects, nodes)
            cursor.execute(
                "UPDATE ledger_treehead SET size = %s, root = %s, chain = %s, updated_at = %s "
                "WHERE id = 1",
                [tree.size, tree.root(), chain, now],
            )
        done = tree.size - first
        rate = done / (time.perf_counter() - started)
        print(f"\r  loaded {tree.size:,} entries ({rate:,.0f}/s)", end="", flush=True)
    print()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE ledger_ledgerentry")
        cursor.execute("VACUUM ANALYZE ledger_treenode")
        cursor.execute("VACUUM ANALYZE ledger_entrysubject")


def bench_proofs(size: int, samples: int, rng: random.Random) -> None:
    from django.db import connection

    from ledger import selectors

    def baseline():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT leaf_hash FROM ledger_ledgerentry WHERE seq = %s", [rng.randrange(size)]
            )
            cursor.fetchone()

    runs = {
        "raw PK lookup (baseline)": baseline,
        "inclusion proof": lambda: selectors.ledger_inclusion_proof(
            seq=rng.randrange(size), size=size
        ),
        "consistency proof": lambda: selectors.ledger_consistency_proof(
            first=rng.randrange(1, size + 1), second=size
        ),
        "root of an older size": lambda: selectors.ledger_root(size=rng.randrange(1, size + 1)),
    }
    base = None
    for name, call in runs.items():
        timed(call, min(200, samples))  # warm up
        p50, p99 = p50_p99(timed(call, samples))
        base = base or p50
        print(f"  {name:26s} p50 {ms(p50)}  p99 {ms(p99)}  ({p50 / base:.1f}x baseline p50)")


def bench_append(
    transactions: int, processes: int = 4, seconds: float = 5.0, worker_pid: int | None = None
) -> None:
    from django.db import connection, transaction

    from ledger.services import ledger_append

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_domain "
            "(id bigserial PRIMARY KEY, n integer NOT NULL, at timestamptz NOT NULL)"
        )

    def domain_write(n: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_domain (n, at) VALUES (%s, now())", [n])

    def without(n: int) -> None:
        with transaction.atomic():
            domain_write(n)

    def with_append(n: int) -> None:
        with transaction.atomic():
            domain_write(n)
            ledger_append(
                kind="bench.happened",
                actor="system:bench",
                subject=[("bundle", n), ("account", n % 1000)],
                data={"n": n, "volume_wh": 1000},
            )

    plain, ledgered = [], []
    for n in range(transactions):  # interleaved, so that drift hits both alike
        for call, out in ((without, plain), (with_append, ledgered)):
            started = time.perf_counter()
            call(n)
            out.append(time.perf_counter() - started)
    (a50, a99), (b50, b99) = p50_p99(plain), p50_p99(ledgered)
    print(f"  transaction without ledger_append  p50 {ms(a50)}  p99 {ms(a99)}  (baseline)")
    print(f"  transaction with ledger_append     p50 {ms(b50)}  p99 {ms(b99)}")
    added = statistics.mean(ledgered) - statistics.mean(plain)
    print(f"  added per event: p50 {ms(b50 - a50)}, mean {ms(added)}; ratio {b50 / a50:.2f}x")
    print(f"  one client, one event per transaction: {1 / statistics.mean(ledgered):,.0f}/s")

    # Several processes, as several web workers would be (threads would share one GIL).
    rates = {}
    rates[False] = _append_processes(processes, seconds, ledgered=False)
    wait_for_empty_queue()
    size, cpu = _head_size(), _cpu_seconds(worker_pid)
    rates[True] = _append_processes(processes, seconds, ledgered=True)
    print(
        f"  {processes} processes, one transaction each time: {rates[False]:,.0f}/s without "
        f"ledger_append (baseline), {rates[True]:,.0f}/s with it "
        f"({rates[True] / rates[False]:.2f}x)"
    )
    wait_for_empty_queue()
    with connection.cursor() as cursor:
        # One batch, one integrated_at.
        cursor.execute(
            "SELECT count(*), count(DISTINCT integrated_at) FROM ledger_ledgerentry "
            "WHERE seq >= %s",
            [size],
        )
        entries, batches = cursor.fetchone()
    line = (
        f"  integrator meanwhile: {batches:,} batches, {entries / max(batches, 1):.1f} events each"
    )
    if worker_pid:
        spent = _cpu_seconds(worker_pid) - cpu
        line += f"; worker process CPU {spent:.2f} s = {spent / entries * 1e6:.0f} us per event"
    print(line)


def _head_size() -> int:
    from ledger.models import TreeHead

    return TreeHead.objects.values_list("size", flat=True).first() or 0


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc), 0 without one."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _append_processes(processes: int, seconds: float, *, ledgered: bool) -> float:
    from registry.celery import app

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 5  # after every process has imported Django
    queue = app.conf.task_default_queue
    pool = [
        context.Process(
            target=_append_process, args=(i, start_at, seconds, results, queue, ledgered)
        )
        for i in range(processes)
    ]
    for process in pool:
        process.start()
    committed = sum(results.get() for _ in pool)
    for process in pool:
        process.join()
    return committed / seconds


def _append_process(
    index: int, start_at: float, seconds: float, results, queue: str, ledgered: bool
) -> None:
    """One client process: one transaction (with or without an event) after another."""
    import django

    django.setup()
    from django.db import connection, transaction

    from ledger.services import ledger_append
    from registry.celery import app

    app.conf.task_default_queue = queue
    n = 10_000_000 * (index + 1)
    done = 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_domain (n, at) VALUES (%s, now())", [n + done])
            if ledgered:
                ledger_append(
                    kind="bench.happened",
                    actor="system:bench",
                    subject=[("bundle", n + done), ("account", done % 1000)],
                    data={"n": n + done, "volume_wh": 1000},
                )
        done += 1
    results.put(done)


def wait_for_empty_queue(timeout: float = 600) -> None:
    from ledger.models import PendingEvent
    from ledger.services import ledger_integrate

    deadline = time.monotonic() + timeout
    while PendingEvent.objects.exists():
        if time.monotonic() > deadline:
            while ledger_integrate():
                pass
        time.sleep(0.1)


def bench_integrator(events: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from ledger import storage
    from ledger.services import ledger_integrate

    now = timezone.now()
    rows = [
        (kind, f'["{keys[0]}", "{keys[1]}"]', actor, event, created)
        for _id, kind, actor, keys, event, created in pending_rows(0, events, 0, now)
    ]
    started = time.perf_counter()
    with transaction.atomic():
        storage.bulk_insert(
            "ledger_pendingevent", ("kind", "subjects", "actor", "event", "created_at"), rows
        )
    queued = time.perf_counter() - started
    started = time.perf_counter()
    total = 0
    while done := ledger_integrate(max_batch=5000):
        total += done
    elapsed = time.perf_counter() - started
    print(f"  raw COPY of the same events into the queue: {events / queued:,.0f}/s (baseline)")
    print(
        f"  ledger_integrate, batches of 5000: {total:,} entries in {elapsed:.2f} s = "
        f"{total / elapsed:,.0f} entries/s ({elapsed / queued:.1f}x the COPY)"
    )


class Worker:
    """A real `celery worker` on a private queue, as the test fixture starts one."""

    def __enter__(self):
        from django.db import connection

        from registry.celery import app

        db = connection.settings_dict
        url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        self.queue = f"bench-{os.getpid()}"
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        self.proc = subprocess.Popen(
            [
                celery,
                "-A",
                "registry",
                "worker",
                "--pool=solo",
                "-Q",
                self.queue,
                "--loglevel=WARNING",
            ],
            cwd=REPO,
            env=os.environ | {"DATABASE_URL": url},
            start_new_session=True,
        )
        app.conf.task_default_queue = self.queue
        deadline = time.monotonic() + 60
        while not any(app.control.ping(timeout=1) or []):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit("the celery worker did not start")
        return self

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def bench_delay(seconds: float, load_threads: int = 2) -> None:
    from django.db import connection, transaction

    from ledger.services import ledger_append

    stop = threading.Event()
    loads = [0] * load_threads
    delays: list[float] = []

    def append(n: int):
        with transaction.atomic():
            return ledger_append(
                kind="bench.happened", actor="system:bench", subject=("bundle", n), data={"n": n}
            )

    def load(index: int) -> None:
        n = 20_000_000 * (index + 1)
        try:
            while not stop.is_set():
                append(n)
                n += 1
                loads[index] += 1
        finally:
            connection.close()

    def probe() -> None:
        n = 90_000_000
        try:
            with connection.cursor() as cursor:
                while not stop.is_set():
                    pending = append(n)
                    committed = time.perf_counter()
                    while True:
                        cursor.execute(
                            "SELECT 1 FROM ledger_ledgerentry WHERE pending_id = %s", [pending.pk]
                        )
                        if cursor.fetchone():
                            break
                        time.sleep(0.0005)
                    delays.append(time.perf_counter() - committed)
                    n += 1
                    time.sleep(0.01)
        finally:
            connection.close()

    threads = [threading.Thread(target=load, args=(i,)) for i in range(load_threads)]
    threads.append(threading.Thread(target=probe))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    p50, p99 = p50_p99(delays)
    print(
        f"  commit -> has a seq: p50 {ms(p50)}  p99 {ms(p99)}  ({len(delays)} probes, while "
        f"{load_threads} threads committed {sum(loads) / seconds:,.0f} appends/s)"
    )


def bench_verify(hash_sample: int) -> None:
    import hashlib

    from ledger.integrity import ledger_verify
    from ledger.models import LedgerEntry

    report = ledger_verify()
    rate = report.entries / report.seconds
    print(
        f"  ledger_verify: {report.entries:,} entries, {report.nodes:,} nodes, "
        f"{report.checkpoints} checkpoints in {report.seconds:.1f} s = {rate:,.0f} entries/s"
    )
    events = [
        bytes(e)
        for e in LedgerEntry.objects.order_by("seq").values_list("event", flat=True)[:hash_sample]
    ]
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for event in events:
        sha256(b"\x00" + event).digest()
    leaves_only = len(events) / (time.perf_counter() - started)
    # The same hash calls over the same bytes as the check: leaf, chain, and one interior
    # node per trailing 1 bit of the leaf index, without the tree bookkeeping.
    started = time.perf_counter()
    chain = bytes(32)
    for i, event in enumerate(events):
        leaf = sha256(b"\x00" + event).digest()
        chain = sha256(chain + leaf).digest()
        node = leaf
        for _ in range((~i & (i + 1)).bit_length() - 1):
            node = sha256(b"\x01" + chain + node).digest()
    every_hash = len(events) / (time.perf_counter() - started)
    print(
        f"  hashlib alone over the same bytes (first {len(events):,} events): leaf hashes "
        f"{leaves_only:,.0f}/s; leaf + chain + node hashes {every_hash:,.0f}/s. "
        f"verify_ledger runs at {rate / leaves_only:.2f}x and {rate / every_hash:.2f}x of those"
    )


def bench_storage() -> None:
    from django.db import connection

    from ledger.selectors import ledger_tree_size

    size = ledger_tree_size()
    total = 0
    with connection.cursor() as cursor:
        for table in (
            "ledger_ledgerentry",
            "ledger_treenode",
            "ledger_entrysubject",
            "ledger_checkpoint",
        ):
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            nbytes = cursor.fetchone()[0]
            total += nbytes
            print(f"  {table:22s} {nbytes / 2**20:10,.1f} MiB  {nbytes / size:7.1f} bytes/entry")
    print(f"  {'all':22s} {total / 2**20:10,.1f} MiB  {total / size:7.1f} bytes/entry ({size:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--proof-samples", type=int, default=2000)
    parser.add_argument("--append-transactions", type=int, default=2000)
    parser.add_argument("--integrate-events", type=int, default=100_000)
    parser.add_argument("--delay-seconds", type=float, default=10.0)
    parser.add_argument("--verify-hash-sample", type=int, default=200_000)
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, among {', '.join(SECTIONS)}",
    )
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(
        args,
        sizes="1000",
        proof_samples=50,
        append_transactions=50,
        integrate_events=1000,
        delay_seconds=1.0,
        verify_hash_sample=1000,
    )
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    only = set(args.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"unknown sections {sorted(only - set(SECTIONS))}")

    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from ledger.services import checkpoint_create

    call_command("migrate", verbosity=0)
    rng = random.Random(9162)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(
            f"{cursor.fetchone()[0].split(',')[0]}, {os.cpu_count()} CPUs, "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
        )

    def section(title: str) -> None:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n== {title}  [load average {load}]")

    for size in sizes:
        section(f"size {size:,}")
        bulk_load(size)
        checkpoint_create()
        if "proofs" in only:
            bench_proofs(size, args.proof_samples, rng)

    broker = bool(settings.CELERY_BROKER_URL)
    if {"append", "delay"} & only:
        with Worker() if broker else contextlib.nullcontext() as worker:
            if "append" in only:
                mode = "kick to a real worker" if broker else "no broker: integrated on commit"
                section(f"ledger_append, one event per transaction ({mode})")
                bench_append(args.append_transactions, worker_pid=worker and worker.proc.pid)
                wait_for_empty_queue()
            if broker and "delay" in only:
                section("integration delay (kick on commit -> worker)")
                bench_delay(args.delay_seconds)
                wait_for_empty_queue()
    if "integrator" in only:
        section("integrator throughput")
        bench_integrator(args.integrate_events)
        checkpoint_create()
    if "verify" in only:
        section("verify_ledger")
        bench_verify(args.verify_hash_sample)
    if "storage" in only:
        section("storage")
        bench_storage()


if __name__ == "__main__":
    main()
