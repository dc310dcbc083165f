"""Anchoring our checkpoints with fake witnesses served on 127.0.0.1 (stdlib http.server)."""

import datetime as dt

import pytest
from django.utils import timezone

from federation import anchoring
from federation.anchoring import anchor_all, anchor_witness
from federation.client import PeerResponse
from federation.models import Anchor, Cosignature, WitnessProgress
from federation.selectors import anchoring_delays
from ledger.keys import registry_signer
from ledger.verify.__main__ import main as verify_main
from ledger.verify.note import verify_checkpoint
from tests.federation.factories import ledger_event_count, ledger_grow, peer_for_witness
from tests.federation.fakes import FakeWitness

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast(settings):
    settings.ANCHOR_QUORUM = 2
    settings.FEDERATION_HTTP_TIMEOUT_SECONDS = 2.0
    settings.FEDERATION_RETRY_BASE_SECONDS = 30.0


@pytest.fixture
def witnesses():
    our_key = registry_signer().vkey
    started = [
        FakeWitness("witness-one.example", 11, our_key).start(),
        FakeWitness("witness-two.example", 12, our_key).start(),
    ]
    yield started
    for witness in started:
        witness.stop()


@pytest.fixture
def peers(witnesses):
    return [peer_for_witness(witness) for witness in witnesses]


def due_now() -> None:
    """As if the back-off had passed."""
    WitnessProgress.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def anchored_note(client) -> str:
    response = client.get("/api/v1/federation/checkpoint/anchored")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_two_witnesses_reach_the_quorum(client, witnesses, peers, tmp_path):
    # given a checkpoint of size 5 and two witnesses, quorum 2
    ledger_grow(5)
    before = ledger_event_count()

    # when anchoring runs
    outcomes = anchor_all()

    # then both cosigned and the checkpoint is anchored
    assert sorted(outcomes.values()) == ["anchored", "cosigned"]
    anchor = Anchor.objects.get(size=5)
    assert anchor.anchored_at is not None
    assert Cosignature.objects.filter(anchor=anchor).count() == 2
    # the served note verifies with both witness keys and quorum 2
    note = anchored_note(client)
    checkpoint, cosigners = verify_checkpoint(
        note, registry_signer().vkey, [w.vkey for w in witnesses], quorum=2
    )
    assert checkpoint.size == 5
    assert sorted(cosigners) == ["witness-one.example", "witness-two.example"]
    # and so does the offline verifier
    path = tmp_path / "anchored.note"
    path.write_text(note)
    args = ["checkpoint", "--key", registry_signer().vkey, "--quorum", "2", "--file", str(path)]
    for witness in witnesses:
        args += ["--witness-key", witness.vkey]
    assert verify_main(args) == 0
    # anchoring is bookkeeping, not a ledger event
    assert ledger_event_count() == before
    stats = anchoring_delays()
    assert (stats.count, stats.pending) == (1, 0)
    assert stats.median is not None and stats.median >= 0


def test_anchored_checkpoint_as_json(client, witnesses, peers):
    ledger_grow(3)
    anchor_all()

    response = client.get("/api/v1/federation/checkpoint/anchored?format=json")

    assert response.status_code == 200
    body = response.json()
    assert body["size"] == 3
    assert body["quorum"] == 2
    assert sorted(c["witness"] for c in body["cosignatures"]) == [
        "witness-one.example",
        "witness-two.example",
    ]
    assert body["note"].count("\u2014 ") == 3
    assert body["anchoring_delay"]["count"] == 1


def test_nothing_anchored_is_404_in_json(client):
    response = client.get("/api/v1/federation/checkpoint/anchored")
    assert response.status_code == 404
    assert response.json()["code"] == "anchored_checkpoint_not_found"


def test_witness_down_retries_with_backoff_and_nothing_is_lost(client, witnesses, peers):
    one, two = witnesses
    _, peer_two = peers
    # given witness two is down
    two.down = True
    ledger_grow(5)

    # when anchoring runs
    outcomes = anchor_all()

    # then one cosigned, two failed and backs off; the checkpoint is not anchored
    assert outcomes == {"witness-one.example": "cosigned", "witness-two.example": "failed"}
    progress = WitnessProgress.objects.get(peer=peer_two)
    assert progress.attempts == 1
    assert progress.next_attempt_at > timezone.now()
    assert progress.claimed_until is None
    assert "HTTP 503" in progress.last_error
    assert Anchor.objects.get(size=5).anchored_at is None
    assert anchoring_delays().pending == 1

    # when anchoring runs again before the back-off has passed, nothing is sent
    requests = two.requests
    assert anchor_all() == {"witness-one.example": "skipped", "witness-two.example": "skipped"}
    assert two.requests == requests

    # when it fails again, the back-off grows
    due_now()
    anchor_all()
    progress.refresh_from_db()
    assert progress.attempts == 2

    # when the log grows and the witness comes back
    ledger_grow(3)
    two.down = False
    due_now()
    outcomes = anchor_all()

    # then the latest checkpoint is anchored by both; the first cosignature is kept
    assert outcomes["witness-two.example"] in {"anchored", "cosigned"}
    assert Anchor.objects.get(size=8).anchored_at is not None
    assert Cosignature.objects.filter(anchor__size=5).count() == 1
    assert Cosignature.objects.filter(anchor__size=8).count() == 2
    progress.refresh_from_db()
    assert (progress.attempts, progress.size, progress.last_error) == (0, 8, "")
    assert one.size == 8 and two.size == 8
    # the checkpoint of size 5 counts as anchored by its successor
    stats = anchoring_delays()
    assert (stats.count, stats.pending) == (2, 0)
    assert (
        verify_checkpoint(
            anchored_note(client), registry_signer().vkey, [w.vkey for w in witnesses], quorum=2
        )[0].size
        == 8
    )


def test_size_hint_is_followed(witnesses, peers):
    one, _ = witnesses
    peer_one, _ = peers
    # given witness one already cosigned our size 4, but we do not know it
    ledger_grow(4)
    anchor_all()
    WitnessProgress.objects.filter(peer=peer_one).update(size=0)
    ledger_grow(3)
    anchoring.anchor_prepare()

    # when we send size 7 with old 0
    outcome = anchor_witness(peer_id=peer_one.pk)

    # then its 409 names size 4 and the request is repeated with a proof from 4
    assert outcome in {"cosigned", "anchored"}
    assert one.size == 7
    assert WitnessProgress.objects.get(peer=peer_one).size == 7


def test_witness_ahead_of_us_is_an_error(witnesses, peers):
    one, _ = witnesses
    peer_one, _ = peers
    ledger_grow(2)
    anchoring.anchor_prepare()
    one.size, one.root = 100, bytes(32)

    assert anchor_witness(peer_id=peer_one.pk) == "failed"

    progress = WitnessProgress.objects.get(peer=peer_one)
    assert "beyond our latest checkpoint" in progress.last_error
    assert progress.size == 0


def test_bad_cosignature_is_refused(witnesses, peers, monkeypatch):
    peer_one, _ = peers
    ledger_grow(2)
    anchoring.anchor_prepare()
    forged = "\u2014 witness-one.example " + "A" * 100 + "=\n"
    monkeypatch.setattr(
        anchoring.client,
        "post",
        lambda *a, **k: PeerResponse(200, {"content-type": "text/plain"}, forged.encode()),
    )

    assert anchor_witness(peer_id=peer_one.pk) == "failed"

    assert not Cosignature.objects.exists()
    assert "cosignature" in WitnessProgress.objects.get(peer=peer_one).last_error


def test_unexpected_error_releases_the_claim(peers, monkeypatch):
    peer_one, _ = peers
    ledger_grow(2)
    anchoring.anchor_prepare()

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(anchoring.client, "post", boom)

    assert anchor_witness(peer_id=peer_one.pk) == "failed"

    progress = WitnessProgress.objects.get(peer=peer_one)
    assert progress.claimed_until is None
    assert progress.attempts == 1
    assert "boom" in progress.last_error


def test_a_claimed_witness_is_skipped(witnesses, peers):
    peer_one, _ = peers
    ledger_grow(2)
    anchoring.anchor_prepare()
    WitnessProgress.objects.filter(peer=peer_one).update(
        claimed_until=timezone.now() + dt.timedelta(minutes=1)
    )

    assert anchor_witness(peer_id=peer_one.pk) == "skipped"
    assert witnesses[0].requests == 0


def test_no_checkpoint_no_anchor(peers):
    assert anchor_all() == {"witness-one.example": "skipped", "witness-two.example": "skipped"}
    assert not Anchor.objects.exists()
