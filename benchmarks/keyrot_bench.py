"""Log key rotation: what following a key history costs a verifier and a mirror.

    .venv/bin/python benchmarks/keyrot_bench.py [--rotations 100] [--entries 200000] [--rounds 5]

No database: the checks are pure (ledger.verify.keyhistory, federation.peer_keys). Each
figure is printed against a baseline run in the same process on the same data:

1. following R announcements (KeyHistory.follow: parse both keys, verify the old key's
   signed statement) against R bare Ed25519 verifications of the same statements;
2. verifying a checkpoint under a history of R keys (KeyHistory.verify_checkpoint) against
   `verify_checkpoint` with the right key given (no rotation);
3. a mirror's scan of replicated entries (pages of 5,000, one announcement among them) for
   announcements retiring the signing key (federation.peer_keys.retired_key_check)
   against the SHA-256 leaf hashes replication computes over the same bytes anyway.
"""

import argparse
import itertools
import json
import statistics
import time
from dataclasses import dataclass

import support  # noqa: F401 - puts the repository on sys.path
from support import SMOKE_HELP, apply_smoke

ORIGIN = "bench.example/log"


@dataclass
class _Page:
    start: int
    events: list[bytes]


def median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, rotations=3, entries=2_000, rounds=1)

    # Django settings are not needed by these modules, but federation.peer_keys imports
    # the models: set Django up as the other benchmarks do.
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    os.environ.setdefault("DJANGO_ENV", "development")
    django.setup()

    import hashlib

    import nacl.signing

    from federation.peer_keys import retired_key_check
    from ledger.signing import Signer, sign_checkpoint
    from ledger.verify.keyhistory import ROTATION_KIND, KeyHistory, rotation_statement
    from ledger.verify.note import Note, verify_checkpoint

    signers = [Signer(ORIGIN, i.to_bytes(32, "big")) for i in range(1, args.rotations + 2)]
    announcements = []
    for seq, (old, new) in enumerate(itertools.pairwise(signers)):
        note = old.sign_note(rotation_statement(ORIGIN, old.vkey, new.vkey))
        data = {"origin": ORIGIN, "old_vkey": old.vkey, "new_vkey": new.vkey, "note": note}
        announcements.append((seq * 10, data))

    def follow() -> KeyHistory:
        history = KeyHistory(signers[0].vkey)
        for seq, data in announcements:
            history.follow(seq, data)
        return history

    raw = []
    for _seq, data in announcements:
        parsed = Note.parse(data["note"])
        raw.append((parsed.text.encode(), parsed.signatures[0].signature))

    def bare_verify() -> None:
        for (text, sig), old in zip(raw, signers, strict=False):
            nacl.signing.VerifyKey(old.verifier.public_key).verify(text, sig)

    history = follow()
    size = announcements[-1][0] + 1 if announcements else 1
    checkpoint = sign_checkpoint(signers[-1], ORIGIN, size, b"\x07" * 32)
    assert history.verify_checkpoint(checkpoint)[0].size == size

    events = [
        json.dumps({"type": "test.happened", "data": {"n": n, "pad": "x" * 200}}).encode()
        for n in range(args.entries)
    ]
    events[len(events) // 2] = json.dumps(
        {"type": ROTATION_KIND, "data": announcements[0][1] if announcements else {}}
    ).encode()
    # pages as replication receives them (FEDERATION_REPLICATION_BUNDLE_SIZE entries each)
    pages = [_Page(i, events[i : i + 5000]) for i in range(0, len(events), 5000)]
    other = signers[-1].verifier  # not retired by the announcement in the batch

    def scan() -> None:
        retired_key_check(other, None, len(events), pages)

    def leaf_hashes() -> None:
        sha256 = hashlib.sha256
        for event in events:
            sha256(b"\0" + event).digest()

    followed = median_seconds(follow, args.rounds)
    bare = median_seconds(bare_verify, args.rounds)
    under_history = median_seconds(lambda: history.verify_checkpoint(checkpoint), args.rounds * 20)
    direct = median_seconds(
        lambda: verify_checkpoint(checkpoint, signers[-1].verifier), args.rounds * 20
    )
    scanned = median_seconds(scan, args.rounds)
    hashed = median_seconds(leaf_hashes, args.rounds)

    rotations = len(announcements)
    print(f"{rotations} rotations, {len(events):,} replicated entries, median of {args.rounds}")
    print(
        f"  follow {rotations} announcements      {followed * 1000:9.2f} ms "
        f"({followed / max(rotations, 1) * 1e6:.0f} us each)"
    )
    print(
        f"    baseline: {rotations} bare Ed25519 verifies {bare * 1000:9.2f} ms"
        f"  -> {followed / bare:.2f}x"
    )
    print(f"  checkpoint under {rotations + 1} keys       {under_history * 1e6:9.1f} us")
    print(
        f"    baseline: verify_checkpoint, key given {direct * 1e6:9.1f} us"
        f"  -> {under_history / direct:.2f}x"
    )
    print(
        f"  mirror scan for announcements   {scanned * 1000:9.2f} ms "
        f"({len(events) / scanned:,.0f} entries/s)"
    )
    print(
        f"    baseline: SHA-256 leaf hashes     {hashed * 1000:9.2f} ms"
        f"  -> scan adds {scanned / hashed:.2f}x of the hashing replication already does"
    )


if __name__ == "__main__":
    main()
