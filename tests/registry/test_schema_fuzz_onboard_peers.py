"""The last two ST202 findings of the schema fuzzer as the issuing body (issue 16): each
refusal of a schema-valid request now has a code that scripts/fuzz_rules.py lists for its
operation, and what the schema can say (a verifier key's shape) it says."""

import pytest

from ledger.keys import registry_signer
from tests.conftest import client_for
from tests.factories import issuing_body_user
from tests.registry.test_schema_fuzz_findings import body_schema, schema, schema_allows

pytestmark = pytest.mark.django_db
__all__ = ["schema"]  # the fixture, shared


def _peer(vkey: str, origin: str = "peer.example/log") -> dict:
    return {
        "origin": origin,
        "base_url": "https://peer.example",
        "log_vkey": vkey,
        "roles": ["mirror"],
    }


def test_a_log_key_of_the_wrong_shape_is_schema_invalid_and_refused(schema):
    part = body_schema(schema, "/api/v1/federation/peers/", "post")
    body = _peer("verifier key must be <name>+<key id>+<base64 key>")  # the fuzzer's finding

    response = client_for(issuing_body_user()).post(
        "/api/v1/federation/peers/", body, format="json"
    )

    assert not schema_allows(schema, part, body)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_a_log_key_named_after_another_origin_is_schema_valid_and_refused_with_its_code(schema):
    part = body_schema(schema, "/api/v1/federation/peers/", "post")
    vkey = registry_signer().vkey  # a real key: named after our origin, not the peer's
    body = _peer(vkey)

    response = client_for(issuing_body_user()).post(
        "/api/v1/federation/peers/", body, format="json"
    )

    assert schema_allows(schema, part, body)
    assert response.status_code == 400
    assert response.json()["code"] == "peer_key_name_mismatch"


def test_a_log_key_whose_id_is_not_its_checksum_is_refused_with_its_code(schema):
    part = body_schema(schema, "/api/v1/federation/peers/", "post")
    material = registry_signer().vkey.split("+")[2]
    body = _peer(f"peer.example/log+00000000+{material}")  # the fuzzer's finding

    response = client_for(issuing_body_user()).post(
        "/api/v1/federation/peers/", body, format="json"
    )

    assert schema_allows(schema, part, body)
    assert response.status_code == 400
    assert response.json()["code"] == "peer_key_id_mismatch", response.json()


def test_a_witness_key_of_the_log_key_type_is_schema_invalid(schema):
    part = body_schema(schema, "/api/v1/federation/peers/", "post")
    vkey = registry_signer().vkey
    origin = vkey.split("+")[0]
    assert schema_allows(schema, part, {**_peer(vkey, origin), "witness_vkey": ""})
    assert not schema_allows(schema, part, {**_peer(vkey, origin), "witness_vkey": vkey})


def test_an_onboarding_file_without_the_columns_is_refused_with_its_code(schema):
    part = body_schema(schema, "/api/v1/devices/onboard/", "post")
    body = {"csv": "0\n1\n", "dry_run": True}  # the fuzzer's finding: a header "0"

    response = client_for(issuing_body_user()).post("/api/v1/devices/onboard/", body, format="json")

    assert schema_allows(schema, part, body)
    assert response.status_code == 400
    assert response.json()["code"] == "onboarding_file_invalid"
    assert "Missing: organisation_id" in response.json()["extra"]["fields"]["columns"][0]


def _vkey(name: str, key_type: int, seed: int) -> str:
    from nacl.signing import SigningKey

    from ledger.verify.note import VerifierKey

    public = bytes(SigningKey(bytes([seed]) * 32).verify_key)
    return VerifierKey.from_public_key(name, key_type, public).encode()


def test_registering_this_registry_itself_is_refused_with_its_code(settings):
    origin = settings.REGISTRY_ORIGIN
    body = _peer(_vkey(origin, 0x01, 3), origin=origin)

    response = client_for(issuing_body_user()).post(
        "/api/v1/federation/peers/", body, format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "peer_is_self"


def test_a_witness_name_another_peer_has_is_refused_with_its_code():
    admin = client_for(issuing_body_user())
    first = {**_peer(_vkey("a.example/log", 0x01, 4), origin="a.example/log")}
    first["witness_vkey"] = _vkey("shared.example/witness", 0x04, 5)
    assert admin.post("/api/v1/federation/peers/", first, format="json").status_code == 201
    second = {**_peer(_vkey("b.example/log", 0x01, 6), origin="b.example/log")}
    second["witness_vkey"] = _vkey("shared.example/witness", 0x04, 7)

    response = admin.post("/api/v1/federation/peers/", second, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "peer_witness_name_taken"
