"""Thin Celery tasks: anchoring, replication and peer notifications."""

from celery import shared_task

from federation import anchoring, replication, transfers


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


@shared_task(ignore_result=True)
def federation_notify_peers_task(size: int) -> dict[str, str]:
    return anchoring.anchor_notify_peers(size=size)


@shared_task(ignore_result=True)
def federation_replicate_task() -> int:
    """Periodic: one replication job per mirror peer that is due."""
    peers = replication.mirror_peer_ids()
    for peer_id in peers:
        federation_replicate_peer_task.delay(peer_id)
    return len(peers)


@shared_task(ignore_result=True)
def federation_replicate_peer_task(peer_id: int) -> str:
    return replication.replicate_peer(peer_id=peer_id).outcome


@shared_task(ignore_result=True)
def federation_deliver_exports_task() -> int:
    """Periodic, and once a checkpoint is anchored: one delivery job per due export."""
    due = transfers.due_export_ids()
    for export_id in due:
        federation_deliver_export_task.delay(export_id)
    return len(due)


@shared_task(ignore_result=True)
def federation_deliver_export_task(export_id: int) -> str:
    return transfers.deliver_export(export_id=export_id, due_only=True)
