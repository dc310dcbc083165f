"""What the transfer's two lock statements cost, in Python and in PostgreSQL: prepared
`JoinedSelect` statements against the same text sent anew and against
`Model.objects.raw()`, with a bare lock as the raw baseline.

    DJANGO_ENV=development DATABASE_URL=postgres://postgres@127.0.0.1:5432/gp_bench_locks \\
        .venv/bin/python benchmarks/lock_bench.py [--bundles 200] [--rounds 5] [--smoke]

Creates and migrates the database if needed, adds `--bundles` bundles of one
organisation (as `bundle_read_bench.py`), then, in rounds, each variant locks every
bundle once, one call per bundle, inside one transaction that is rolled back:

- raw baseline: `SELECT id FROM certificates_bundle WHERE id = %s FOR UPDATE` through
  Django's cursor, the least a lock can cost;
- `storage.bundles_lock_for_move` (the bundle, its holder's account, the organisation's
  status and the actor's role, one statement) as it runs now: a prepared statement;
- the same text sent as a plain statement, planned on every call (before);
- the same statement through `Bundle.objects.raw()` (earlier; kept here);
- `storage.account_lock_for_receiving` by number: now (prepared), sent anew, and through
  `Account.objects.raw()`.

Printed: the median over the rounds of µs a call (the caller's wall time) and, when the
server runs on this machine, of the PostgreSQL backend's CPU µs a call (its
/proc/<pid>/schedstat), and each against the baseline.
"""

import argparse
import os
import statistics
import sys
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.certificates_settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import support
from support import SMOKE_HELP, apply_smoke

MOVE_SQL = (
    "SELECT {columns}, a.organisation_id AS holder_organisation_id, "
    "a.number AS holder_number, a.status AS holder_status, a.kind AS holder_kind, "
    "o.status AS holder_organisation_status, m.role AS actor_role "
    "FROM certificates_bundle b "
    "JOIN accounts_account a ON a.id = b.account_id "
    "JOIN accounts_organisation o ON o.id = a.organisation_id "
    "LEFT JOIN accounts_membership m "
    "ON m.organisation_id = a.organisation_id AND m.user_id = %s "
    "WHERE b.id IN (%s) ORDER BY b.id FOR UPDATE OF b"
)
MOVE_TAIL = (
    "FROM certificates_bundle b "
    "JOIN accounts_account a ON a.id = b.account_id "
    "JOIN accounts_organisation o ON o.id = a.organisation_id "
    "LEFT JOIN accounts_membership m "
    "ON m.organisation_id = a.organisation_id AND m.user_id = %s "
    "WHERE b.id = %s ORDER BY b.id FOR UPDATE OF b"
)
RECEIVING_SQL = (
    "SELECT a.id, a.organisation_id, a.number, a.status, a.kind, "
    "p.require_acceptance AS policy_requires_acceptance "
    "FROM accounts_account a "
    "LEFT JOIN certificates_transferpolicy p ON p.organisation_id = a.organisation_id "
    "WHERE a.number = %s FOR KEY SHARE OF a"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    apply_smoke(args, bundles=10, rounds=1)

    support.ensure_database()
    support.setup_django()
    from bundle_read_bench import make_world
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import Account
    from certificates import storage
    from certificates.models import Bundle

    call_command("migrate", verbosity=0)
    ids, _token = make_world(args.bundles, uuid.uuid4().hex[:8])
    number = Bundle.objects.select_related("account").get(pk=ids[0]).account.number
    columns = ", ".join(f"b.{name}" for name in storage._BUNDLE_FIELDS)

    def bare(pk: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM certificates_bundle WHERE id = %s FOR UPDATE", [pk])
            cursor.fetchall()

    def move_raw(pk: int) -> None:
        for bundle in Bundle.objects.raw(MOVE_SQL.format(columns=columns), [None, pk]):
            Account.from_db(
                connection.alias,
                storage._ACCOUNT_FIELDS,
                [bundle.account_id, bundle.holder_organisation_id, bundle.holder_number,
                 bundle.holder_kind, bundle.holder_status],
            )  # fmt: skip

    def move_unprepared(pk: int) -> None:
        assert storage._MOVE.each(MOVE_TAIL, [None, pk])

    def receiving_unprepared(_pk: int) -> None:
        tail = f"{storage._RECEIVING_FROM}WHERE a.number = %s FOR KEY SHARE OF a"
        assert storage._RECEIVING.each(tail, [number])

    def receiving_raw(_pk: int) -> None:
        rows = list(Account.objects.raw(RECEIVING_SQL, [number]))
        bool(rows[0].policy_requires_acceptance)

    variants = {
        "bare lock (raw baseline)": bare,
        "bundle lock, prepared (now)": lambda pk: storage.bundles_lock_for_move([pk], None),
        "bundle lock, sent anew": move_unprepared,
        "bundle lock, Model.objects.raw()": move_raw,
        "receiving account, prepared (now)": (
            lambda _pk: storage.account_lock_for_receiving(number=number)
        ),
        "receiving account, sent anew": receiving_unprepared,
        "receiving account, Model.objects.raw()": receiving_raw,
    }
    assert storage.bundles_lock_for_move([ids[0]], None)[ids[0]].account.number == number
    backend_ns = support.backend_cpu_ns()
    times: dict[str, list[float]] = {name: [] for name in variants}
    server: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds + 1):  # the first round warms up and is dropped
        for name, call in variants.items():
            with transaction.atomic():
                cpu = backend_ns()
                started = time.perf_counter()
                for pk in ids:
                    call(pk)
                times[name].append((time.perf_counter() - started) / len(ids) * 1e6)
                server[name].append((backend_ns() - cpu) / len(ids) / 1e3)
                transaction.set_rollback(True)
    base = statistics.median(times["bare lock (raw baseline)"][1:])
    base_cpu = statistics.median(server["bare lock (raw baseline)"][1:])
    print(f"{len(ids)} calls a round, median of {args.rounds} rounds, µs a call")
    for name, values in times.items():
        us, cpu = statistics.median(values[1:]), statistics.median(server[name][1:])
        line = f"  {name:40} {us:7.1f} µs ({us / base:4.1f}x the bare lock)"
        if base_cpu > 0:
            line += f", PostgreSQL CPU {cpu:6.1f} µs ({cpu / base_cpu:4.1f}x)"
        print(line)


if __name__ == "__main__":
    main()
