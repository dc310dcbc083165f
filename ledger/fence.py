"""The signing fence: a registry running on a restored backup signs nothing until it is safe.

Restoring an older backup rewinds the log. Integrating new events would then give sizes
the registry has already published other roots for, and signing them is equivocation,
which witnesses rightly treat as misbehaviour. So the `SigningFence` row records which
database signing is allowed from; a backup carries the row with the identity of the
database it was taken from, and on the restored database the two differ:

- the cluster's system identifier changes with a new cluster (`initdb`, a `pg_dump`
  restored on another server);
- the database's OID changes when a dump is restored into a new database on the same
  cluster;
- the timeline changes with a point-in-time recovery or a promoted standby.

While they differ `checkpoint_create` refuses (`signing_fenced`); events are still
integrated, proofs still served. `manage.py ledger_reconcile` asks the peers that mirror
this log for the newest checkpoint they hold of it and lifts the fence when every copy
is consistent with the local log (docs/operations.md, "Backup and restore").

SQLite and other databases have no fence (`database_identity` is None).
"""

from django.db import connection as default_connection
from django.db import transaction
from django.utils import timezone

from ledger.errors import SigningFenced
from ledger.models import SigningFence


def database_identity(connection=None) -> str | None:
    """'pg:<system identifier>:<database oid>:<timeline>', or None without a fence."""
    connection = connection or default_connection
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT system_identifier FROM pg_control_system()), "
            "(SELECT oid FROM pg_database WHERE datname = current_database()), "
            "(SELECT timeline_id FROM pg_control_checkpoint())"
        )
        system, oid, timeline = cursor.fetchone()
    return f"pg:{system}:{oid}:{timeline}"


def fence_check() -> None:
    """Raise SigningFenced unless this database may sign (inside the signing transaction).

    No row yet (a new database): this database is recorded as the one that signs.
    """
    identity = database_identity()
    if identity is None:
        return
    fence = SigningFence.objects.select_for_update().filter(pk=1).first()
    if fence is None:
        SigningFence.objects.create(
            pk=1, database=identity, reason="the first checkpoint signed from this database"
        )
        return
    if fence.database != identity:
        raise SigningFenced(recorded=fence.database, current=identity)


def fence_state() -> dict[str, str | bool | None]:
    """For /readyz, the status page and the reconcile command."""
    identity = database_identity()
    if identity is None:
        return {"fenced": False, "recorded": None, "current": None}
    fence = SigningFence.objects.filter(pk=1).first()
    recorded = fence.database if fence else None
    return {
        "fenced": identity is not None and recorded is not None and recorded != identity,
        "recorded": recorded,
        "current": identity,
    }


@transaction.atomic
def fence_lift(*, reason: str) -> SigningFence:
    """Allow signing from this database from now on; `reason` says who checked what."""
    identity = database_identity() or "none"
    fence, _ = SigningFence.objects.select_for_update().get_or_create(
        pk=1, defaults={"database": identity}
    )
    fence.database = identity
    fence.recorded_at = timezone.now()
    fence.reason = reason
    fence.save()
    return fence
