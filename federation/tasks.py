"""Thin Celery tasks: anchoring, replication and peer notifications.

Tasks import services, never the reverse: a service that starts work after its commit calls
a hook (anchoring.CHECKPOINT_ANCHORED_HOOKS, replication.MIRROR_NOTIFIED_HOOKS) that
`FederationConfig.ready()` fills with the `*_later` starters below. The registered task
names (`name=`) predate the `entity_action` function names and stay as they were: beat
schedules and queued messages refer to them.
"""

from celery import shared_task

from federation import anchoring, index_check, replication, transfers

_TASKS = "federation.tasks."


@shared_task(ignore_result=True)
def federation_anchor_task() -> int:
    """Periodic: make sure our latest checkpoint is being anchored; one job per witness."""
    anchoring.anchor_prepare()
    witnesses = anchoring.anchor_witness_ids()
    for peer_id in witnesses:
        federation_anchor_witness_task.delay(peer_id)
    return len(witnesses)


@shared_task(ignore_result=True)
def federation_anchor_witness_task(peer_id: int) -> str:
    return anchoring.anchor_witness(peer_id=peer_id)


@shared_task(ignore_result=True, name=_TASKS + "federation_notify_peers_task")
def federation_peers_notify_task(size: int) -> dict[str, str]:
    return anchoring.anchor_notify_peers(size=size)


@shared_task(ignore_result=True, name=_TASKS + "federation_replicate_task")
def federation_mirrors_replicate_task() -> int:
    """Periodic: one replication job per mirror peer that is due."""
    peers = replication.mirror_peer_ids()
    for peer_id in peers:
        federation_peer_replicate_task.delay(peer_id)
    return len(peers)


@shared_task(ignore_result=True, name=_TASKS + "federation_replicate_peer_task")
def federation_peer_replicate_task(peer_id: int) -> str:
    result = replication.peer_replicate(peer_id=peer_id)
    if result.outcome == "replicated":
        federation_mirror_index_check_task.delay(peer_id)
    return result.outcome


@shared_task(ignore_result=True, name=_TASKS + "federation_mirror_index_check_task")
def federation_mirror_index_check_task(peer_id: int) -> int | None:
    """Recompute a mirrored peer's subject map; flag the peer if a commitment is wrong."""
    return index_check.mirror_index_check(peer_id=peer_id).wrong_at


@shared_task(ignore_result=True, name=_TASKS + "federation_deliver_exports_task")
def federation_exports_deliver_task() -> int:
    """Periodic, and once a checkpoint is anchored: one delivery job per due export."""
    due = transfers.export_due_ids()
    for export_id in due:
        federation_export_deliver_task.delay(export_id)
    return len(due)


@shared_task(ignore_result=True, name=_TASKS + "federation_deliver_export_task")
def federation_export_deliver_task(export_id: int) -> str:
    return transfers.export_deliver(export_id=export_id, due_only=True)


# Starters registered into the services' hooks (FederationConfig.ready); each runs on commit.


def peers_notify_later(size: int) -> None:
    """anchoring.CHECKPOINT_ANCHORED_HOOKS: tell the peers our checkpoint is anchored."""
    federation_peers_notify_task.delay(size)


def exports_deliver_later(size: int) -> None:
    """anchoring.CHECKPOINT_ANCHORED_HOOKS: exports waiting for an anchor can go now."""
    federation_exports_deliver_task.delay()


def peer_replicate_later(peer_id: int) -> None:
    """replication.MIRROR_NOTIFIED_HOOKS: a mirrored peer has a new checkpoint."""
    federation_peer_replicate_task.delay(peer_id)
