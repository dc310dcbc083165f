"""A restored backup takes back the tail it lost from a peer's mirror: the entries as they
were signed, and the tables rebuilt from them (federation/recovery.py, ledger/recovery.py,
certificates/recovery.py). A real pg_dump, a real pg_restore into a new database."""

import io
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from certificates import services
from certificates.models import Bundle, Transfer
from certificates.replay import replay_ledger
from federation.reconcile import ledger_reconcile
from federation.recovery import ledger_tail_recover_from
from ledger.errors import TailRecoveryRefused
from ledger.fence import fence_state
from ledger.keys import log_key_history, registry_signer
from ledger.models import Checkpoint, LedgerEntry
from ledger.rotation import log_key_rotate
from ledger.selectors import ledger_root, ledger_tree_size
from ledger.services import checkpoint_create, ledger_integrate_pending
from ledger.signing import Signer, sign_checkpoint
from tests.certificates.conftest import ib_user, issued, plant, snapshot  # noqa: F401
from tests.certificates.test_retirement import CLAIM
from tests.conftest import requires_postgres
from tests.federation.factories import PeerFactory
from tests.federation.fakes import FakeMirror, make_signer
from tests.ledger.test_fence import _pg, on_database

pytestmark = [requires_postgres, pytest.mark.subject_index]


NEXT_KEY = Signer(settings.REGISTRY_ORIGIN, bytes([42]) * 32)


def _tables() -> dict:
    """The certificate rows a transfer writes, every column, and the log's size."""
    return {
        "bundles": list(Bundle.objects.order_by("pk").values_list()),
        "transfers": list(Transfer.objects.order_by("pk").values_list()),
        "base": snapshot(),
    }


def _assert_tables(now: dict, before: dict) -> None:
    assert now.keys() == before.keys()
    for name in now:
        assert len(now[name]) == len(before[name]), name
        for row, old in zip(now[name], before[name], strict=True):
            assert row == old, name


def _entries(end: int) -> list[bytes]:
    rows = LedgerEntry.objects.filter(seq__lt=end).order_by("seq").values_list("event", flat=True)
    return [bytes(e) for e in rows]


def _checkpoint() -> Checkpoint:
    ledger_integrate_pending()
    return checkpoint_create()[0]


@pytest.fixture
def lost(request, issued, tmp_path):  # noqa: F811 (the certificates' fixture)
    """Issued certificates, one transfer and a checkpoint; a pg_dump; then the tail: a
    split transfer, a batch, a pending transfer the buyer accepts, another it has not yet
    answered, and a checkpoint a peer mirrored. The dump restored into a new database."""
    services.certificate_transfer(
        actor=issued.producer, bundle_id=issued.bundles[0].pk, to_account_id=issued.buyer_account.pk
    )
    dumped = _checkpoint()
    dump = tmp_path / "registry.dump"
    source = connection.settings_dict["NAME"]
    connection.close()
    _pg("pg_dump", "-Fc", "-f", str(dump), "-d", source)
    # the tail
    services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[3].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=100,
    )
    services.certificate_transfer_batch(
        actor=issued.producer,
        items=[(issued.bundles[4].pk, None), (issued.bundles[5].pk, 50)],
        to_account_id=issued.own_second_account.pk,
    )
    pending = services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[6].pk,
        to_account_id=issued.buyer_account.pk,
        volume_wh=10,
        require_acceptance=True,
    )
    services.certificate_transfer_accept(actor=issued.buyer, transfer_id=pending.pk)
    services.certificate_transfer(
        actor=issued.producer,
        bundle_id=issued.bundles[7].pk,
        to_account_id=issued.buyer_account.pk,
        require_acceptance=True,
    )
    variant = getattr(request, "param", None)
    if variant == "retire":
        items = [(issued.bundles[9].pk, 5)]
        services.certificate_retire(actor=issued.producer, items=items, **CLAIM)
    if variant == "rotate":
        with override_settings(REGISTRY_NEXT_SIGNING_KEY=NEXT_KEY.private_key()):
            log_key_rotate(actor="system:test")
            services.certificate_transfer(
                actor=issued.producer,
                bundle_id=issued.bundles[9].pk,
                to_account_id=issued.buyer_account.pk,
            )
            mirrored = _checkpoint()
    else:
        mirrored = _checkpoint()
    state = SimpleNamespace(
        plant=issued,
        dumped=dumped,
        mirrored=mirrored,
        entries=_entries(mirrored.size),
        tables=_tables(),
    )
    target = f"{source}_restored_{uuid.uuid4().hex[:6]}"
    _pg("createdb", target)
    _pg("pg_restore", "--exit-on-error", "-d", target, str(dump))
    try:
        with on_database(target):
            yield state
    finally:
        _pg("dropdb", "--force", target)


def _peer(note: str | None, entries: list[bytes]) -> tuple[FakeMirror, object]:
    mirror = FakeMirror(settings.REGISTRY_ORIGIN, note, entries).start()
    return mirror, PeerFactory(base_url=mirror.url)


@pytest.mark.django_db(transaction=True)
def test_the_lost_tail_comes_back_from_a_peer_mirror_with_the_tables(lost):
    # given: the restored database lacks the tail, and signing is fenced
    assert ledger_tree_size() == lost.dumped.size < lost.mirrored.size
    assert _tables() != lost.tables
    assert fence_state()["fenced"]
    mirror, peer = _peer(lost.mirrored.note, lost.entries)
    try:
        assert ledger_reconcile().missing == (lost.dumped.size, lost.mirrored.size)
        # when
        out = io.StringIO()
        call_command("recover_tail", "--peer", peer.origin, stdout=out)
        # then: the entries are back byte for byte, the tables as before the loss
        assert f"Recovered entries [{lost.dumped.size}, {lost.mirrored.size})" in out.getvalue()
        assert _entries(lost.mirrored.size) == lost.entries
        assert ledger_root(size=lost.mirrored.size) == bytes(lost.mirrored.root)
        _assert_tables(_tables(), lost.tables)
        assert replay_ledger().ok
        verified = io.StringIO()
        call_command("verify_ledger", "--no-progress", stdout=verified, stderr=io.StringIO())
        assert "Subject map:" in verified.getvalue()
        call_command("replay_ledger", stdout=io.StringIO(), stderr=io.StringIO())
        # the peer now confirms the log, signing resumes, and the next checkpoint extends
        # the one the peer holds
        assert ledger_reconcile().lifted
        plant = lost.plant
        transfer = services.certificate_transfer(
            actor=plant.producer,
            bundle_id=plant.bundles[8].pk,
            to_account_id=plant.buyer_account.pk,
        )
        assert transfer.pk > max(t for t, _ in lost.tables["base"]["transfers"])
        nxt = _checkpoint()
        assert nxt.size > lost.mirrored.size
        assert ledger_root(size=lost.mirrored.size) == bytes(lost.mirrored.root)
        assert replay_ledger().ok
        # a second run has nothing to do
        again = ledger_tail_recover_from(peer)
        assert again.recovered is None
    finally:
        mirror.stop()


def _refused(peer, match: str) -> None:
    before = (snapshot(), ledger_tree_size())
    with pytest.raises(TailRecoveryRefused, match=match):
        ledger_tail_recover_from(peer)
    assert (snapshot(), ledger_tree_size()) == before


@pytest.mark.django_db(transaction=True)
def test_recovery_refuses_what_our_signature_does_not_cover(lost):
    size = lost.mirrored.size
    # a checkpoint some other key signed under our origin
    other = make_signer(settings.REGISTRY_ORIGIN, 99)
    forged = sign_checkpoint(other, settings.REGISTRY_ORIGIN, size, bytes(lost.mirrored.root))
    # entries changed after we signed them
    doctored = list(lost.entries)
    doctored[-2] = doctored[-2].replace(b'"volume_wh":', b'"volume_wh": ', 1)
    # a checkpoint of ours over entries the mirror does not hold
    ours = sign_checkpoint(registry_signer(), settings.REGISTRY_ORIGIN, size, b"\x05" * 32)
    cases = [
        (forged, lost.entries, "not signed by this log's key"),
        (lost.mirrored.note, doctored, "do not give the signed root"),
        (ours, lost.entries, "do not give the signed root"),
        (None, [], "holds no copy"),
    ]
    for note, entries, match in cases:
        mirror, peer = _peer(note, entries)
        try:
            _refused(peer, match)
        finally:
            mirror.stop()
    # a key this process holds, which the log never announced
    unannounced = sign_checkpoint(NEXT_KEY, settings.REGISTRY_ORIGIN, size, lost.mirrored.root)
    mirror, peer = _peer(unannounced, lost.entries)
    try:
        with override_settings(REGISTRY_NEXT_SIGNING_KEY=NEXT_KEY.private_key()):
            _refused(peer, "not by the key this log's history names")
    finally:
        mirror.stop()
    assert fence_state()["fenced"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lost", ["retire"], indirect=True)
def test_a_tail_with_a_retirement_is_refused_naming_it(lost):
    # given: the tail retires certificates; the ledger holds only the claim's commitment,
    # so the retirement's names cannot be rebuilt from it
    retired = next(
        seq for seq, event in enumerate(lost.entries) if b'"type":"certificate.retired"' in event
    )
    assert retired >= lost.dumped.size
    mirror, peer = _peer(lost.mirrored.note, lost.entries)
    try:
        # when / then
        before = (snapshot(), ledger_tree_size())
        with pytest.raises(CommandError, match=rf"Entry {retired} is a certificate.retired"):
            call_command("recover_tail", "--peer", peer.base_url, stdout=io.StringIO())
        assert (snapshot(), ledger_tree_size()) == before
    finally:
        mirror.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lost", ["rotate"], indirect=True)
def test_a_tail_that_rotates_the_log_key_is_recovered_under_the_new_key(lost):
    # given: the tail announces a new log key; the mirrored checkpoint is signed by it,
    # which the restored log's own history does not know yet
    assert log_key_history().key_at(lost.mirrored.size) != NEXT_KEY.verifier
    mirror, peer = _peer(lost.mirrored.note, lost.entries)
    try:
        with override_settings(REGISTRY_NEXT_SIGNING_KEY=NEXT_KEY.private_key()):
            # when
            recovery = ledger_tail_recover_from(peer)
            # then
            assert recovery.recovered.kinds["ledger.key_rotated"] == 1
            assert log_key_history().key_at(lost.mirrored.size) == NEXT_KEY.verifier
            _assert_tables(_tables(), lost.tables)
            assert ledger_reconcile().lifted
            assert _checkpoint().key_id == NEXT_KEY.verifier.key_id.hex()
    finally:
        mirror.stop()
