"""Permission matrix rows for the federation endpoints (see tests/registry/matrix.py).

Peers, their keys, evidence, status and mirrors are public; only the issuing body
registers, changes, suspends and reinstates peers. The world: an active peer, a
suspended peer, and one piece of (non-flagging) evidence about the active peer.
"""

from federation import services
from federation.models import Peer
from tests.federation.factories import peer_for_log
from tests.federation.fakes import FakeLog
from tests.registry.matrix import Case, expect

ISSUING_BODY_ONLY = {"producer_admin": "not_issuing_body", "auditor": "not_issuing_body"}


def setup_world(world) -> None:
    log = FakeLog("matrix-peer.example/log", seed_byte=21)
    world.peer = peer_for_log(log, is_mirror=True)
    world.suspended_peer = peer_for_log(
        FakeLog("matrix-suspended.example/log", seed_byte=23), status=Peer.Status.SUSPENDED
    )
    world.evidence, _created = services.evidence_record(
        peer_id=world.peer.pk, kind="rollback", detail="matrix", size=1
    )
    world.new_log = FakeLog("matrix-new.example/log", seed_byte=22)


def _peer(world) -> dict:
    return {"pk": world.peer.pk}


def _mirror(world) -> dict:
    return {"origin": world.peer.origin}


CASES = [
    Case("GET", "/api/v1/federation/status/", expect(200)),
    Case("GET", "/api/v1/federation/identity/", expect(200)),
    # Nothing is anchored in the matrix world (no witnesses cosigned): 404 for everyone.
    Case(
        "GET",
        "/api/v1/federation/checkpoint/anchored",
        expect(404),
        codes={"anonymous": "anchored_checkpoint_not_found"},
    ),
    Case(
        "POST",
        "/api/v1/federation/notify/",
        # Peers sign their requests; a user's session or token is no peer signature.
        expect(403),
        body=lambda w, role: {"checkpoint": "not a signed note"},
        codes={"anonymous": "peer_signature_invalid", "auditor": "peer_signature_invalid"},
    ),
    Case(
        "POST",
        "/api/v1/federation/transfers/",
        expect(403),
        body=lambda w, role: {"version": 1},
        codes={"anonymous": "peer_signature_invalid", "issuing_body": "peer_signature_invalid"},
    ),
    Case("GET", "/api/v1/federation/log/entries/", expect(200)),
    Case("GET", "/api/v1/federation/mirrors/", expect(200)),
    Case(
        "GET",
        "/api/v1/federation/mirrors/{origin}/checkpoint",
        expect(404),
        args=_mirror,
    ),
    # The peer is a mirror with nothing copied yet: an empty page, no checkpoint, no entry.
    Case("GET", "/api/v1/federation/mirrors/{origin}/entries/", expect(200), args=_mirror),
    Case(
        "GET",
        "/api/v1/federation/mirrors/{origin}/entries/{seq}/",
        expect(404),
        args=lambda w: {"origin": w.peer.origin, "seq": 0},
    ),
    Case("GET", "/api/v1/federation/mirrors/{origin}/proofs/inclusion/", expect(400), args=_mirror),
    Case(
        "GET", "/api/v1/federation/mirrors/{origin}/proofs/consistency/", expect(400), args=_mirror
    ),
    Case("GET", "/api/v1/federation/peers/", expect(200)),
    Case(
        "POST",
        "/api/v1/federation/peers/",
        expect(403, anonymous=401, issuing_body=201),
        body=lambda w, role: {
            "origin": w.new_log.origin,
            "base_url": "http://127.0.0.1:8009",
            "log_vkey": w.new_log.signer.vkey,
            "roles": ["witness"],
        },
        codes=ISSUING_BODY_ONLY,
    ),
    Case("GET", "/api/v1/federation/peers/{pk}/", expect(200), args=_peer),
    Case(
        "PATCH",
        "/api/v1/federation/peers/{pk}/",
        expect(403, anonymous=401, issuing_body=200),
        args=_peer,
        body=lambda w, role: {"name": "Matrix peer registry"},
        codes=ISSUING_BODY_ONLY,
    ),
    Case(
        "POST",
        "/api/v1/federation/peers/{pk}/suspend/",
        expect(403, anonymous=401, issuing_body=200),
        name="active peer",
        args=_peer,
        body=lambda w, role: {"reason": "keys leaked"},
        codes=ISSUING_BODY_ONLY,
    ),
    Case(
        "POST",
        "/api/v1/federation/peers/{pk}/reinstate/",
        expect(403, anonymous=401, issuing_body=200),
        name="suspended peer",
        args=lambda w: {"pk": w.suspended_peer.pk},
        body=lambda w, role: {"reason": "keys rotated"},
        codes=ISSUING_BODY_ONLY,
    ),
    Case("GET", "/api/v1/federation/evidence/", expect(200)),
    Case(
        "GET",
        "/api/v1/federation/evidence/{pk}/",
        expect(200),
        args=lambda w: {"pk": w.evidence.pk},
    ),
]
