"""Checkpoints: signed by the registry key, only when the tree grew, old ones kept."""

import io
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from ledger import selectors
from ledger.keys import development_signer, registry_signer
from ledger.merkle import EMPTY_ROOT, verify_consistency
from ledger.models import Checkpoint, TreeHead
from ledger.services import checkpoint_create
from ledger.signing import Signer, generate_private_key
from ledger.verify.note import verify_checkpoint
from tests.ledger.factories import append_events, integrate_all, ledger_with

ORIGIN = "registry.example.org/gridproof"


@pytest.mark.django_db
def test_a_checkpoint_signs_the_head_and_verifies():
    # given
    ledger_with(9)

    # when
    checkpoint, created = checkpoint_create()

    # then
    assert created
    head = TreeHead.objects.get()
    parsed, cosigners = verify_checkpoint(checkpoint.note, registry_signer().vkey)
    assert (parsed.origin, parsed.size, parsed.root) == (
        "gridproof.localhost/registry",
        9,
        bytes(head.root),
    )
    assert (checkpoint.size, bytes(checkpoint.root)) == (9, bytes(head.root))
    assert cosigners == []


@pytest.mark.django_db
def test_a_checkpoint_is_made_only_when_the_tree_grew_and_old_ones_stay():
    # given
    ledger_with(4)
    first, _ = checkpoint_create()

    # when
    same, created_again = checkpoint_create()
    append_events(3)
    integrate_all()
    second, created_later = checkpoint_create()

    # then
    assert (same.pk, created_again) == (first.pk, False)
    assert created_later and second.size == 7
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [7, 4]
    proof = selectors.ledger_consistency_proof(first=4, second=7).proof
    verify_consistency(4, 7, proof, bytes(first.root), bytes(second.root))


@pytest.mark.django_db
def test_the_empty_ledger_gets_a_checkpoint_of_size_zero():
    checkpoint, created = checkpoint_create()
    assert created and (checkpoint.size, bytes(checkpoint.root)) == (0, EMPTY_ROOT)


def test_the_development_key_is_deterministic_per_secret_and_origin():
    a = development_signer(origin=ORIGIN, secret_key="s1")
    assert a.vkey == development_signer(origin=ORIGIN, secret_key="s1").vkey
    assert a.vkey != development_signer(origin=ORIGIN, secret_key="s2").vkey
    assert a.name == ORIGIN


def test_a_configured_key_is_used_and_must_be_named_after_the_origin():
    skey, vkey = generate_private_key(ORIGIN)
    with override_settings(REGISTRY_SIGNING_KEY=skey, REGISTRY_ORIGIN=ORIGIN):
        assert registry_signer().vkey == vkey
    with (
        override_settings(REGISTRY_SIGNING_KEY=skey, REGISTRY_ORIGIN="other.example/log"),
        pytest.raises(ImproperlyConfigured, match="named"),
    ):
        registry_signer()
    with (
        override_settings(REGISTRY_SIGNING_KEY="", DEVELOPMENT=False),
        pytest.raises(ImproperlyConfigured),
    ):
        registry_signer()


@pytest.mark.django_db
def test_checkpoint_and_integrate_commands():
    # given
    append_events(5)
    out = io.StringIO()

    # when
    call_command("integrate", stdout=out)
    call_command("checkpoint", stdout=out, stderr=io.StringIO())

    # then
    assert "Integrated 5 event(s)" in out.getvalue()
    assert out.getvalue().endswith(Checkpoint.objects.get().note)


class TestGenerateSigningKey:
    def test_writes_a_private_file_named_after_the_origin(self, tmp_path):
        path = tmp_path / "keys" / "signing.key"
        with override_settings(REGISTRY_SIGNING_KEY_FILE=str(path), REGISTRY_ORIGIN=ORIGIN):
            call_command("generate_signing_key", stdout=io.StringIO())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert Signer.from_private_key(path.read_text()).name == ORIGIN

    def test_if_missing_keeps_the_key_and_plain_refuses_to_replace_it(self, tmp_path):
        path = tmp_path / "signing.key"
        with override_settings(REGISTRY_SIGNING_KEY_FILE=str(path), REGISTRY_SIGNING_KEY=""):
            call_command("generate_signing_key", "--if-missing", stdout=io.StringIO())
            key = path.read_text()
            call_command("generate_signing_key", "--if-missing", stdout=io.StringIO())
            assert path.read_text() == key
            with pytest.raises(CommandError, match="exists"):
                call_command("generate_signing_key", stdout=io.StringIO())
            call_command("generate_signing_key", "--force", stdout=io.StringIO())
            assert path.read_text() != key

    def test_print_writes_nothing(self, tmp_path):
        out = io.StringIO()
        with override_settings(REGISTRY_SIGNING_KEY_FILE=str(tmp_path / "k")):
            call_command(
                "generate_signing_key",
                "--print",
                "--name",
                "ci.example.org/registry",
                stdout=out,
                stderr=io.StringIO(),
            )
        assert Signer.from_private_key(out.getvalue()).name == "ci.example.org/registry"
        assert not (tmp_path / "k").exists()
