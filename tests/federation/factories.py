"""Federation test data. Rows made here skip the services on purpose (set-up only)."""

import factory
from django.db import transaction
from factory.django import DjangoModelFactory

from federation.models import MirrorHead, Peer, WitnessProgress
from ledger.models import Checkpoint, LedgerEntry, PendingEvent
from ledger.services import checkpoint_create, ledger_append, ledger_integrate
from tests.federation.fakes import FakeLog, FakeWitness


class PeerFactory(DjangoModelFactory):
    class Meta:
        model = Peer
        skip_postgeneration_save = True

    origin = factory.Sequence(lambda n: f"peer{n}.example/log")
    name = factory.LazyAttribute(lambda p: p.origin)
    base_url = "http://127.0.0.1:9"
    log_vkey = ""
    witness_vkey = ""

    @factory.post_generation
    def progress(obj, create, extracted, **kwargs) -> None:
        if create:
            WitnessProgress.objects.get_or_create(peer=obj)
            MirrorHead.objects.get_or_create(peer=obj)


def peer_for_log(log: FakeLog, **fields) -> Peer:
    """A registered peer whose checkpoints are signed by the fake log's key."""
    return PeerFactory(
        origin=log.origin,
        log_vkey=log.signer.vkey,
        witness_vkey=fields.pop("witness_vkey", log.signer.cosignature_vkey),
        **fields,
    )


def peer_for_witness(witness: FakeWitness, **fields) -> Peer:
    """A registered witness peer: its origin (the witness's key name), keys and URL."""
    return PeerFactory(
        origin=witness.signer.name,
        log_vkey=witness.signer.vkey,
        witness_vkey=witness.vkey,
        base_url=witness.url,
        is_witness=True,
        **fields,
    )


def ledger_grow(count: int) -> Checkpoint:
    """Append `count` events to our own ledger, integrate them and sign a checkpoint."""
    for i in range(count):
        with transaction.atomic():
            ledger_append(kind="test.appended", actor="system:test", subject=None, data={"i": i})
    while ledger_integrate():
        pass
    checkpoint, _created = checkpoint_create()
    return checkpoint


def ledger_event_count() -> int:
    return PendingEvent.objects.count() + LedgerEntry.objects.count()


def ledger_kinds() -> list[str]:
    pending = list(PendingEvent.objects.order_by("id").values_list("kind", flat=True))
    return list(LedgerEntry.objects.order_by("seq").values_list("kind", flat=True)) + pending
