"""The offline verifier follows the log's key history (GET /api/v1/ledger/keys/) from the key
the auditor trusts, and rejects each misuse of a rotated key with a clear message."""

import base64
import copy
import io
import json

import pytest
from django.conf import settings
from django.test import override_settings

from ledger.keys import registry_signer_configured
from ledger.models import Checkpoint
from ledger.rotation import log_key_rotate
from ledger.selectors import ledger_root
from ledger.services import checkpoint_create
from ledger.signing import Signer, sign_checkpoint
from ledger.verify import __main__ as cli
from ledger.verify.checks import Trust, VerificationFailed, check_checkpoint, check_key_history
from ledger.verify.keyhistory import rotation_statement
from tests.ledger.factories import append_events, integrate_all, ledger_with

NEW = Signer(settings.REGISTRY_ORIGIN, b"\x01" * 32)


def rotate_and_sign(client) -> tuple[Signer, dict]:
    """Entries 0-2, checkpoint 3 (old key), announcement at seq 3, entries 4-5, checkpoint 6
    (new key); returns the old signer and the key history document."""
    ledger_with(3)
    checkpoint_create()
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=NEW.private_key()):
        log_key_rotate(actor="system:test")
        integrate_all()
        append_events(2)
        integrate_all()
        checkpoint_create()
    doc = client.get("/api/v1/ledger/keys/").json()
    return registry_signer_configured(), doc


@pytest.mark.django_db
def test_the_key_history_endpoint_proves_each_announcement(client):
    old, doc = rotate_and_sign(client)
    assert doc["first_vkey"] == old.vkey and doc["current_vkey"] == NEW.vkey
    assert doc["size"] == 6 and [r["seq"] for r in doc["rotations"]] == [3]
    latest = client.get("/api/v1/ledger/checkpoints/latest/").json()
    assert latest["key_id"] == NEW.verifier.key_id.hex()
    assert client.get("/api/v1/ledger/checkpoints/3/").json()["key_id"] == (
        old.verifier.key_id.hex()
    )

    # when: the auditor trusts the first key only
    trust = check_key_history(doc, Trust.from_strings(old.vkey))

    # then: both checkpoints verify, each under its key
    assert check_checkpoint(doc["checkpoint"], trust).checkpoint.size == 6
    assert check_checkpoint(Checkpoint.objects.get(size=3).note, trust).checkpoint.size == 3
    # without the history the new key's checkpoint fails, with a hint
    with pytest.raises(VerificationFailed, match="if the log rotated its key"):
        check_checkpoint(doc["checkpoint"], Trust.from_strings(old.vkey))


@pytest.mark.django_db
def test_a_checkpoint_by_the_new_key_before_its_announcement_is_rejected(client):
    old, doc = rotate_and_sign(client)
    trust = check_key_history(doc, Trust.from_strings(old.vkey))
    early = sign_checkpoint(NEW, settings.REGISTRY_ORIGIN, 3, ledger_root(size=3))
    with pytest.raises(VerificationFailed, match=r"size 3 is signed by key .* before its announ"):
        check_checkpoint(early, trust)


@pytest.mark.django_db
def test_the_old_key_after_the_rotation_is_rejected(client):
    old, doc = rotate_and_sign(client)
    trust = check_key_history(doc, Trust.from_strings(old.vkey))
    late = sign_checkpoint(old, settings.REGISTRY_ORIGIN, 6, ledger_root(size=6))
    with pytest.raises(VerificationFailed, match=r"size 6 is signed by the retired key"):
        check_checkpoint(late, trust)
    # a key history whose checkpoint the old key signed after the rotation is refused too
    forged = copy.deepcopy(doc) | {"checkpoint": late}
    with pytest.raises(VerificationFailed, match="retired key"):
        check_key_history(forged, Trust.from_strings(old.vkey))


def _reannounce(doc: dict, data: dict) -> dict:
    """The document with the announcement's event bytes replaced by a forged one."""
    forged = copy.deepcopy(doc)
    event = json.loads(base64.b64decode(forged["rotations"][0]["event_b64"]))
    event["data"] |= data
    raw = json.dumps(event, separators=(",", ":")).encode()
    forged["rotations"][0]["event_b64"] = base64.b64encode(raw).decode()
    return forged


@pytest.mark.django_db
def test_a_forged_announcement_is_rejected(client):
    old, doc = rotate_and_sign(client)
    origin = settings.REGISTRY_ORIGIN
    attacker = Signer(origin, b"\x09" * 32)
    trust = Trust.from_strings(old.vkey)

    # signed by the new key itself, not the old one
    self_signed = attacker.sign_note(rotation_statement(origin, old.vkey, attacker.vkey))
    forged = _reannounce(doc, {"new_vkey": attacker.vkey, "note": self_signed})
    with pytest.raises(VerificationFailed, match="not signed by the old key"):
        check_key_history(forged, trust)

    # a genuine statement for another key
    forged = _reannounce(doc, {"new_vkey": attacker.vkey})
    with pytest.raises(VerificationFailed, match="not the one for these keys"):
        check_key_history(forged, trust)

    # an announcement that is not in the log: its bytes are not the entry the proof is for
    genuine = old.sign_note(rotation_statement(origin, old.vkey, attacker.vkey))
    forged = _reannounce(doc, {"new_vkey": attacker.vkey, "note": genuine})
    forged["checkpoint"] = sign_checkpoint(attacker, origin, 6, ledger_root(size=6))
    with pytest.raises(VerificationFailed, match="inclusion of entry 3"):
        check_key_history(forged, trust)


@pytest.mark.django_db(transaction=True)
def test_the_cli_follows_a_rotation_from_the_first_key(live_server, tmp_path):
    # given: a rotated log
    ledger_with(3)
    checkpoint_create()
    old = registry_signer_configured()
    with override_settings(REGISTRY_NEXT_SIGNING_KEY=NEW.private_key()):
        log_key_rotate(actor="system:test")
        integrate_all()
        checkpoint_create()

        # when: the auditor still trusts only the first key
        out = io.StringIO()
        status = cli.main(["checkpoint", "--url", live_server.url, "--key", old.vkey], out=out)
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps(cli.fetch_json(live_server.url + cli.KEYS_PATH, cli.Net())))
        note = tmp_path / "cp.note"
        note.write_text(Checkpoint.objects.get(size=4).note)
        offline = io.StringIO()
        args = ["checkpoint", "--file", str(note), "--key", old.vkey, "--keys", str(keys)]
        offline_status = cli.main(args, out=offline)
        bare = io.StringIO()
        bare_status = cli.main(["checkpoint", "--file", str(note), "--key", old.vkey], out=bare)

    # then
    new_id = NEW.verifier.key_id.hex()
    assert status == cli.EXIT_OK, out.getvalue()
    assert "size 4 root" in out.getvalue() and f"+{new_id}" in out.getvalue()
    assert offline_status == cli.EXIT_OK and f"+{new_id}" in offline.getvalue()
    assert bare_status == cli.EXIT_FAILED and "key history" in bare.getvalue()
