"""Wire formats: tlog-witness add-checkpoint, sizes, cosignature lines, entry bundles."""

import pytest

from federation.protocol import (
    BUNDLE_CONTENT_TYPE,
    ProtocolError,
    encode_add_checkpoint,
    encode_bundle,
    parse_add_checkpoint,
    parse_bundle,
    parse_signature_lines,
    parse_size,
)
from federation.selectors import log_entry_bundle, log_entry_events
from ledger.models import LedgerEntry
from tests.federation.factories import ledger_grow
from tests.federation.fakes import FakeLog


def test_add_checkpoint_round_trip():
    log = FakeLog()
    log.append(9)
    proof = log.consistency(4, 9)
    body = encode_add_checkpoint(4, proof, log.checkpoint())

    request = parse_add_checkpoint(body)

    assert (request.old_size, request.proof, request.note) == (4, proof, log.checkpoint())
    assert body.startswith(b"old 4\n") and b"\n\n" + log.checkpoint().encode() in body


@pytest.mark.parametrize(
    "body",
    [
        b"old 1\n\n",  # no checkpoint
        "old -1\n\nx\n\n\u2014 a b\n".encode(),  # a negative size
        b"old 1\nAAAA\n\nx",  # a proof line that is not 32 bytes
        b"old 1\n" + b"".join([b"A" * 43 + b"=\n"] * 64) + b"\nx",  # 64 proof lines
        b"old 1 2\n\nx",
    ],
)
def test_add_checkpoint_refuses(body):
    with pytest.raises(ProtocolError):
        parse_add_checkpoint(body)


def test_sizes_and_signature_lines():
    assert parse_size(b"42\n") == 42
    for bad in [b"042\n", b"42", b"-1\n", b"\xff\n"]:
        with pytest.raises(ProtocolError):
            parse_size(bad)
    log = FakeLog()
    line = log.signer.cosign(log.checkpoint().split("\n\n")[0] + "\n", 1700000000)
    [signature] = parse_signature_lines(line.encode())
    assert signature.timestamp == 1700000000
    with pytest.raises(ProtocolError):
        parse_signature_lines(b"not a signature\n")


def test_bundle_round_trip_and_refusals():
    events = [b"", b"a", b"x" * 70_000]
    body = encode_bundle(events)
    assert parse_bundle(body, 3) == events
    assert parse_bundle(b"", 3) == []
    with pytest.raises(ProtocolError, match="more than 2"):
        parse_bundle(body, 2)
    for cut in (2, 6, len(body) - 1):
        with pytest.raises(ProtocolError, match="cut off"):
            parse_bundle(body[:cut], 3)


@pytest.mark.django_db
def test_our_ledger_is_served_as_entry_bundles(client):
    ledger_grow(7)
    events = [bytes(e) for e in LedgerEntry.objects.order_by("seq").values_list("event", flat=True)]

    response = client.get(
        "/api/v1/federation/log/entries/",
        {"start": 2, "limit": 10},
        HTTP_ACCEPT=BUNDLE_CONTENT_TYPE,
    )

    assert response.status_code == 200
    assert response["Content-Type"] == BUNDLE_CONTENT_TYPE
    assert (response["GridProof-Entries-Start"], response["GridProof-Entries-Count"]) == ("2", "5")
    assert response["Cache-Control"] == "public, max-age=5"
    assert parse_bundle(response.content, 10) == events[2:]
    full = client.get("/api/v1/federation/log/entries/", {"start": 0, "limit": 3})
    assert "immutable" in full["Cache-Control"]
    # the schema's `?format=bundle` chooses the renderer, like the Accept header
    chosen = client.get("/api/v1/federation/log/entries/", {"limit": 3, "format": "bundle"})
    assert chosen.status_code == 200 and chosen["Content-Type"] == BUNDLE_CONTENT_TYPE
    assert parse_bundle(chosen.content, 3) == events[:3]
    refused = client.get(
        "/api/v1/federation/log/entries/", {"limit": 10_001}, HTTP_ACCEPT=BUNDLE_CONTENT_TYPE
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid"


@pytest.mark.django_db
@pytest.mark.parametrize(("start", "end"), [(0, 7), (2, 5), (6, 20), (7, 9), (0, 0)])
def test_log_entry_bundle_is_encode_bundle_of_the_entries(start, end):
    # given: entries; on PostgreSQL the database builds the bundle itself
    ledger_grow(7)
    events = log_entry_events(start=start, end=end)

    # when
    bundle, count = log_entry_bundle(start=start, end=end)

    # then
    assert (bundle, count) == (encode_bundle(events), len(events))
