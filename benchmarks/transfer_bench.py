"""Cross-registry import benchmark: verify a partner's export package and import it.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_transfer \\
        .venv/bin/python benchmarks/transfer_bench.py [--imports 500] [--log-size 100000]

Creates and migrates the database if needed; each run uses a new partner origin, so runs
do not collide. A partner log of --log-size entries holds --imports certificate exports
to one of our accounts, under one checkpoint cosigned by a witness we trust. Measured in
the same process, one package after the other:

- raw baseline: what any import must do at least: verify the checkpoint's signature and
  cosignature and the entry's inclusion proof (PyNaCl, hashlib), and commit one row in a
  bare psycopg2 transaction;
- import: `federation.transfers.transfer_receive`: the package parsed and verified, the
  import row, the certificates credited, the ledger event queued, one transaction.
"""

import argparse
import base64
import json
import statistics
import time

import support

from ledger.merkle import CompactRange, inclusion_proof, leaf_hash


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def export_event(i: int, origin: str, account: str) -> bytes:
    from tests.certificates.factories import export_event_data

    data = export_event_data(
        account,
        origin=origin,
        device_id=1 + i % 50,
        device_name=f"Windpark {1 + i % 50}",
        unit_start=i * 1000,
        unit_end=i * 1000 + 1000,
    )
    event = {"type": "certificate.exported", "at": "2026-11-25T10:00:00.000000Z", "data": data}
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--imports", type=int, default=500)
    parser.add_argument("--log-size", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help=support.SMOKE_HELP)
    args = parser.parse_args()
    support.apply_smoke(args, imports=5, log_size=1000)
    cfg = support.ensure_database()

    import django

    django.setup()
    import psycopg2
    from django.core.management import call_command

    from accounts.models import Account, Organisation
    from federation import transfers
    from federation.models import Peer
    from ledger.signing import Signer, sign_checkpoint
    from ledger.verify.note import VerifierKey, verify_checkpoint
    from ledger.verify.rfc9162 import verify_inclusion

    call_command("migrate", verbosity=0)
    run = int(time.time() * 1000)
    origin = f"partner-{run}.bench/log"
    partner = Signer(origin, (run % 251).to_bytes(1, "big") * 32)
    witness = Signer(f"witness-{run}.bench/w", ((run + 1) % 251).to_bytes(1, "big") * 32)
    Organisation.objects.get_or_create(
        legal_name="Bench issuing body",
        defaults={
            "country": "DE",
            "registration_id": "BENCH-IB",
            "is_issuing_body": True,
            "status": "approved",
        },
    )
    buyer = Organisation.objects.create(
        legal_name=f"Bench buyer {run}", country="DE", registration_id=f"BENCH-{run}"
    )
    account = Account.objects.create(organisation=buyer, number=f"BENCH-{run}", name="bench")
    peer = Peer.objects.create(
        origin=origin,
        base_url="http://127.0.0.1:9",
        log_vkey=partner.vkey,
        witness_vkey=partner.cosignature_vkey,
        is_partner=True,
    )
    Peer.objects.create(
        origin=witness.name,
        base_url="http://127.0.0.1:9",
        log_vkey=witness.vkey,
        witness_vkey=witness.cosignature_vkey,
    )

    # the partner's log: exports spread evenly among filler entries
    step = max(1, args.log_size // args.imports)
    export_seqs, events = [], []
    for seq in range(args.log_size):
        if seq % step == 0 and len(export_seqs) < args.imports:
            export_seqs.append(seq)
            events.append(export_event(len(export_seqs), origin, account.number))
        else:
            events.append(b'{"type":"test.filler","n":%d}' % seq)
    leaves = [leaf_hash(e) for e in events]
    tree = CompactRange()
    tree.extend(leaves)
    note = sign_checkpoint(partner, origin, len(leaves), tree.root())
    note += witness.cosign(note[: note.index("\n\n") + 1], int(time.time()))
    bodies = []
    for seq in export_seqs:
        proof = [_b64(h) for h in inclusion_proof(seq, len(leaves), leaves)]
        hop = {
            "origin": origin,
            "checkpoint": note,
            "entries": [{"seq": seq, "event_b64": _b64(events[seq]), "proof": proof}],
        }
        bodies.append(json.dumps({"version": 1, "export_seq": seq, "hop": hop}).encode())

    # raw baseline: signature, cosignature and proof checks, and one bare transaction each
    log_key, witness_key = VerifierKey.parse(partner.vkey), witness.cosignature_verifier
    raw = psycopg2.connect(
        dbname=cfg["NAME"],
        user=cfg["USER"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
        password=cfg["PASSWORD"] or None,
    )
    with raw, raw.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_import (seq bigint, origin text)")
    raw_times = []
    for body in bodies:
        started = time.perf_counter()
        package = json.loads(body)
        entry = package["hop"]["entries"][0]
        checkpoint, _ = verify_checkpoint(package["hop"]["checkpoint"], log_key, [witness_key], 1)
        proof = [base64.b64decode(h) for h in entry["proof"]]
        verify_inclusion(
            leaf_hash(base64.b64decode(entry["event_b64"])),
            entry["seq"],
            checkpoint.size,
            proof,
            checkpoint.root,
        )
        with raw, raw.cursor() as cur:
            cur.execute("INSERT INTO bench_import VALUES (%s, %s)", [entry["seq"], origin])
        raw_times.append(time.perf_counter() - started)
    raw.close()

    import_times, outcomes = [], []
    for body in bodies:
        started = time.perf_counter()
        received, _created = transfers.transfer_receive(peer, body)
        import_times.append(time.perf_counter() - started)
        outcomes.append(received.status)
    assert outcomes == ["imported"] * len(bodies), set(outcomes)

    def line(name: str, times: list[float]) -> None:
        ms = [t * 1000 for t in times]
        print(
            f"| {name} | {len(times) / sum(times):,.0f} | {statistics.median(ms):.2f} "
            f"| {sorted(ms)[int(0.99 * (len(ms) - 1))]:.2f} |"
        )

    print(f"\n{len(bodies)} imports from a log of {args.log_size:,} entries")
    print("| per package | per second | median ms | p99 ms |\n| --- | ---: | ---: | ---: |")
    line("raw: verify note, cosignature and proof; bare transaction", raw_times)
    line("**transfer_receive: verify, import, ledger event**", import_times)
    print(f"\nimport / raw time: {sum(import_times) / sum(raw_times):.1f}x")


if __name__ == "__main__":
    main()
