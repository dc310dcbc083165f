"""Cross-registry transfers on the wire: a partner's package is verified before anything is
imported (checkpoint, witness quorum, inclusion proofs, our mirror), the receipt is signed,
and a replayed export is refused with the first receipt."""

import base64
import json
import time

import pytest
from django.test import override_settings

from certificates.models import Bundle, CertificateImport
from federation import transfers
from federation.errors import (
    TransferPackageInvalid,
    TransferPackageTooLarge,
    TransferPeerNotPartner,
)
from federation.models import MirroredChunk, MirrorHead
from federation.peer_requests import sign_request
from federation.protocol import encode_bundle
from ledger.keys import registry_signer, registry_witness
from ledger.merkle import inclusion_proof, leaf_hash
from ledger.verify.note import VerifierKey, verify_note
from registry.errors import DomainError
from tests.certificates.factories import PARTNER, export_event_data
from tests.factories import AccountFactory, issuing_body_user
from tests.federation.factories import PeerFactory, peer_for_log
from tests.federation.fakes import FakeLog, b64, make_signer

pytestmark = pytest.mark.django_db
PATH = transfers.TRANSFERS_PATH


class PartnerLog(FakeLog):
    """A partner's log whose entry `seq` is a certificate.exported event naming us."""

    def add_event(self, kind: str, data: dict) -> int:
        event = json.dumps(
            {"type": kind, "at": "2026-11-25T10:00:00.000000Z", "actor": "user:3", "data": data},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        self.events.append(event)
        self.leaves.append(leaf_hash(event))
        return len(self.events) - 1

    def package(self, seq: int, cosigners=(), *, entries=None, prior=()) -> dict:
        note = self.checkpoint()
        body = note[: note.index("\n\n") + 1]
        for witness in cosigners:
            note += witness.cosign(body, int(time.time()))
        return {
            "version": 1,
            "export_seq": seq,
            "hop": {
                "origin": self.origin,
                "checkpoint": note,
                "entries": [
                    {
                        "seq": s,
                        "event_b64": b64(self.events[s]),
                        "proof": [b64(h) for h in inclusion_proof(s, self.size, self.leaves)],
                    }
                    for s in (entries if entries is not None else [seq])
                ],
            },
            "prior": list(prior),
        }


@pytest.fixture
def world():
    log = PartnerLog(origin=PARTNER, seed_byte=21)
    log.append(3)
    issuing_body_user()
    account = AccountFactory()
    seq = log.add_event("certificate.exported", export_event_data(account.number))
    log.append(2)
    peer = peer_for_log(log, is_partner=True, is_mirror=True)
    witness = make_signer("witness-c.example/gridproof", 22)
    PeerFactory(origin=witness.name, log_vkey=witness.vkey, witness_vkey=witness.cosignature_vkey)
    return log, peer, witness, seq, account


def body_of(package: dict) -> bytes:
    return json.dumps(package).encode()


def test_a_package_verifies_with_the_senders_key_and_a_witness(world):
    log, peer, witness, seq, _account = world
    verified = transfers.transfer_package_verify(
        peer, body_of(log.package(seq, [witness], entries=[1, seq]))
    )
    assert verified.origin == PARTNER and verified.seq == seq
    assert verified.leaf_hash == log.leaves[seq]
    assert verified.data["destination_account"]
    hop = verified.provenance[0]
    assert hop["verified"] and hop["cosigners"] == [witness.name]
    assert [e["seq"] for e in hop["entries"]] == [1, seq]


def test_our_own_cosignature_counts_as_a_witness(world):
    log, peer, _witness, seq, _account = world
    ours = registry_witness()
    assert transfers.transfer_package_verify(peer, body_of(log.package(seq, [ours]))).seq == seq


def test_a_cosignature_by_our_log_key_does_not_count_as_ours(world):
    # given: the partner's checkpoint "cosigned" with our log key instead of our witness key
    log, peer, _witness, seq, _account = world
    # when / then: no witness counted, the quorum is not met
    with pytest.raises(DomainError) as refused:
        transfers.transfer_package_verify(peer, body_of(log.package(seq, [registry_signer()])))
    assert "quorum" in str(refused.value.detail) or "witness" in str(refused.value.detail)


def _forge_entry(package: dict) -> dict:
    package["hop"]["entries"][0]["event_b64"] = b64(b'{"type":"certificate.exported"}')
    return package


def _other_key(package: dict, log: PartnerLog) -> dict:
    impostor = PartnerLog(origin=PARTNER, seed_byte=99)
    impostor.events, impostor.leaves = log.events, log.leaves
    package["hop"]["checkpoint"] = impostor.checkpoint()
    return package


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda p, log: _forge_entry(p), "is not in"),
        (lambda p, log: _other_key(p, log), "checkpoint of"),
        (lambda p, log: p | {"export_seq": 1}, "does not include entry 1"),
        (lambda p, log: p | {"version": 2}, "version 1"),
        (lambda p, log: {**p, "hop": {**p["hop"], "origin": "other.example/x"}}, "the hop is"),
        (lambda p, log: {**p, "hop": {**p["hop"], "entries": []}}, "non-empty"),
        (lambda p, log: {**p, "prior": [{}] * 20}, "at most"),
        (lambda p, log: p | {"export_seq": 2**63}, "0 to"),
        (lambda p, log: p | {"export_seq": True}, "0 to"),
    ],
)
def test_bad_packages_are_refused_and_nothing_is_stored(world, tamper, message):
    log, peer, witness, seq, _account = world
    package = tamper(log.package(seq, [witness]), log)
    with pytest.raises(TransferPackageInvalid, match=message):
        transfers.transfer_receive(peer, body_of(package))
    assert not CertificateImport.objects.exists()


def test_an_oversized_package_is_refused_before_it_is_parsed(world, monkeypatch):
    log, peer, witness, seq, _account = world
    monkeypatch.setattr(transfers, "MAX_PACKAGE_BYTES", 100)
    with pytest.raises(TransferPackageTooLarge):
        transfers.transfer_package_verify(peer, body_of(log.package(seq, [witness])))


def test_an_entry_that_is_not_an_export_is_refused(world):
    log, peer, witness, _seq, _account = world
    transferred = log.add_event("certificate.transferred", {"bundle_id": 1})
    with pytest.raises(TransferPackageInvalid, match="not an export"):
        transfers.transfer_package_verify(peer, body_of(log.package(transferred, [witness])))
    with pytest.raises(TransferPackageInvalid, match="not a ledger event"):
        transfers.transfer_package_verify(peer, body_of(log.package(0, [witness])))


def test_without_the_witness_quorum_nothing_is_imported(world):
    log, peer, _witness, seq, _account = world
    stranger = make_signer("stranger.example/witness", 23)
    for cosigners in ([], [stranger]):
        with pytest.raises(TransferPackageInvalid, match="cosignatures, quorum is 1"):
            transfers.transfer_package_verify(peer, body_of(log.package(seq, cosigners)))
    with override_settings(FEDERATION_IMPORT_QUORUM=0):
        assert transfers.transfer_package_verify(peer, body_of(log.package(seq))).seq == seq


def test_only_trading_partners_deliver(world):
    log, peer, witness, seq, _account = world
    peer.is_partner = False
    with pytest.raises(TransferPeerNotPartner):
        transfers.transfer_package_verify(peer, body_of(log.package(seq, [witness])))


def test_an_export_that_differs_from_our_mirror_is_refused(world):
    log, peer, witness, seq, _account = world
    MirrorHead.objects.filter(peer=peer).update(size=log.size)
    MirroredChunk.objects.create(
        peer=peer, seq=seq, events=encode_bundle([b"what we verified before"])
    )
    with pytest.raises(TransferPackageInvalid, match="differs from our verified mirror"):
        transfers.transfer_package_verify(peer, body_of(log.package(seq, [witness])))


def test_prior_hops_are_reverified_when_we_know_the_registry(world):
    log, peer, witness, seq, _account = world
    first = PartnerLog(origin="registry-z.example/gridproof", seed_byte=31)
    first.append(4)
    earlier = first.package(2, [])["hop"]
    unknown = transfers.transfer_package_verify(
        peer, body_of(log.package(seq, [witness], prior=[earlier]))
    )
    assert unknown.provenance[1]["verified"] is False
    peer_for_log(first)
    known = transfers.transfer_package_verify(
        peer, body_of(log.package(seq, [witness], prior=[earlier]))
    )
    assert known.provenance[1]["verified"] is True
    earlier["entries"][0]["event_b64"] = b64(b"rewritten history")
    with pytest.raises(TransferPackageInvalid, match="is not in"):
        transfers.transfer_package_verify(
            peer, body_of(log.package(seq, [witness], prior=[earlier]))
        )


# ---------------------------------------------------------------- the endpoint


def post(client, log: PartnerLog, body: bytes, *, signer=None):
    headers = sign_request(
        signer or log.signer,
        to=registry_signer().name,
        method="POST",
        path=PATH,
        body=body,
        time=int(time.time()),
    )
    return client.post(
        PATH,
        body,
        content_type="application/json",
        headers=headers,
    )


def test_the_endpoint_imports_once_and_answers_replays_with_the_first_receipt(client, world):
    log, _peer, witness, seq, account = world
    body = body_of(log.package(seq, [witness]))
    response = post(client, log, body)
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["outcome"] == "imported" and answer["bundle_id"]
    bundle = Bundle.objects.get(pk=answer["bundle_id"])
    assert bundle.account_id == account.pk
    # the receipt is a note signed by us, about this very entry
    note = verify_note(answer["receipt"], [VerifierKey.parse(registry_signer().vkey)])
    assert f"export {seq} {log.leaves[seq].hex()}\n" in note.text
    assert "outcome imported\n" in note.text and f"to {PARTNER}\n" in note.text
    # the same export again (a new, validly signed request): refused, same receipt
    again = post(client, log, body)
    assert again.status_code == 409
    error = again.json()
    assert error["code"] == "export_already_imported"
    assert error["extra"]["receipt"] == answer["receipt"]
    assert CertificateImport.objects.count() == 1 and Bundle.objects.count() == 1
    # the public certificate page shows the exporter's part, checked
    page = client.get(f"/certificates/{bundle.pk}/").content.decode()
    assert "Across registries" in page and f"<code>{PARTNER}</code>" in page
    assert "checked against its anchored checkpoint" in page
    assert "Exported 500 Wh to account" in page


def test_the_endpoint_refuses_unsigned_and_forged_requests(client, world):
    log, _peer, witness, seq, _account = world
    body = body_of(log.package(seq, [witness]))
    unsigned = client.post(PATH, body, content_type="application/json")
    assert unsigned.status_code == 403 and unsigned.json()["code"] == "peer_signature_invalid"
    forged = post(client, log, body, signer=make_signer(PARTNER, 98))
    assert forged.status_code == 403
    bad = post(client, log, body_of(_forge_entry(log.package(seq, [witness]))))
    assert bad.status_code == 422 and bad.json()["code"] == "transfer_package_invalid"
    assert not CertificateImport.objects.exists()


def test_a_refusal_is_receipted_too(client, world):
    log, _peer, witness, _seq, _account = world
    seq = log.add_event("certificate.exported", export_event_data("NO-SUCH-ACCOUNT"))
    response = post(client, log, body_of(log.package(seq, [witness])))
    assert response.status_code == 201
    assert response.json()["outcome"] == "rejected"
    assert response.json()["reason"] == "account_not_found"
    assert "outcome rejected\n" in response.json()["receipt"]
    assert base64.b64decode(response.json()["receipt"].split()[-1])


def _raw_event(log: PartnerLog, event: bytes) -> int:
    log.events.append(event)
    log.leaves.append(leaf_hash(event))
    return len(log.events) - 1


@pytest.mark.parametrize(
    "package_of",
    [
        # PostgreSQL stores no NUL character in text or JSON, nor NaN or Infinity in JSON:
        # the import keeps the export's data and the hops as they came
        lambda log, data, witnesses: log.package(
            log.add_event("certificate.exported", data | {"note": "a\x00b"}), witnesses
        ),
        lambda log, data, witnesses: log.package(
            log.add_event("certificate.exported", data | {"note\x00": 1}), witnesses
        ),
        lambda log, data, witnesses: log.package(
            log.add_event("certificate.exported", data | {"volume_wh": float("nan")}), witnesses
        ),
        lambda log, data, witnesses: log.package(
            log.add_event("certificate.exported", data),
            witnesses,
            prior=[{"origin": "unknown.example/x", "checkpoint": "\x00"}],
        ),
        # an entry nested too deeply for the decoder (a RecursionError)
        lambda log, data, witnesses: log.package(
            _raw_event(log, b"[" * 100_000 + b"]" * 100_000), witnesses
        ),
    ],
)
def test_a_package_we_could_not_store_is_refused_and_nothing_is_imported(client, world, package_of):
    # given: a validly signed, witnessed package holding what the database cannot keep
    log, _peer, witness, _seq, account = world
    package = package_of(log, export_event_data(account.number), [witness])
    # when
    response = post(client, log, json.dumps(package).encode())
    # then: refused as an invalid package (a 422, not a 500), and nothing imported
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "transfer_package_invalid"
    assert not CertificateImport.objects.exists() and not Bundle.objects.exists()
