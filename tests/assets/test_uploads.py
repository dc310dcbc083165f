"""Bulk uploads through the API: CSV body, multipart file, JSON array; malformed input."""

import io
import json

import pytest
from django.test import override_settings

from assets.errors import ReadingsUploadTooLarge
from assets.readings_io import iter_csv_rows, iter_json_rows
from tests.assets.factories import hours_ago, interval_row
from tests.conftest import client_for

URL = "/api/v1/readings/"


def csv_body(rows, header="meter,start,end,wh,signature") -> bytes:
    lines = [header] + [
        f"{r['meter']},{r['start']},{r['end']},{r['wh']},{r.get('signature', '')}" for r in rows
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def rows(meter, key):
    return [interval_row(meter, hours_ago(h), 1000 + h, key=key) for h in range(6, 0, -1)]


def post_csv(client, body: bytes, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(URL + (f"?{query}" if query else ""), data=body, content_type="text/csv")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "extra"} and body["code"] == code
    return body


def test_csv_body(producer, rows, snapshot):
    before = snapshot()
    response = post_csv(client_for(producer), csv_body(rows))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["stored"], body["batch"]["size"]) == ("accepted", 6, 6)
    assert snapshot()["Reading"] == before["Reading"] + 6


def test_csv_with_bom_crlf_and_column_order(producer, rows):
    lines = ["wh,meter,end,start,signature"] + [
        f"{r['wh']},{r['meter']},{r['end']},{r['start']},{r['signature']}" for r in rows
    ]
    body = "\ufeff" + "\r\n".join(lines) + "\r\n"
    response = post_csv(client_for(producer), body.encode())
    assert response.status_code == 201, response.content


def test_multipart_file(producer, rows):
    upload = io.BytesIO(csv_body(rows))
    upload.name = "readings.csv"
    response = client_for(producer).post(URL, {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["stored"] == 6


def test_json_array(producer, rows):
    response = client_for(producer).post(URL, rows, format="json")
    assert response.status_code == 201, response.content
    again = client_for(producer).post(URL, rows, format="json")
    assert again.status_code == 200 and again.json()["status"] == "unchanged"


def test_single_json_object(producer, rows):
    response = client_for(producer).post(URL, rows[0], format="json")
    assert response.status_code == 201 and response.json()["stored"] == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"meter,start,wh\nX,2025-01-01T00:00:00Z,1\n", "header"),
        (b"meter,start,end,wh,colour\n", "header"),
        (b"meter,start,end,wh\n\xff\xfe\x00garbage\n", "UTF-8"),
        (b'meter,start,end,wh\n"SRC,2025\n', "CSV"),
        (b"meter,start,end,wh\n", "no readings"),
    ],
)
def test_malformed_csv(producer, meter, snapshot, body, fragment):
    before = snapshot()
    response = post_csv(client_for(producer), body)
    error = assert_error(response, 400, "readings_malformed")
    assert fragment in error["detail"]
    assert snapshot() == before


def test_latin1_file_is_refused_with_its_line(producer, rows, snapshot):
    body = csv_body(rows) + "Zähler-1,x,y,1,\n".encode("latin-1")
    before = snapshot()
    error = assert_error(post_csv(client_for(producer), body), 400, "readings_malformed")
    assert "line 8" in error["detail"]
    assert snapshot() == before


def test_bad_numbers_and_field_counts_are_per_row(producer, rows, snapshot):
    body = csv_body(rows).decode().splitlines()
    body[2] = body[2].rsplit(",", 2)[0] + ",12.5," + body[2].rsplit(",", 1)[1]
    body[4] = body[4] + ",extra"
    before = snapshot()
    response = post_csv(client_for(producer), ("\n".join(body) + "\n").encode())
    error = assert_error(response, 400, "readings_rejected")
    assert [(e["row"], e["field"], e["code"]) for e in error["extra"]["errors"]] == [
        (2, "wh", "invalid_integer"),
        (4, None, "field_count"),
    ]
    assert error["extra"]["rows"] == 6 and error["extra"]["error_count"] == 2
    assert snapshot() == before


def test_conflict_is_409_with_rows(producer, meter, key, rows, snapshot):
    client = client_for(producer)
    assert client.post(URL, rows, format="json").status_code == 201
    changed = [interval_row(meter, hours_ago(h), 5, key=key) for h in range(6, 0, -1)]
    before = snapshot()
    error = assert_error(client.post(URL, changed, format="json"), 409, "readings_conflict")
    assert {e["code"] for e in error["extra"]["errors"]} == {"reading_conflict"}
    assert snapshot() == before


@override_settings(READINGS_UPLOAD_MAX_BYTES=300)
def test_oversized_upload_is_413(producer, rows, snapshot):
    body = csv_body(rows)
    assert len(body) > 300
    before = snapshot()
    assert_error(post_csv(client_for(producer), body), 413, "upload_too_large")
    assert_error(client_for(producer).post(URL, rows, format="json"), 413, "upload_too_large")
    upload = io.BytesIO(body)
    upload.name = "readings.csv"
    response = client_for(producer).post(URL, {"file": upload}, format="multipart")
    assert_error(response, 413, "upload_too_large")
    assert snapshot() == before


def test_stream_limit_without_content_length():
    body = b"meter,start,end,wh\n" + b"M,a,b,1\n" * 100
    with pytest.raises(ReadingsUploadTooLarge):
        list(iter_csv_rows(io.BytesIO(body), max_bytes=200))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b'[{"meter": 1},', "ends early"),
        (b'[{"meter": 1, }]', "Malformed JSON in row 1"),
        (b'[{"meter": "x"} {}]', "expected ','"),
        (b'"readings"', "Expected a JSON array"),
        (b"[]", "no readings"),
        (b"[{}] trailing", "Unexpected data"),
        (b"[\xff]", "UTF-8"),
        # int() refuses over 4,300 digits with a ValueError, not a JSONDecodeError: a 500
        (b'[{"meter": "SRC-PV-0001", "wh": ' + b"9" * 5000 + b"}]", "Malformed JSON in row 1"),
    ],
)
def test_malformed_json(producer, meter, snapshot, body, fragment):
    before = snapshot()
    response = client_for(producer).post(URL, data=body, content_type="application/json")
    error = assert_error(response, 400, "readings_malformed")
    assert fragment in error["detail"], error
    assert snapshot() == before


def test_json_stream_parses_across_chunk_boundaries(monkeypatch):
    import assets.readings_io as readings_io

    monkeypatch.setattr(readings_io, "CHUNK", 7)
    items = [
        {"meter": f"M{i}", "start": "2025-01-01T00:00:00Z", "end": "2025-01-01T01:00:00Z", "wh": i}
        for i in range(50)
    ]
    body = json.dumps(items, indent=2).encode()
    rows = list(iter_json_rows(io.BytesIO(body), max_bytes=10**6))
    assert [row[5] for row in rows] == list(range(50))
    assert [row[0] for row in rows] == list(range(1, 51))


def test_unsupported_media_type(producer):
    response = client_for(producer).post(URL, data=b"<xml/>", content_type="application/xml")
    assert_error(response, 415, "unsupported_media_type")


def test_anonymous_cannot_submit(api_client, rows):
    assert api_client.post(URL, rows, format="json").status_code == 401


def test_accept_valid_over_http(producer, rows, snapshot):
    rows[1]["wh"] = -1
    before = snapshot()
    response = client_for(producer).post(URL + "?accept_valid=true", rows, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["stored"], body["error_count"]) == (5, 1)
    assert body["errors"][0] == {
        "row": 2,
        "field": "wh",
        "code": "negative",
        "message": "Energy cannot be negative.",
    }
    assert snapshot()["Reading"] == before["Reading"] + 5


# The readings parsers (assets.api.parsers) pick the format by the exact content type,
# case-insensitive and without its parameters, and check the declared size first.


@pytest.mark.parametrize(
    "content_type", ["application/csv", "text/plain", "Text/CSV; charset=utf-8"]
)
def test_csv_under_its_other_content_types(producer, rows, content_type):
    response = client_for(producer).post(URL, data=csv_body(rows), content_type=content_type)
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("content_type", "body"), [("text/*", b"meter,start,end,wh\n"), ("application/xml", b"")]
)
def test_wildcard_or_empty_body_of_another_type_is_415(producer, content_type, body):
    response = client_for(producer).post(URL, data=body, content_type=content_type)
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["detail"] == f'Unsupported media type "{content_type}" in request.'


@override_settings(READINGS_UPLOAD_MAX_BYTES=10)
def test_declared_size_is_checked_before_the_content_type(producer):
    response = client_for(producer).post(URL, data=b"<xml>" * 10, content_type="application/xml")
    error = assert_error(response, 413, "upload_too_large")
    assert error["extra"] == {"limit_bytes": 10, "content_length": 50}


def test_multipart_without_file_field(producer, snapshot):
    before = snapshot()
    response = client_for(producer).post(URL, {"other": "x"}, format="multipart")
    error = assert_error(response, 400, "readings_malformed")
    assert "'file'" in error["detail"]
    assert snapshot() == before


def test_multipart_json_file(producer, rows):
    upload = io.BytesIO(json.dumps(rows).encode())
    upload.name = "readings.json"
    response = client_for(producer).post(URL, {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["stored"] == 6


@pytest.mark.parametrize(
    "body",
    ["[" + "[" * 1000 + "]" * 1000 + "]", '[{"meter": ' + "[" * 1000 + "]" * 1000 + "}]"],
    ids=["deep-array", "deep-value"],
)
def test_deeply_nested_json_readings_are_400_json_too_deep(producer, meter, body, snapshot):
    # given
    before = snapshot()
    # when
    response = client_for(producer).post(URL, data=body, content_type="application/json")
    # then
    assert_error(response, 400, "json_too_deep")
    assert snapshot() == before


def test_deeply_nested_json_file_upload_is_400_json_too_deep(producer, meter):
    # given
    upload = io.BytesIO(("[" + "[" * 1000 + "]" * 1000 + "]").encode())
    upload.name = "readings.json"
    # when
    response = client_for(producer).post(URL, {"file": upload}, format="multipart")
    # then
    assert_error(response, 400, "json_too_deep")
