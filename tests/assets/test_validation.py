"""Field rules: EIC check characters, time zones, shares, keys, canonical reading bytes."""

import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assets import codes
from assets.canonical import counter_bytes, reading_bytes, reading_bytes_reference
from assets.validation import (
    decode_public_key,
    decode_signature,
    eic_check_character,
    eic_problem,
    parse_share,
    time_zone_problem,
)
from ledger.canonical import canonical_bytes

REAL_EIC_CODES = [
    "10Y1001A1001A82H",  # DE-LU bidding zone
    "10YDE-VE-------2",  # 50Hertz
    "10YFR-RTE------C",  # France
    "10YNL----------L",  # Netherlands
    "10YAT-APG------L",  # Austria
    "10YCH-SWISSGRIDZ",  # Switzerland
    "10YBE----------2",  # Belgium
    "10YPL-AREA-----S",  # Poland
]


@pytest.mark.parametrize("code", REAL_EIC_CODES)
def test_real_eic_codes_are_valid(code):
    assert eic_check_character(code[:15]) == code[15]
    assert eic_problem(code) is None


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("10Y1001A1001A82X", "check character"),
        ("10Y1001A1001A82", "16 characters"),
        ("10y1001a1001a82h", "16 characters"),
        ("10Y1001A1001A8_H", "16 characters"),
    ],
)
def test_bad_eic_codes_say_why(code, fragment):
    assert fragment in eic_problem(code)


def test_every_single_character_change_is_caught():
    code = "10Y1001A1001A82H"
    for position in range(15):
        for char in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-":
            if char != code[position]:
                changed = code[:position] + char + code[position + 1 :]
                assert eic_problem(changed) is not None, changed


def test_time_zones():
    assert time_zone_problem("Europe/Berlin") is None
    assert time_zone_problem("UTC") is None
    assert "Unknown" in time_zone_problem("Europe/Atlantis")
    assert time_zone_problem("") is not None
    assert time_zone_problem("../etc/passwd") is not None


@pytest.mark.parametrize(
    ("given", "share"),
    [("1/3", Fraction(1, 3)), ("2/6", Fraction(1, 3)), ("0.25", Fraction(1, 4)), ("1", 1), (1, 1)],
)
def test_shares(given, share):
    assert parse_share(given) == share


@pytest.mark.parametrize(
    "given",
    [0.25, "0", "3/2", "1/0", "-1/3", "a/b", "", None, True, "1e-3", "\u0661/\u0662"],
)
def test_bad_shares(given):
    with pytest.raises(ValueError):
        parse_share(given)


def test_keys_and_signatures_decode_from_base64_or_hex():
    raw = bytes(range(32))
    assert decode_public_key(raw.hex()) == raw
    assert decode_public_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") == raw
    with pytest.raises(ValueError):
        decode_public_key("AAEC")
    with pytest.raises(ValueError):
        decode_signature(raw.hex())


times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
serials = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")


@given(serial=serials, start=times, end=times, wh=st.integers(0, 2**53 - 1))
def test_reading_bytes_are_rfc8785_through_ledger_canonical(serial, start, end, wh):
    assert reading_bytes(serial, start, end, wh) == reading_bytes_reference(serial, start, end, wh)


@given(serial=serials, time=times, counter=st.integers(0, 2**53 - 1))
def test_counter_bytes_are_rfc8785(serial, time, counter):
    expected = canonical_bytes({"meter": serial, "time": time, "counter_wh": counter})
    assert counter_bytes(serial, time, counter) == expected


def test_documented_example_bytes():
    start = dt.datetime(2025, 6, 1, 10, tzinfo=dt.UTC)
    data = reading_bytes("SRC-PV-0001", start, start + dt.timedelta(hours=1), 41250)
    assert data == (
        b'{"end":"2025-06-01T11:00:00.000000Z","meter":"SRC-PV-0001",'
        b'"start":"2025-06-01T10:00:00.000000Z","wh":41250}'
    )


def test_eecs_codes_ship_with_labels_and_combinations():
    assert codes.technologies()["T010101"] == "Solar - Photovoltaic - Classic silicon"
    assert codes.technologies()["T020001"] == "Wind - Unspecified - Onshore"
    assert "Wind" in codes.energy_sources()["F01050100"]
    assert "Solar" in codes.energy_sources()["F01040100"]
    assert codes.combination_allowed("T010101", "F01040100")
    assert codes.combination_allowed("T020002", "F01050100")
    assert not codes.combination_allowed("T010101", "F01050100")
    assert codes.combination_allowed("T070000", "F02030100")
