"""Peer governance: services (one ledger event each), the API and the admin."""

import pytest
from django.conf import settings

from accounts.errors import NotIssuingBody
from federation import errors, services
from federation.api.views import identity_body
from federation.models import MirrorHead, Peer, WitnessProgress
from ledger.keys import registry_signer, registry_witness
from ledger.verify.note import KEY_TYPE_COSIGNATURE_V1, VerifierKey
from tests.conftest import client_for
from tests.factories import UserFactory, issuing_body_user
from tests.federation.factories import ledger_event_count, ledger_kinds
from tests.federation.fakes import make_signer

pytestmark = pytest.mark.django_db

ORIGIN = "registry-b.example/registry"


@pytest.fixture
def admin_user():
    return issuing_body_user()


@pytest.fixture
def signer():
    return make_signer(ORIGIN, 21)


def register(actor, signer, **fields):
    values = {
        "origin": ORIGIN,
        "base_url": "https://registry-b.example/",
        "log_vkey": signer.vkey,
        "roles": ["witness", "mirror"],
    } | fields
    return services.peer_register(actor=actor, **values)


def test_register_stores_the_peer_and_one_event(admin_user, signer):
    before = ledger_event_count()

    peer = register(admin_user, signer, name="Registry B")

    assert (peer.origin, peer.base_url, peer.roles) == (
        ORIGIN,
        "https://registry-b.example",
        ["witness", "mirror"],
    )
    assert peer.status == Peer.Status.ACTIVE
    # the witness key defaults to the log key's public key as cosignature/v1
    assert peer.witness_vkey == signer.cosignature_vkey
    assert VerifierKey.parse(peer.witness_vkey).key_type == KEY_TYPE_COSIGNATURE_V1
    assert WitnessProgress.objects.filter(peer=peer).exists()
    assert MirrorHead.objects.filter(peer=peer).exists()
    assert ledger_event_count() == before + 1
    assert ledger_kinds()[-1] == "peer.registered"


def test_only_the_issuing_body_registers(signer):
    before = ledger_event_count()
    with pytest.raises(NotIssuingBody):
        register(UserFactory(), signer)
    assert not Peer.objects.exists()
    assert ledger_event_count() == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"origin": "bad origin"}, "origin"),
        ({"origin": "other.example/log"}, "named"),
        ({"log_vkey": "not-a-key"}, "log_vkey"),
        ({"base_url": "ftp://x.example"}, "base_url"),
        ({"base_url": "https://x.example/?q=1"}, "base_url"),
        ({"roles": ["oracle"]}, "role"),
        ({"witness_vkey": "x+00000000+AQ=="}, "witness_vkey"),
    ],
)
def test_invalid_peers_are_refused(admin_user, signer, fields, message):
    before = ledger_event_count()
    with pytest.raises(errors.PeerInvalid) as caught:
        register(admin_user, signer, **fields)
    assert message in caught.value.detail
    assert not Peer.objects.exists()
    assert ledger_event_count() == before


def test_log_key_must_be_ed25519(admin_user, signer):
    with pytest.raises(errors.PeerInvalid):
        register(admin_user, signer, log_vkey=signer.cosignature_vkey)


def test_our_own_origin_is_refused(admin_user, settings):
    own = registry_signer()
    with pytest.raises(errors.PeerInvalid):
        services.peer_register(
            actor=admin_user,
            origin=settings.REGISTRY_ORIGIN,
            base_url="https://x.example",
            log_vkey=own.vkey,
            roles=[],
        )


def test_duplicate_origin_is_409(admin_user, signer):
    register(admin_user, signer)
    before = ledger_event_count()
    with pytest.raises(errors.PeerAlreadyRegistered):
        register(admin_user, signer)
    assert ledger_event_count() == before


def test_two_peers_cannot_share_a_witness_name(admin_user, signer):
    register(admin_user, signer)
    other = make_signer("registry-c.example/registry", 22)
    with pytest.raises(errors.PeerInvalid):
        register(
            admin_user,
            other,
            origin=other.name,
            witness_vkey=signer.cosignature_vkey,
        )


def test_update_rotates_keys_and_records_the_changes(admin_user, signer):
    peer = register(admin_user, signer)
    rotated = make_signer(ORIGIN, 23)
    before = ledger_event_count()

    peer = services.peer_update(
        actor=admin_user, peer_id=peer.pk, log_vkey=rotated.vkey, roles=["partner"]
    )

    # the derived witness key follows the new log key
    assert (peer.log_vkey, peer.witness_vkey) == (rotated.vkey, rotated.cosignature_vkey)
    assert peer.roles == ["partner"]
    assert ledger_event_count() == before + 1
    assert ledger_kinds()[-1] == "peer.updated"


def test_update_keeps_a_separate_witness_key(admin_user, signer):
    witness = make_signer("witness-b.example", 24)
    peer = register(admin_user, signer, witness_vkey=witness.cosignature_vkey)

    peer = services.peer_update(
        actor=admin_user, peer_id=peer.pk, log_vkey=make_signer(ORIGIN, 25).vkey
    )

    assert peer.witness_vkey == witness.cosignature_vkey


def test_update_without_change_records_nothing(admin_user, signer):
    peer = register(admin_user, signer)
    before = ledger_event_count()
    services.peer_update(actor=admin_user, peer_id=peer.pk, name="")
    assert ledger_event_count() == before


def test_update_refuses_bad_input_and_changes_nothing(admin_user, signer):
    peer = register(admin_user, signer)
    before = ledger_event_count()
    with pytest.raises(errors.PeerInvalid):
        services.peer_update(actor=admin_user, peer_id=peer.pk, base_url="nope")
    with pytest.raises(errors.PeerInvalid):
        services.peer_update(actor=admin_user, peer_id=peer.pk, origin="other")
    with pytest.raises(errors.PeerNotFound):
        services.peer_update(actor=admin_user, peer_id=999999, name="x")
    peer.refresh_from_db()
    assert peer.base_url == "https://registry-b.example"
    assert ledger_event_count() == before


def test_suspend_and_reinstate(admin_user, signer):
    peer = register(admin_user, signer)

    before = ledger_event_count()
    peer = services.peer_suspend(actor=admin_user, peer_id=peer.pk, reason="maintenance")
    assert peer.status == Peer.Status.SUSPENDED
    assert ledger_event_count() == before + 1

    with pytest.raises(errors.PeerStatusConflict):
        services.peer_suspend(actor=admin_user, peer_id=peer.pk, reason="again")
    with pytest.raises(errors.PeerInvalid):
        services.peer_reinstate(actor=admin_user, peer_id=peer.pk, reason=" ")

    peer = services.peer_reinstate(actor=admin_user, peer_id=peer.pk, reason="back")
    assert peer.status == Peer.Status.ACTIVE
    assert ledger_kinds()[-2:] == ["peer.suspended", "peer.reinstated"]


def test_flagged_peer_is_reinstated(admin_user, signer):
    peer = register(admin_user, signer)
    services.evidence_record(
        peer_id=peer.pk, kind="equivocation", detail="test", first_note="a", second_note="b"
    )
    peer.refresh_from_db()
    assert peer.status == Peer.Status.FLAGGED

    peer = services.peer_reinstate(actor=admin_user, peer_id=peer.pk, reason="explained")

    assert peer.status == Peer.Status.ACTIVE


# ---------------------------------------------------------------- API


def test_api_register_and_read(admin_user, signer, api_client):
    body = {"origin": ORIGIN, "base_url": "http://127.0.0.1:8001", "log_vkey": signer.vkey}

    response = client_for(admin_user).post(
        "/api/v1/federation/peers/", body | {"roles": ["witness"]}, format="json"
    )

    assert response.status_code == 201, response.json()
    peer_id = response.json()["id"]
    # peers are public
    listing = api_client.get("/api/v1/federation/peers/").json()
    assert [p["origin"] for p in listing["results"]] == [ORIGIN]
    assert api_client.get(f"/api/v1/federation/peers/{peer_id}/").json()["roles"] == ["witness"]


def test_api_refuses_strangers_and_unknown_fields(signer, api_client):
    body = {"origin": ORIGIN, "base_url": "http://x.example", "log_vkey": signer.vkey, "roles": []}
    assert api_client.post("/api/v1/federation/peers/", body, format="json").status_code in (
        401,
        403,
    )
    response = client_for(UserFactory()).post("/api/v1/federation/peers/", body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "not_issuing_body"
    response = client_for(issuing_body_user()).post(
        "/api/v1/federation/peers/", body | {"secret": 1}, format="json"
    )
    assert response.status_code == 400


def test_api_update_suspend_reinstate(admin_user, signer):
    peer = register(admin_user, signer)
    api = client_for(admin_user)

    response = api.patch(
        f"/api/v1/federation/peers/{peer.pk}/", {"name": "B", "roles": ["mirror"]}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["roles"]) == ("B", ["mirror"])

    response = api.post(f"/api/v1/federation/peers/{peer.pk}/suspend/", {"reason": "x"})
    assert response.json()["status"] == "suspended"
    response = api.post(f"/api/v1/federation/peers/{peer.pk}/suspend/", {"reason": "x"})
    assert response.status_code == 409
    response = api.post(f"/api/v1/federation/peers/{peer.pk}/reinstate/", {"reason": "y"})
    assert response.json()["status"] == "active"
    assert api.post("/api/v1/federation/peers/999/suspend/", {"reason": "x"}).status_code == 404


IDENTITY_URLS = ["/api/v1/federation/identity/", "/.well-known/gridproof/federation"]


def test_identity_documents(client):
    signer = registry_signer()
    for url in ["/api/v1/federation/identity/", "/.well-known/gridproof/federation"]:
        body = client.get(url).json()
        assert body["log_vkey"] == signer.vkey
        assert body["witness_vkey"] == registry_witness().cosignature_vkey
        # two keys: the witness key is not the log key in another type
        witness = VerifierKey.parse(body["witness_vkey"])
        assert witness.public_key != VerifierKey.parse(body["log_vkey"]).public_key
        assert witness.name == f"{settings.REGISTRY_ORIGIN}/witness"


@pytest.mark.parametrize("url", IDENTITY_URLS)
def test_identity_reports_the_configured_public_url(client, settings, url):
    # given a registry served behind https://registry.example.org/gridproof
    settings.REGISTRY_BASE_URL = "https://registry.example.org/gridproof/"

    # when
    body = client.get(url, HTTP_HOST="127.0.0.1:8000").json()

    # then: the configured URL, not the address the request reached
    assert body["base_url"] == body["witness_url"] == "https://registry.example.org/gridproof"


@pytest.mark.parametrize("url", IDENTITY_URLS)
def test_identity_without_a_configured_url_reports_the_host_asked(client, settings, url):
    # given no REGISTRY_BASE_URL
    settings.REGISTRY_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["registry-b.example"]

    # when
    body = client.get(url, HTTP_HOST="registry-b.example:8443").json()

    # then: where it was reached, not the development server's :8000
    assert body["base_url"] == body["witness_url"] == "http://registry-b.example:8443"


@pytest.mark.parametrize("url", IDENTITY_URLS)
def test_identity_behind_a_tls_proxy_reports_the_public_https_url(client, settings, url):
    # given no REGISTRY_BASE_URL, a trusted proxy (TRUSTED_PROXY=1) terminating TLS on 443
    settings.REGISTRY_BASE_URL = ""
    settings.ALLOWED_HOSTS = ["registry-b.example"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    # when the proxy forwards to the web process on :8000
    body = client.get(url, HTTP_HOST="registry-b.example", HTTP_X_FORWARDED_PROTO="https").json()

    # then: the URL clients use, not the :8000 the process listens on
    assert body["base_url"] == body["witness_url"] == "https://registry-b.example"


def test_identity_outside_a_request_falls_back_to_the_development_server(settings):
    settings.REGISTRY_BASE_URL = ""
    assert identity_body()["base_url"] == "http://127.0.0.1:8000"
    settings.REGISTRY_BASE_URL = "https://registry.example.org"
    assert identity_body()["base_url"] == "https://registry.example.org"


# ---------------------------------------------------------------- admin


def test_admin_add_goes_through_the_service(admin_user, signer, client):
    admin_user.is_staff = True
    admin_user.save(update_fields=["is_staff"])
    client.force_login(admin_user)
    before = ledger_event_count()

    response = client.post(
        "/admin/federation/peer/add/",
        {
            "origin": ORIGIN,
            "name": "B",
            "base_url": "https://registry-b.example",
            "witness_url": "",
            "log_vkey": signer.vkey,
            "witness_vkey": "",
            "roles": ["witness"],
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    peer = Peer.objects.get(origin=ORIGIN)
    assert peer.roles == ["witness"]
    assert ledger_kinds()[-1] == "peer.registered"
    assert ledger_event_count() == before + 1
    # the change page renders, with the federation state
    page = client.get(f"/admin/federation/peer/{peer.pk}/change/")
    assert page.status_code == 200
    assert b"Federation state" in page.content
    # the list opens with our anchoring summary and links the status page
    listing = client.get("/admin/federation/peer/").content.decode()
    assert (
        "anchored <strong>none yet</strong>" in listing and 'href="/federation/status"' in listing
    )
    assert ORIGIN in listing


def test_admin_form_shows_service_errors(admin_user, client):
    admin_user.is_staff = True
    admin_user.save(update_fields=["is_staff"])
    client.force_login(admin_user)

    response = client.post(
        "/admin/federation/peer/add/",
        {"origin": ORIGIN, "base_url": "https://b.example", "log_vkey": "garbage"},
    )

    assert response.status_code == 200
    assert b"log_vkey" in response.content
    assert not Peer.objects.exists()


def test_admin_read_only_pages_render(admin_user, client):
    admin_user.is_staff = True
    admin_user.is_superuser = True
    admin_user.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(admin_user)
    for model in [
        "peer",
        "evidence",
        "witnessedcheckpoint",
        "anchor",
        "witnessprogress",
        "mirrorhead",
        "mirrorcheckpoint",
    ]:
        assert client.get(f"/admin/federation/{model}/").status_code == 200, model
