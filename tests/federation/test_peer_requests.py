"""Signed requests between peers, and the notify endpoint that uses them."""

import datetime as dt
import json
import time

import pytest
from django.utils import timezone

from federation import errors
from federation.models import MirrorHead, PeerRequestNonce
from federation.peer_requests import (
    HEADER_SIGNATURE,
    PeerRequestError,
    sign_request,
    verify_request,
)
from federation.services import peer_request_authenticate
from ledger.verify.note import VerifierKey
from tests.federation.factories import ledger_event_count, peer_for_log
from tests.federation.fakes import FakeLog, make_signer

PATH = "/api/v1/federation/notify/"
US = "gridproof.localhost/registry"


@pytest.fixture
def signer():
    return make_signer("peer.example/log", 7)


def verify(signer, headers, *, body=b"{}", to=US, path=PATH, now=None, key=None):
    return verify_request(
        key or VerifierKey.parse(signer.vkey),
        headers=headers,
        to=to,
        method="POST",
        path=path,
        body=body,
        now=int(time.time()) if now is None else now,
        max_skew=300,
    )


def test_sign_and_verify(signer):
    headers = sign_request(
        signer, to=US, method="POST", path=PATH, body=b"{}", time=int(time.time())
    )
    signed = verify(signer, headers)
    assert signed.origin == "peer.example/log"
    assert len(signed.nonce) == 32


@pytest.mark.parametrize(
    "change",
    [
        {"body": b'{"x": 1}'},
        {"to": "someone-else.example"},
        {"path": "/api/v1/federation/other/"},
        {"now": 1000},  # seconds after signing: computed when the test runs, not collected
    ],
)
def test_anything_else_does_not_verify(signer, change):
    signed_at = int(time.time())
    headers = sign_request(signer, to=US, method="POST", path=PATH, body=b"{}", time=signed_at)
    if "now" in change:
        change = {"now": signed_at + change["now"]}
    with pytest.raises(PeerRequestError):
        verify(signer, headers, **change)


def test_another_key_does_not_verify(signer):
    headers = sign_request(
        signer, to=US, method="POST", path=PATH, body=b"{}", time=int(time.time())
    )
    other = VerifierKey.parse(make_signer("peer.example/log", 8).vkey)
    with pytest.raises(PeerRequestError):
        verify(signer, headers, key=other)


def test_missing_or_malformed_headers(signer):
    headers = sign_request(
        signer, to=US, method="POST", path=PATH, body=b"{}", time=int(time.time())
    )
    with pytest.raises(PeerRequestError):
        verify(signer, {k: v for k, v in headers.items() if k != HEADER_SIGNATURE})
    with pytest.raises(PeerRequestError):
        verify(signer, headers | {HEADER_SIGNATURE: "AAAA"})


@pytest.mark.django_db
def test_authenticate_accepts_a_nonce_once(signer):
    log = FakeLog()
    peer = peer_for_log(log)
    body = b"{}"
    headers = sign_request(
        signer, to=US, method="POST", path=PATH, body=body, time=int(time.time())
    )

    assert peer_request_authenticate(headers=headers, method="POST", path=PATH, body=body) == peer
    with pytest.raises(errors.PeerSignatureInvalid, match="replay"):
        peer_request_authenticate(headers=headers, method="POST", path=PATH, body=body)
    assert PeerRequestNonce.objects.count() == 1


@pytest.mark.django_db
def test_authenticate_purges_old_nonces(signer):
    peer = peer_for_log(FakeLog())
    PeerRequestNonce.objects.create(
        peer=peer, nonce="0" * 32, signed_at=timezone.now() - dt.timedelta(hours=1)
    )
    headers = sign_request(signer, to=US, method="POST", path=PATH, body=b"", time=int(time.time()))

    peer_request_authenticate(headers=headers, method="POST", path=PATH, body=b"")

    assert list(PeerRequestNonce.objects.values_list("nonce", flat=True)) == [
        headers["GridProof-Peer-Nonce"]
    ]


@pytest.mark.django_db
def test_authenticate_refuses_unknown_and_inactive_peers(signer):
    headers = sign_request(signer, to=US, method="POST", path=PATH, body=b"", time=int(time.time()))
    with pytest.raises(errors.PeerSignatureInvalid, match="not an active peer"):
        peer_request_authenticate(headers=headers, method="POST", path=PATH, body=b"")


def _post(client, headers, body: bytes):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(PATH, data=body, content_type="application/json", **extra)


@pytest.mark.django_db
def test_notify_schedules_replication_of_a_mirror(
    client, django_capture_on_commit_callbacks, monkeypatch
):
    log = FakeLog()
    log.append(3)
    peer = peer_for_log(log, is_mirror=True)
    MirrorHead.objects.filter(peer=peer).update(next_attempt_at=timezone.now())
    scheduled = []
    monkeypatch.setattr(
        "federation.tasks.federation_peer_replicate_task.delay", lambda pk: scheduled.append(pk)
    )
    body = json.dumps({"checkpoint": log.checkpoint()}).encode()
    headers = sign_request(
        log.signer, to=US, method="POST", path=PATH, body=body, time=int(time.time())
    )
    before = ledger_event_count()

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, headers, body)

    assert response.status_code == 202, response.content
    assert response.json() == {"scheduled": True}
    assert scheduled == [peer.pk]
    assert MirrorHead.objects.get(peer=peer).next_attempt_at is None
    assert ledger_event_count() == before


@pytest.mark.django_db
def test_notify_with_a_bad_signature_is_403(client):
    log = FakeLog()
    log.append(3)
    peer_for_log(log, is_mirror=True)
    body = json.dumps({"checkpoint": log.checkpoint()}).encode()
    headers = sign_request(
        make_signer(log.origin, 99),
        to=US,
        method="POST",
        path=PATH,
        body=body,
        time=int(time.time()),
    )

    response = _post(client, headers, body)

    assert response.status_code == 403
    assert response.json()["code"] == "peer_signature_invalid"


@pytest.mark.django_db
def test_notify_of_a_non_mirror_schedules_nothing(client):
    log = FakeLog()
    log.append(3)
    peer_for_log(log)
    body = json.dumps({"checkpoint": log.checkpoint()}).encode()
    headers = sign_request(
        log.signer, to=US, method="POST", path=PATH, body=body, time=int(time.time())
    )

    response = _post(client, headers, body)

    assert response.json() == {"scheduled": False}
