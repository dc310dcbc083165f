"""A registry running on a restored backup signs no checkpoint until its peers' copies of
the log confirm nothing it published is lost (ledger/fence.py, federation/reconcile.py)."""

import io
import os
import subprocess
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from federation.reconcile import ledger_reconcile
from ledger import fence
from ledger.errors import SigningFenced
from ledger.keys import registry_signer
from ledger.models import Checkpoint, SigningFence
from ledger.selectors import ledger_root, ledger_tree_size
from ledger.services import checkpoint_create, ledger_append, ledger_integrate
from ledger.signing import sign_checkpoint
from tests.conftest import requires_postgres
from tests.federation.factories import PeerFactory
from tests.federation.fakes import FakeMirror, make_signer

pytestmark = requires_postgres


def _events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            ledger_append(kind="test.event", actor=None, subject=None, data={"i": i})
    ledger_integrate()


@pytest.mark.django_db
def test_the_database_that_signs_is_recorded_and_may_sign_again():
    # given
    _events(3)
    # when
    checkpoint, created = checkpoint_create()
    _events(1)
    again, created_again = checkpoint_create()
    # then
    assert created and created_again and again.size == checkpoint.size + 1
    assert SigningFence.objects.get().database == fence.database_identity()
    assert fence.fence_state()["fenced"] is False


@pytest.mark.django_db
def test_another_database_identity_refuses_to_sign_but_still_integrates():
    # given: the fence names another database (what a restored dump carries)
    _events(2)
    checkpoint_create()
    SigningFence.objects.filter(pk=1).update(database="pg:1:2:1")
    _events(2)
    before = Checkpoint.objects.count()
    # when / then
    with pytest.raises(SigningFenced) as refused:
        checkpoint_create()
    assert refused.value.status == 409
    assert refused.value.extra == {"recorded": "pg:1:2:1", "current": fence.database_identity()}
    assert Checkpoint.objects.count() == before
    assert ledger_tree_size() == 4  # integration goes on; only signing waits


# --- a real dump, a real restore, and peers that mirrored the log ------------------------


def _pg(*args: str, **env: str) -> None:
    db = connection.settings_dict
    subprocess.run(
        [*args, "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"]],
        check=True,
        capture_output=True,
        env=os.environ | env,
        timeout=120,
    )


@contextmanager
def on_database(name: str):
    """Django's default connection uses database `name` inside the block."""
    db = connection.settings_dict
    own = db["NAME"]
    connection.close()
    db["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        db["NAME"] = own


@pytest.fixture
def restored(tmp_path):
    """The test database dumped with pg_dump after 5 entries and a checkpoint, restored
    into a new database with pg_restore, then 2 more events there."""
    _events(5)
    published, _ = checkpoint_create()
    dump = tmp_path / "registry.dump"
    source = connection.settings_dict["NAME"]
    connection.close()
    _pg("pg_dump", "-Fc", "-f", str(dump), "-d", source)
    target = f"{source}_restored_{uuid.uuid4().hex[:6]}"
    _pg("createdb", target)
    _pg("pg_restore", "--exit-on-error", "-d", target, str(dump))
    try:
        with on_database(target):
            _events(2)
            yield published
    finally:
        _pg("dropdb", "--force", target)


def _mirror_holding(note: str | None) -> FakeMirror:
    mirror = FakeMirror(settings.REGISTRY_ORIGIN, note).start()
    PeerFactory(base_url=mirror.url)
    return mirror


@pytest.mark.django_db(transaction=True)
def test_a_restored_dump_signs_nothing_until_a_mirror_confirms_the_log(restored):
    # given: on the restored database
    assert fence.fence_state()["fenced"] is True
    with pytest.raises(SigningFenced):
        checkpoint_create()
    # a peer mirrored the log up to the checkpoint published before the dump, another
    # does not mirror it
    mirrors = [_mirror_holding(restored.note), _mirror_holding(None)]
    try:
        # when
        report = ledger_reconcile()
    finally:
        for mirror in mirrors:
            mirror.stop()
    # then
    assert [p.status for p in report.peers] == ["consistent", "not_mirroring"]
    assert report.lifted and report.missing is None
    checkpoint, created = checkpoint_create()
    assert created and checkpoint.size == restored.size + 2
    assert fence.fence_state()["fenced"] is False


@pytest.mark.django_db(transaction=True)
def test_a_restore_that_lost_published_entries_stays_fenced(restored):
    # given: before the loss the registry had published size 9, which a peer mirrored
    signer = registry_signer()
    later = sign_checkpoint(signer, settings.REGISTRY_ORIGIN, 9, b"\x01" * 32)
    mirror = _mirror_holding(later)
    try:
        # when
        report = ledger_reconcile()
        out = io.StringIO()
        with pytest.raises(CommandError, match=r"ENTRIES LOST.*\[7, 9\)"):
            call_command("ledger_reconcile", stdout=out)
    finally:
        mirror.stop()
    # then
    assert [p.status for p in report.peers] == ["ahead"]
    assert report.missing == (7, 9) and not report.lifted
    with pytest.raises(SigningFenced):
        checkpoint_create()


@pytest.mark.django_db(transaction=True)
def test_a_restore_contradicting_a_published_checkpoint_stays_fenced(restored):
    # given: a checkpoint of size 6 with another root than the restored log's
    assert ledger_root(size=6) != b"\x02" * 32
    forged_by_us = sign_checkpoint(registry_signer(), settings.REGISTRY_ORIGIN, 6, b"\x02" * 32)
    mirror = _mirror_holding(forged_by_us)
    try:
        report = ledger_reconcile()
    finally:
        mirror.stop()
    assert [p.status for p in report.peers] == ["diverged"] and not report.lifted
    with pytest.raises(SigningFenced):
        checkpoint_create()


@pytest.mark.django_db(transaction=True)
def test_a_note_not_signed_by_this_log_proves_nothing(restored):
    # given: a mirror serving a note signed by some other key under our origin
    other = make_signer(settings.REGISTRY_ORIGIN, 99)
    mirror = _mirror_holding(sign_checkpoint(other, settings.REGISTRY_ORIGIN, 50, b"\x03" * 32))
    try:
        report = ledger_reconcile()
    finally:
        mirror.stop()
    # then: neither confirmed nor ahead; without a confirmation the fence stays
    assert [p.status for p in report.peers] == ["invalid"]
    assert not report.lifted
    with pytest.raises(SigningFenced):
        checkpoint_create()
    # unless the operator states that no peer mirrors the log
    assert ledger_reconcile(without_peers=True).lifted
    assert checkpoint_create()[1]
