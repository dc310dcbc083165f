"""Federation status: JSON API and the HTML page."""

import datetime as dt

import pytest
from django.utils import timezone

from federation.anchoring import anchor_all
from federation.models import MirrorHead
from federation.replication import peer_replicate
from federation.selectors import percentile
from ledger.keys import registry_signer
from tests.federation.factories import ledger_grow, peer_for_log, peer_for_witness
from tests.federation.fakes import FakeLog, FakePeerServer, FakeWitness

pytestmark = pytest.mark.django_db


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


@pytest.fixture
def federation(settings):
    settings.ANCHOR_QUORUM = 1
    log = FakeLog()
    log.append(50)
    server = FakePeerServer(log).start()
    witness = FakeWitness("witness-one.example", 11, registry_signer().vkey).start()
    try:
        mirror = peer_for_log(log, base_url=server.url, is_mirror=True)
        peer_for_witness(witness)
        yield log, server, mirror
    finally:
        server.stop()
        witness.stop()


def test_status_reports_lag_anchoring_and_errors(client, federation):
    log, server, mirror = federation
    ledger_grow(4)
    anchor_all()
    peer_replicate(peer_id=mirror.pk, max_entries=20)
    MirrorHead.objects.filter(peer=mirror).update(
        behind_since=timezone.now() - dt.timedelta(seconds=30)
    )

    body = client.get("/api/v1/federation/status/").json()

    assert (body["checkpoint_size"], body["anchored_size"], body["quorum"]) == (4, 4, 1)
    assert body["anchoring_delay"]["count"] == 1
    peers = {p["peer"]["origin"]: p for p in body["peers"]}
    mirror_status = peers[log.origin]
    assert (mirror_status["mirror_size"], mirror_status["seen_size"]) == (20, 50)
    assert mirror_status["lag_entries"] == 30
    assert mirror_status["lag_seconds"] >= 30
    witness_status = peers["witness-one.example"]
    assert (witness_status["witness_size"], witness_status["witness_lag_entries"]) == (4, 0)
    assert witness_status["witness_delay"]["count"] == 1

    # a failure shows as the last error
    server.truncate = True
    MirrorHead.objects.filter(peer=mirror).update(next_attempt_at=None)
    peer_replicate(peer_id=mirror.pk)
    body = client.get("/api/v1/federation/status/").json()
    assert (
        "cut off"
        in {p["peer"]["origin"]: p for p in body["peers"]}[log.origin]["mirror_last_error"]
    )


def test_status_page_renders(client, federation):
    ledger_grow(2)
    anchor_all()

    response = client.get("/federation/status")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Federation status" in page
    assert "peer.example/log" in page
    assert "witness-one.example" in page
