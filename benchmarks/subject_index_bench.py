"""Subject map benchmark: index maintenance against the integrator, proofs, offline checks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gridproof_bench_index \\
        python benchmarks/subject_index_bench.py --entries 1000000

1. The integrator alone (number, hash, store entries, subject rows and tree nodes: the
   integrator's own code, without the queue) loads `--entries` entries, each about three
   subjects (its bundle, one of 1,000 accounts, one of entries/100 devices), so the map
   ends with about entries + entries/100 + 1,000 subjects.
2. The subject map is brought up to date in steps of `--commit-every` entries, as each
   checkpoint does: entries/s indexed, and that rate over the integrator's. Then again,
   from nothing, in the steps the periodic checkpoint takes when the integrator runs flat
   out: what it integrates in CHECKPOINT_INTERVAL_SECONDS (the step that decides whether
   the map keeps up; a step's cost grows with the buckets it changes, up to all of them).
3. The completeness proof of one subject as served (`subject_completeness`: the
   commitment entry, its inclusion proof, the map proof), p50/p99, against a bare
   psycopg2 one-row read by primary key in the same run; and its size in bytes.
4. Offline verification of a `--history`-entry history (`check_complete_history`:
   checkpoint signature, every inclusion proof, the map proof, the count and chain),
   against checking the inclusion proofs alone (`check_history`).
"""

import argparse
import base64
import json
import os
import random
import statistics
import sys
import time

from support import SMOKE_HELP, apply_smoke, dsn, ensure_database, recreate_database, setup_django

LOAD_CHUNK = 20_000
ACCOUNTS = 1000


def event(i: int, devices: int, bundles: int) -> bytes:
    """A transfer-sized canonical event naming three subjects, keys in RFC 8785 order."""
    return (
        f'{{"actor":"user:{i % 997}","at":"2026-01-01T00:00:00.{i % 1_000_000:06d}Z",'
        f'"data":{{"bundle_id":{i % bundles},"volume_wh":1000}},'
        f'"subject":["bundle:{i % bundles}","account:{i % ACCOUNTS}","device:{i % devices}"],'
        f'"type":"test.transferred"}}'
    ).encode()


def load(entries: int, devices: int, bundles: int) -> float:
    """The integrator's batch code over `entries` events; returns seconds."""
    from django.db import connection, transaction
    from django.utils import timezone

    from ledger import storage
    from ledger.merkle import EMPTY_ROOT
    from ledger.services import _resume_tree, build_batch, store_batch

    with connection.cursor() as cursor, transaction.atomic():
        size, root, chain = storage.tree_head_lock(cursor, empty_root=EMPTY_ROOT)
        tree = _resume_tree(size, root)
    started = time.perf_counter()
    while tree.size < entries:
        count = min(LOAD_CHUNK, entries - tree.size)
        now = timezone.now()
        rows = [
            (
                -1 - i,
                "test.transferred",
                f"user:{i % 997}",
                [f"bundle:{i % bundles}", f"account:{i % ACCOUNTS}", f"device:{i % devices}"],
                event(i, devices, bundles),
                now,
            )
            for i in range(tree.size, tree.size + count)
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            entries_rows, subjects, nodes, chain = build_batch(tree, chain, rows, now)
            store_batch(entries_rows, subjects, nodes)
            storage.tree_head_update(cursor, size=tree.size, root=tree.root(), chain=chain, now=now)
    return time.perf_counter() - started


def index(entries: int, step: int) -> float:
    """Index the log from nothing in steps of `step` entries; returns seconds."""
    from django.db import connection, transaction

    from ledger.index import subject_index_update

    with connection.cursor() as cursor:  # the map's tables, emptied (the bench's own database)
        cursor.execute(
            "TRUNCATE ledger_subjectindexrecord, ledger_subjectindexlatest, "
            "ledger_subjectindexnode, ledger_subjectindexcommit"
        )
    started = time.perf_counter()
    for size in range(step, entries + step, step):
        with transaction.atomic():
            subject_index_update(min(size, entries))
    return time.perf_counter() - started


def p50_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def proofs(samples: int, entries: int, devices: int, bundles: int, cfg: dict) -> None:
    import psycopg2

    from ledger.selectors import checkpoint_latest, subject_completeness

    size = checkpoint_latest().size
    rng = random.Random(6962)
    keys = [
        rng.choice([f"bundle:{rng.randrange(bundles)}", f"device:{rng.randrange(devices)}"])
        for _ in range(samples)
    ]
    served, sizes = [], []
    for key in keys:
        started = time.perf_counter()
        proof = subject_completeness(keys=[key], size=size)
        served.append(time.perf_counter() - started)
        sizes.append(len(json.dumps(proof)))
    raw = psycopg2.connect(dsn(cfg))
    bare = []
    with raw.cursor() as cur:
        for _ in range(samples):
            seq = rng.randrange(entries)
            started = time.perf_counter()
            cur.execute("SELECT event FROM ledger_ledgerentry WHERE seq = %s", [seq])
            cur.fetchone()
            bare.append(time.perf_counter() - started)
    raw.close()
    p50, p99 = p50_p99(served)
    b50, b99 = p50_p99(bare)
    print(
        f"  completeness proof served: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms "
        f"(bare one-row read p50 {b50 * 1e3:.3f} ms, p99 {b99 * 1e3:.3f} ms: "
        f"{p50 / b50:.1f}x at p50)"
    )
    print(
        f"  proof size: median {statistics.median(sizes):,.0f} bytes, max {max(sizes):,} bytes "
        "(JSON, base64; the index entry's inclusion proof included)"
    )


def offline(history: int, rounds: int) -> None:
    from ledger.keys import registry_signer
    from ledger.selectors import ledger_subject_history
    from ledger.verify.checks import Trust, check_history
    from ledger.verify.completeness import check_complete_history

    found = ledger_subject_history(key="device:0", limit=1000)
    bundle = {
        "checkpoint": found.checkpoint.note,
        "entries": [
            {
                "seq": item.entry.seq,
                "event_b64": base64.b64encode(bytes(item.entry.event)).decode(),
                "proof": [base64.b64encode(h).decode() for h in item.proof],
            }
            for item in found.entries
        ],
        "completeness": found.completeness,
    }
    trust = Trust.from_strings(registry_signer().vkey)
    complete, inclusion = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        check_history(bundle, trust, ("device", "0"))
        inclusion.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = check_complete_history(bundle, trust, ("device", "0"))
        complete.append(time.perf_counter() - started)
    assert result.counts["device:0"] == len(bundle["entries"]) == history
    full, bare = statistics.median(complete), statistics.median(inclusion)
    print(
        f"  offline check of a {history}-entry history, complete: {full * 1e3:.1f} ms "
        f"(inclusion proofs alone {bare * 1e3:.1f} ms: {full / bare:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument(
        "--commit-every",
        type=int,
        default=50_000,
        help="a fixed step, measured first (0: only the checkpoint cadence's step)",
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=0,
        help="about this many subjects in the map (bundles repeat); default: one bundle per "
        "entry, so entries + entries/100 + 1,000",
    )
    parser.add_argument("--proof-samples", type=int, default=1000)
    parser.add_argument("--history", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, entries=2000, commit_every=700, proof_samples=20, history=10, rounds=2)
    devices = max(1, args.entries // args.history)
    bundles = max(1, args.subjects - devices - ACCOUNTS) if args.subjects else args.entries

    cfg = ensure_database()
    recreate_database(cfg)
    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from ledger.services import checkpoint_create

    call_command("migrate", verbosity=0)
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load_avg}; {args.entries:,} entries")

    seconds = load(args.entries, devices, bundles)
    integrator = args.entries / seconds
    print(f"  integrator alone: {seconds:.1f} s, {integrator:,.0f} entries/s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    cadence = max(args.commit_every, round(integrator * settings.CHECKPOINT_INTERVAL_SECONDS))
    steps = [(args.commit_every, "")] if args.commit_every else []
    steps.append(
        (cadence, f" (what {settings.CHECKPOINT_INTERVAL_SECONDS} s of the integrator make)")
    )
    for step, why in steps:
        seconds = index(args.entries, step)
        indexed = args.entries / seconds
        print(
            f"  subject map, commits every {step:,}{why}: {seconds:.1f} s, "
            f"{indexed:,.0f} entries/s = {indexed / integrator:.2f}x the integrator's rate"
        )
    checkpoint_create()  # the map is current: commits it and signs
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT subjects FROM ledger_subjectindexcommit ORDER BY size DESC LIMIT 1")
        print(f"  subjects in the map: {cursor.fetchone()[0]:,}")
    proofs(args.proof_samples, args.entries, devices, bundles, cfg)
    offline(args.history, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
