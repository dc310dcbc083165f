"""Log key rotation: announced by an entry signed by the old key; each checkpoint signed by
the key current at its size; verify_ledger follows the history and names each misuse."""

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings

from ledger.errors import KeyRotationRefused, LedgerCorrupted, SigningKeyUnavailable
from ledger.integrity import LedgerTampered, ledger_verify
from ledger.keys import (
    log_key_for_note,
    log_key_history,
    registry_signer,
    registry_signer_configured,
)
from ledger.models import Checkpoint, LedgerEntry, PendingEvent, TreeHead
from ledger.rotation import log_key_rotate
from ledger.selectors import ledger_root
from ledger.services import checkpoint_create, ledger_append
from ledger.signing import Signer, sign_checkpoint
from ledger.verify.keyhistory import ROTATION_KIND, rotation_statement
from tests.ledger.factories import append_events, integrate_all, ledger_with


def new_signer(n: int = 1) -> Signer:
    return Signer(settings.REGISTRY_ORIGIN, bytes([n]) * 32)


def rotated(n: int = 1) -> tuple[Signer, Signer, int]:
    """A log of 3 entries, a checkpoint by the old key, and an announcement of key `n`
    integrated at seq 3; returns (old, new, seq of the announcement)."""
    ledger_with(3)
    checkpoint_create()
    old, new = registry_signer_configured(), new_signer(n)
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        log_key_rotate(actor="system:test")
    integrate_all()
    return old, new, 3


@pytest.mark.django_db
def test_rotation_switches_signing_at_the_announcement_and_verify_ledger_follows():
    # given
    old, new, seq = rotated()
    append_events(2)
    integrate_all()

    # when: a process that holds both keys signs the head
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        checkpoint, created = checkpoint_create()
        current = registry_signer()

    # then
    assert created and checkpoint.size == 6
    assert checkpoint.key_id == new.verifier.key_id.hex()
    assert Checkpoint.objects.get(size=3).key_id == old.verifier.key_id.hex()
    assert current.vkey == new.vkey
    entry = LedgerEntry.objects.get(seq=seq)
    assert entry.kind == ROTATION_KIND
    assert sorted(entry.subject_rows.values_list("key", flat=True)) == sorted(
        [f"log_key:{old.verifier.key_id.hex()}", f"log_key:{new.verifier.key_id.hex()}"]
    )
    history = log_key_history()
    assert [history.key_at(size) for size in (3, 4, 6)] == [old.verifier, *[new.verifier] * 2]
    report = ledger_verify()
    assert report.checkpoints == 2


@pytest.mark.django_db
def test_the_command_rotates_and_prints_the_first_checkpoint_of_the_new_key():
    ledger_with(2)
    new = new_signer()
    out, err = io.StringIO(), io.StringIO()
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        call_command("rotate_signing_key", stdout=out, stderr=err)
    assert list(Checkpoint.objects.order_by("size").values_list("size", "key_id")) == [
        (2, registry_signer_configured().verifier.key_id.hex()),
        (3, new.verifier.key_id.hex()),
    ]
    assert out.getvalue() == Checkpoint.objects.get(size=3).note
    assert "signed by key" in err.getvalue()


@pytest.mark.django_db
def test_a_process_without_the_new_key_signs_nothing_after_the_announcement():
    # given: the announcement is integrated; this process only has the old key
    rotated()
    append_events(1)
    integrate_all()

    # when / then
    with pytest.raises(SigningKeyUnavailable, match="size 5 must be signed by the log key"):
        checkpoint_create()
    assert not Checkpoint.objects.filter(size__gt=3).exists()


@pytest.mark.django_db
def test_rotation_without_a_staged_key_is_refused_and_changes_nothing():
    ledger_with(2)
    with pytest.raises(KeyRotationRefused, match="REGISTRY_NEXT_SIGNING_KEY is not set"):
        log_key_rotate(actor="system:test")
    assert not PendingEvent.objects.exists()
    assert not LedgerEntry.objects.filter(kind=ROTATION_KIND).exists()


@pytest.mark.django_db
def test_a_second_rotation_while_one_is_pending_is_refused():
    ledger_with(2)
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new_signer().private_key()):
        with transaction.atomic():
            log_key_rotate(actor="system:test")
            with pytest.raises(KeyRotationRefused, match="already waiting"):
                log_key_rotate(actor="system:test")
        assert PendingEvent.objects.filter(kind=ROTATION_KIND).count() <= 1


@pytest.mark.django_db
def test_a_retired_key_cannot_come_back():
    old, new, _ = rotated()
    # the operator moves REGISTRY_SIGNING_KEY to the new key and stages the old one again
    staged = override_settings(
        REGISTRY_SIGNING_KEY=new.private_key(), REGISTRY_NEXT_SIGNING_KEY=old.private_key()
    )
    with staged, pytest.raises(KeyRotationRefused, match="already signed this log"):
        log_key_rotate(actor="system:test")
    assert LedgerEntry.objects.filter(kind=ROTATION_KIND).count() == 1


# ---------------------------------------------------------------- bad input: verify_ledger


@pytest.mark.django_db
def test_verify_ledger_rejects_the_new_key_before_its_announcement():
    # given: the new key signed size 3, which does not contain its announcement (seq 3)
    ledger_with(3)
    new = new_signer()
    note = sign_checkpoint(new, settings.REGISTRY_ORIGIN, 3, ledger_root(size=3))
    Checkpoint.objects.create(
        origin=settings.REGISTRY_ORIGIN, size=3, root=ledger_root(size=3), note=note
    )
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        log_key_rotate(actor="system:test")
    integrate_all()

    # when / then
    with pytest.raises(LedgerTampered, match=r"size 3 is signed by key .* before its announcement"):
        ledger_verify()


@pytest.mark.django_db
def test_verify_ledger_rejects_the_old_key_after_the_rotation():
    old, _new, _ = rotated()
    append_events(1)
    integrate_all()
    Checkpoint.objects.create(
        origin=settings.REGISTRY_ORIGIN,
        size=5,
        root=ledger_root(size=5),
        note=sign_checkpoint(old, settings.REGISTRY_ORIGIN, 5, ledger_root(size=5)),
    )
    with pytest.raises(LedgerTampered, match=r"size 5 is signed by the retired key .* entry 3"):
        ledger_verify()


def _announce(data: dict) -> None:
    with transaction.atomic():
        ledger_append(kind=ROTATION_KIND, actor="system:test", subject=None, data=data)
    integrate_all()


@pytest.mark.django_db
def test_an_announcement_not_signed_by_the_old_key_is_rejected():
    # given: an entry announcing an attacker's key, the statement signed by that key itself
    ledger_with(2)
    old, attacker = registry_signer_configured(), new_signer(7)
    origin = settings.REGISTRY_ORIGIN
    _announce(
        {
            "origin": origin,
            "old_vkey": old.vkey,
            "new_vkey": attacker.vkey,
            "note": attacker.sign_note(rotation_statement(origin, old.vkey, attacker.vkey)),
        }
    )
    Checkpoint.objects.create(
        origin=origin,
        size=3,
        root=ledger_root(size=3),
        note=sign_checkpoint(attacker, origin, 3, ledger_root(size=3)),
    )

    # when / then
    with pytest.raises(LedgerTampered, match=r"entry 2: .*not signed by the old key"):
        ledger_verify()
    append_events(1)
    integrate_all()
    with pytest.raises(LedgerCorrupted, match="key history does not verify"):
        checkpoint_create()


@pytest.mark.django_db
def test_a_forged_announcement_for_another_old_key_or_statement_is_rejected():
    ledger_with(1)
    old, other, new = registry_signer_configured(), new_signer(8), new_signer(9)
    origin = settings.REGISTRY_ORIGIN
    # signed by the right key, but over the statement for another new key
    _announce(
        {
            "origin": origin,
            "old_vkey": old.vkey,
            "new_vkey": new.vkey,
            "note": old.sign_note(rotation_statement(origin, old.vkey, other.vkey)),
        }
    )
    Checkpoint.objects.create(
        origin=origin,
        size=2,
        root=ledger_root(size=2),
        note=sign_checkpoint(new, origin, 2, ledger_root(size=2)),
    )
    with pytest.raises(LedgerTampered, match="not the one for these keys"):
        ledger_verify()


@pytest.mark.django_db
def test_verify_ledger_from_a_pinned_first_key_rejects_a_history_starting_elsewhere():
    rotated()
    stranger = new_signer(5)
    assert TreeHead.objects.get().size == 4
    with pytest.raises(LedgerTampered, match=r"size 3 is not signed by the log key of that size"):
        ledger_verify(first_key=stranger.vkey)
    out = io.StringIO()
    with pytest.raises(CommandError, match="LEDGER VERIFICATION FAILED"):
        call_command("verify_ledger", "--no-progress", "--first-key", stranger.vkey, stdout=out)


@pytest.mark.django_db
def test_our_own_notes_are_checked_with_the_key_of_their_size():
    # what federation uses for our own receipts' hops and the mirrors' copies of our log
    old, new, _ = rotated()
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        after, _ = checkpoint_create()
    before = Checkpoint.objects.get(size=3)
    assert log_key_for_note(before.note) == old.verifier
    assert log_key_for_note(after.note) == new.verifier
    assert log_key_for_note("not a note") == registry_signer().verifier


@pytest.mark.django_db
def test_registry_first_vkey_pins_where_the_history_starts():
    old, new, _ = rotated()
    # the rotation is complete: the new key is REGISTRY_SIGNING_KEY, the first one pinned
    done = override_settings(REGISTRY_SIGNING_KEY=new.private_key(), REGISTRY_FIRST_VKEY=old.vkey)
    with done:
        append_events(1)
        integrate_all()
        checkpoint, created = checkpoint_create()
        assert created and checkpoint.key_id == new.verifier.key_id.hex()
        assert ledger_verify().checkpoints == 2
    with override_settings(REGISTRY_FIRST_VKEY=new_signer(6).vkey):
        with pytest.raises(LedgerTampered, match="size 3 is not signed by the log key"):
            ledger_verify()
        append_events(1)
        integrate_all()
        with pytest.raises(LedgerCorrupted, match="key history does not verify"):
            checkpoint_create()
    garbage = override_settings(REGISTRY_FIRST_VKEY="garbage")
    with garbage, pytest.raises(LedgerTampered, match="first log key does not parse"):
        ledger_verify()


@pytest.mark.django_db
def test_a_new_log_rotates_before_its_first_entry():
    # the subject audit's service test for ledger.key_rotated (it causes no other kind)
    new = new_signer(4)
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=new.private_key()):
        pending = log_key_rotate(actor="system:test")
        integrate_all()
        checkpoint, created = checkpoint_create()
    assert pending.subjects == [
        f"log_key:{registry_signer_configured().verifier.key_id.hex()}",
        f"log_key:{new.verifier.key_id.hex()}",
    ]
    assert created and (checkpoint.size, checkpoint.key_id) == (1, new.verifier.key_id.hex())
