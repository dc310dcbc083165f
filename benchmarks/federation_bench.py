"""Federation benchmark: replication catch-up and anchoring delay, on loopback.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench \\
        .venv/bin/python benchmarks/federation_bench.py [--entries 1000000] [--rounds 300]

DATABASE_URL names the PostgreSQL server (its database is not touched): the benchmark
creates its own databases <name>_src, <name>_dst and <name>_wit from one migrated
template and drops them at the end (--keep keeps them).

1. The source registry (Granian, 2 workers of 4 threads) is bulk-loaded with --entries ledger
   entries by COPY and signs a checkpoint; the destination (this process) replicates it
   through the public ledger API, recomputing and checking the tree. Printed against
   baselines measured in the same run: recomputing the same tree alone (leaf hashes and
   CompactRange over the same event bytes, in memory; the fastest of three), and
   fetching the same entries without checking or storing them (as entry bundles, which
   replication uses, and as the ledger API's JSON pages).
2. Anchoring: the destination appends an event, signs a checkpoint and asks two witness
   registries (the source, and a third registry) for cosignatures, --rounds times; the
   delay from signing to the 2-of-2 quorum, median and p99, against a bare HTTP round
   trip to a witness. Run with no polling interval (as if anchoring started on
   commit): the Celery beat interval FEDERATION_ANCHOR_INTERVAL_SECONDS adds up to one
   interval (half on average) in production.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_support import free_port  # noqa: E402
from support import SMOKE_HELP, apply_smoke  # noqa: E402

LOAD_CHUNK = 100_000


def event_bytes(i: int) -> bytes:
    """A realistic ~230-byte canonical event, deterministic in i."""
    doc = {
        "actor": f"user:{i % 977}",
        "at": f"2025-01-{1 + i % 28:02d}T{i % 24:02d}:00:00.000000Z",
        "data": {
            "bundle_id": i,
            "from_account": f"GP-{i % 5000:05d}-T001",
            "to_account": f"GP-{(i * 7) % 5000:05d}-T001",
            "volume_wh": 1000 + i % 100000,
        },
        "subject": [f"bundle:{i}"],
        "type": "certificate.transferred",
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------- source loading (subprocess)


def load_source(count: int) -> None:
    """Run inside the source's environment: COPY `count` entries, then sign a checkpoint."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from ledger.merkle import CompactRange
    from ledger.services import build_batch, checkpoint_create, store_batch
    from ledger.storage import ZERO_CHAIN

    tree, chain = CompactRange(), ZERO_CHAIN
    now = timezone.now()
    started = time.perf_counter()
    for start in range(0, count, LOAD_CHUNK):
        pending = [
            # negative "pending ids": real ones (the subject map's entry takes one) never collide
            (-1 - i, "certificate.transferred", f"user:{i % 977}", [], event_bytes(i), now)
            for i in range(start, min(count, start + LOAD_CHUNK))
        ]
        with transaction.atomic():
            entries, subjects, nodes, chain = build_batch(tree, chain, pending, now)
            store_batch(entries, subjects, nodes)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_treehead (id, size, root, chain, updated_at) "
            "VALUES (1, %s, %s, %s, %s)",
            [tree.size, tree.root(), chain, now],
        )
    checkpoint, _ = checkpoint_create()
    print(
        f"loaded {count} entries in {time.perf_counter() - started:.1f} s; checkpoint "
        f"{checkpoint.size}"
    )


# ---------------------------------------------------------------- orchestration


class Server:
    def __init__(self, name: str, port: int, env: dict, workdir: Path) -> None:
        self.name, self.port, self.env = name, port, env
        self.log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(BIN / "granian"),
                *("--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)),
                # production's web server (docs/operations.md), 2 workers of 4 threads
                *("--workers", "2", "--blocking-threads", "4", "--no-ws"),
                "registry.wsgi:application",
            ],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> None:
        import urllib.request

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start; see its log")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def admin_sql(server: dict, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **server)
    conn.autocommit = True
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    conn.close()


def register_peer_sql(server: dict, dbname: str, *, origin: str, url: str, signer, witness) -> None:
    """Register a peer straight into another registry's database (benchmark set-up)."""
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, **server)
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO federation_peer (origin, name, base_url, witness_url, log_vkey, "
            "witness_vkey, is_witness, is_mirror, is_partner, status, status_reason, "
            "created_at, updated_at) VALUES (%s, %s, %s, '', %s, %s, false, false, false, "
            "'active', '', now(), now())",
            [origin, origin, url, signer.vkey, witness.cosignature_vkey],
        )
    conn.close()


def registry_env(url: str, origin: str, key: str, witness_key: str) -> dict:
    env = os.environ | {
        "DJANGO_ENV": "development",
        "DATABASE_URL": url,
        "REGISTRY_ORIGIN": origin,
        "REGISTRY_SIGNING_KEY": key,
        "REGISTRY_WITNESS_KEY": witness_key,
        "THROTTLE_ANON": "10000000/minute",
        "LOG_LEVEL": "WARNING",
        # The baselines recompute exactly the `--entries` loaded: no subject-map entry at
        # the checkpoint (the map is benchmarked by subject_index_bench.py).
        "LEDGER_SUBJECT_INDEX": "false",
    }
    env.pop("CELERY_BROKER_URL", None)
    return env


def _process_cpu(pid: str, known: dict[int, str], source_group: int, prefix: str) -> float | None:
    """CPU seconds process `pid` has used so far (Linux /proc); classifies it into `known`
    the first time (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        if int(pid) not in known:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
            who = _who(int(pid), int(fields[2]), command, source_group, prefix)
            # a backend just forked still shows the server's command line: ask again later
            if who != "other processes" or "postgres" not in command:
                known[int(pid)] = who
    except OSError:  # gone meanwhile
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _who(pid: int, group: int, command: str, source_group: int, prefix: str) -> str:
    if pid == os.getpid():
        return "this process (replicating)"
    if group == source_group:
        return "source: web server"
    if title := PG_TITLE.match(command):
        # a backend is "<user> <database> <client> <state>"
        words = title[1].split()
        if len(words) < 3 or not ("(" in words[2] or words[2] == "[local]"):
            return "PostgreSQL: background (WAL, checkpoints)"
        if words[1].startswith(prefix + "_"):
            return f"PostgreSQL: {words[1].removeprefix(prefix + '_')} backends"
        return "PostgreSQL: other databases"
    return "other processes"


PG_TITLE = re.compile(r"postgres: (?:[^ :]+: )?(.*)")
"""A PostgreSQL process title, after the cluster name some packagings put first."""


class CpuMeter:
    """CPU seconds per kind of process over a step: this process, the source's web server
    (its process group), PostgreSQL's backends for this benchmark's databases (`prefix`_*)
    and its background processes, everything else (Linux /proc). Between the first and the
    last reading the benchmark's own processes are polled every quarter second, so that one
    which ends within the step (the replication's storing connection closes at its end)
    counts up to its last poll; other processes that end within the step are missed."""

    OURS = ("this process", "source:", "PostgreSQL: src", "PostgreSQL: dst")

    def __init__(self, source_group: int, prefix: str) -> None:
        import threading

        self.args = (source_group, prefix)
        self.who: dict[int, str] = {}
        self.first = self.read(every=True)
        self.last = dict(self.first)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def read(self, every: bool) -> dict[int, float]:
        found = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            who = self.who.get(int(entry.name))
            if not every and who is not None and not who.startswith(self.OURS):
                continue
            seconds = _process_cpu(entry.name, self.who, *self.args)
            if seconds is not None:
                found[int(entry.name)] = seconds
        return found

    def poll(self) -> None:
        while not self.stop.wait(0.25):
            self.last.update(self.read(every=False))

    def spent(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join()
        self.last.update(self.read(every=True))
        spent: dict[str, float] = {}
        for pid, seconds in self.last.items():
            who = self.who.get(pid, "other processes")
            spent[who] = spent.get(who, 0.0) + seconds - self.first.get(pid, 0.0)
        return spent


def print_cpu(spent: dict[str, float], seconds: float, n: int) -> None:
    total = sum(spent.values())
    print(f"  CPU over that step ({seconds:.2f} s wall, {os.cpu_count()} CPUs):")
    for who, value in sorted(spent.items(), key=lambda item: -item[1]):
        if value >= 0.005:
            print(f"    {who:<42} {value:6.2f} s  {value / n * 1e6:6.2f} us/entry")
    print(f"    {'total':<42} {total:6.2f} s  {total / n * 1e6:6.2f} us/entry")


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=300, help="anchoring rounds")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--replication-only",
        action="store_true",
        help="replication and its baselines without the JSON pages (30 s) and anchoring",
    )
    parser.add_argument("--load-source", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, entries=2000, rounds=3)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    if args.load_source is not None:
        return load_source(args.load_source)

    base = urllib.parse.urlsplit(os.environ.get("DATABASE_URL", ""))
    if base.scheme not in ("postgres", "postgresql"):
        sys.exit("set DATABASE_URL=postgres://user@host:port/name (PostgreSQL only)")
    prefix = (base.path.lstrip("/") or "gp_bench") + "_fed"
    server = {
        "host": base.hostname or "127.0.0.1",
        "port": base.port or 5432,
        "user": base.username or "postgres",
        "password": base.password,
    }
    auth = server["user"] + (f":{server['password']}" if server["password"] else "")

    def db_url(name: str) -> str:
        return f"postgres://{auth}@{server['host']}:{server['port']}/{prefix}_{name}"

    import psycopg2

    from ledger.signing import Signer, generate_private_key

    keys = {
        name: generate_private_key(f"bench-{name}.test/gridproof") for name in ("src", "dst", "wit")
    }
    signers = {name: Signer.from_private_key(key) for name, (key, _) in keys.items()}
    # each registry cosigns with a witness key of its own (REGISTRY_WITNESS_KEY)
    witness_keys = {
        name: generate_private_key(f"bench-{name}.test/gridproof/witness")[0] for name in keys
    }
    witnesses = {name: Signer.from_private_key(key) for name, key in witness_keys.items()}
    workdir = Path(tempfile.mkdtemp(prefix="federation-bench-"))
    names = ("src", "dst", "wit")
    admin_sql(
        server,
        *[f"DROP DATABASE IF EXISTS {prefix}_{n} WITH (FORCE)" for n in (*names, "tpl")],
        f"CREATE DATABASE {prefix}_tpl",
    )
    envs = {n: registry_env(db_url(n), signers[n].name, keys[n][0], witness_keys[n]) for n in names}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        check=True,
        env=registry_env(db_url("tpl"), signers["src"].name, keys["src"][0], witness_keys["src"]),
        stdout=subprocess.DEVNULL,
    )
    # A template is no registry yet: each copy records itself as the database that signs
    # when it first signs (ledger/fence.py), rather than inheriting the template's.
    template = psycopg2.connect(dbname=f"{prefix}_tpl", **server)
    with template, template.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_signingfence")
    template.close()
    admin_sql(server, *[f"CREATE DATABASE {prefix}_{n} TEMPLATE {prefix}_tpl" for n in names])
    print(f"loading the source with {args.entries:,} entries (COPY)...", flush=True)
    subprocess.run(
        [sys.executable, __file__, "--load-source", str(args.entries)],
        cwd=REPO,
        check=True,
        env=envs["src"],
    )

    servers = []
    try:
        src = Server("source", free_port(), envs["src"], workdir)
        wit = Server("witness", free_port(), envs["wit"], workdir)
        servers = [src, wit]
        for s in servers:
            s.wait()
        for name in ("src", "wit"):
            register_peer_sql(
                server,
                f"{prefix}_{name}",
                origin=signers["dst"].name,
                url="http://127.0.0.1:9",
                signer=signers["dst"],
                witness=witnesses["dst"],
            )
        os.environ.update(envs["dst"])
        os.environ["REGISTRY_BASE_URL"] = "http://127.0.0.1:9"
        run_benchmarks(args, src, wit, signers, witnesses, prefix)
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            admin_sql(
                server,
                *[f"DROP DATABASE IF EXISTS {prefix}_{n} WITH (FORCE)" for n in (*names, "tpl")],
            )


def run_benchmarks(
    args, src: Server, wit: Server, signers: dict, witnesses: dict, prefix: str
) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    from federation import client
    from federation.anchoring import anchor_prepare, anchor_witness
    from federation.models import Anchor, MirrorHead, Peer, WitnessProgress
    from federation.replication import _fetch_range, _Source, _source, peer_replicate
    from ledger.merkle import CompactRange, leaf_hash
    from ledger.services import checkpoint_create, ledger_append, ledger_integrate

    n = args.entries
    print(f"\nFederation benchmark, PostgreSQL, {os.cpu_count()} CPUs, loopback HTTP")
    print(
        f"entry bundles of {settings.FEDERATION_REPLICATION_BUNDLE_SIZE} (JSON pages of "
        f"{settings.FEDERATION_REPLICATION_PAGE_SIZE}), "
        f"{settings.FEDERATION_REPLICATION_CONCURRENCY} requests in flight, "
        f"batch {settings.FEDERATION_REPLICATION_BATCH_SIZE}"
    )

    # Baseline 1: the same tree recomputed alone, in memory; the fastest of three runs (the
    # machine is shared: a slow baseline would flatter the ratio).
    events = [event_bytes(i) for i in range(n)]
    raw_seconds = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        tree = CompactRange()
        for event in events:
            tree.append(leaf_hash(event))
        raw_root = tree.root()
        raw_seconds = min(raw_seconds, time.perf_counter() - started)
    del events

    def make_peer(name, url, **roles) -> Peer:
        signer = signers[name]
        peer = Peer.objects.create(
            origin=signer.name,
            base_url=url,
            log_vkey=signer.vkey,
            witness_vkey=witnesses[name].cosignature_vkey,
            **roles,
        )
        MirrorHead.objects.create(peer=peer)
        WitnessProgress.objects.create(peer=peer)
        return peer

    source = make_peer("src", src.url, is_mirror=True, is_witness=True)
    witness = make_peer("wit", wit.url, is_witness=True)

    # Baseline 2: fetching the same entries (parse only), as many requests in flight, as
    # GridProof entry bundles (what replication uses) and as the ledger API's JSON pages.
    def fetch_all(source) -> float:
        page = source.page_size
        started = time.perf_counter()
        with ThreadPoolExecutor(settings.FEDERATION_REPLICATION_CONCURRENCY) as pool:
            fetched = sum(
                len(p.events)
                for pages in pool.map(
                    lambda a: _fetch_range(source, a, min(n, a + page)), range(0, n, page)
                )
                for p in pages
            )
        assert fetched == n
        return time.perf_counter() - started

    bundles = _source(source, n)
    assert bundles.bundles, "the source should serve entry bundles"
    fetch_seconds = fetch_all(bundles)
    json_seconds = None if args.replication_only else fetch_all(_Source(source, bundles=False))

    # Replication catch-up.
    print(f"replicating {n:,} entries...", flush=True)
    meter = CpuMeter(src.proc.pid, prefix)
    started = time.perf_counter()
    result = peer_replicate(peer_id=source.pk, max_entries=0, force=True)
    replication_seconds = time.perf_counter() - started
    cpu = meter.spent()
    head = MirrorHead.objects.get(peer=source)
    assert result.outcome == "replicated", result
    assert head.size == n and bytes(head.root) == raw_root, "mirror root differs"

    raw, fetch, full = (
        rate(n, raw_seconds),
        rate(n, fetch_seconds),
        rate(n, replication_seconds),
    )
    print(f"\nReplication catch-up of {n:,} entries")
    print(f"  recompute the tree (raw, best of 3)   {raw:>10,.0f} entries/s  {raw_seconds:7.2f} s")
    print(
        f"  fetch entry bundles only              {fetch:>10,.0f} entries/s  {fetch_seconds:7.2f} s"
    )
    if json_seconds is not None:
        print(
            f"  fetch ledger API JSON pages only      {rate(n, json_seconds):>10,.0f} entries/s  "
            f"{json_seconds:7.2f} s"
        )
    print(
        f"  replicate (fetch, verify, store)      {full:>10,.0f} entries/s  "
        f"{replication_seconds:7.2f} s"
    )
    print(
        f"  replication / raw recompute           {full / raw:>10.3f}  (raw is {raw / full:.1f}x)"
    )
    print(f"  replication / fetch bundles only      {full / fetch:>10.3f}")
    print_cpu(cpu, replication_seconds, n)
    if args.replication_only:
        return

    # Anchoring delay with two witnesses (2-of-2), anchoring right after signing.
    settings.ANCHOR_QUORUM = 2
    rtts = []
    for _ in range(50):
        t0 = time.perf_counter()
        response = client.get(src.url + "/healthz", limits=client.Limits(5, 65536))
        rtts.append(time.perf_counter() - t0)
        assert response.status == 200

    def ask(peer_id: int) -> str:
        try:
            return anchor_witness(peer_id=peer_id)
        finally:
            connection.close()

    delays = []
    with ThreadPoolExecutor(2) as pool:
        for i in range(args.rounds):
            with transaction.atomic():
                ledger_append(
                    kind="bench.appended", actor="system:bench", subject=None, data={"i": i}
                )
            ledger_integrate()
            checkpoint, _ = checkpoint_create()
            anchor_prepare()
            outcomes = list(pool.map(ask, [source.pk, witness.pk]))
            anchor = Anchor.objects.get(size=checkpoint.size)
            assert anchor.anchored_at is not None, outcomes
            delays.append((anchor.anchored_at - checkpoint.created_at).total_seconds())
    delays.sort()
    median, p99 = statistics.median(delays), delays[max(0, round(0.99 * len(delays)) - 1)]
    rtt = statistics.median(rtts)
    print(
        f"\nAnchoring delay, 2 witnesses, quorum 2, {len(delays)} checkpoints "
        "(signing -> quorum, no polling interval)"
    )
    print(
        f"  median {median * 1000:8.1f} ms   p99 {p99 * 1000:8.1f} ms   max "
        f"{delays[-1] * 1000:8.1f} ms"
    )
    print(
        f"  bare HTTP round trip to a witness (raw): median {rtt * 1000:.2f} ms; "
        f"anchoring median is {median / rtt:.1f}x that"
    )
    interval = settings.FEDERATION_ANCHOR_INTERVAL_SECONDS
    print(
        f"  with beat every {interval:g} s, add up to {interval:g} s "
        f"({interval / 2:g} s on average) in production"
    )


if __name__ == "__main__":
    main()
