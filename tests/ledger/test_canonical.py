"""ledger.canonical: the fast writer gives RFC 8785's bytes on everything an event holds."""

import datetime as dt
from types import MappingProxyType

import pytest
import rfc8785
from django.db import models
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, EventEncodingError, canonical_bytes

# Keys and strings from all of Unicode, surrogates included, so that the UTF-16 member
# order (characters above U+FFFF against U+E000-U+FFFF) and the refusals are exercised.
text = st.text(st.characters(), max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=1 - MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER - 1)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=5),
    max_leaves=25,
)


def _reference(value):
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as error:
        return type(error)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(text, values, max_size=6))
def test_the_same_bytes_as_the_rfc8785_package(event):
    expected = _reference(event)
    if isinstance(expected, bytes):
        assert canonical_bytes(event) == expected
    else:
        with pytest.raises(expected):
            canonical_bytes(event)


def test_members_in_utf16_order_where_it_differs_from_code_points():
    # U+1F600 is D83D DE00 in UTF-16: before U+FB01 there, after it by code point.
    event = {"\ufb01": 1, "\U0001f600": 2, "a": 3}
    assert canonical_bytes(event) == rfc8785.dumps(event)
    assert canonical_bytes(event).index("\U0001f600".encode()) < canonical_bytes(event).index(
        "\ufb01".encode()
    )


def test_escapes_and_the_event_values():
    event = {
        "s": 'quote " backslash \\ controls \b\f\n\r\t\x00\x1f del \x7f \u2028',
        "at": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        "n": [1 - MAX_SAFE_INTEGER, 0, MAX_SAFE_INTEGER - 1, True, None],
    }
    assert canonical_bytes(event) == rfc8785.dumps({**event, "at": "2026-01-02T03:04:05.000006Z"})


def test_what_an_event_cannot_hold_is_still_refused():
    with pytest.raises(EventEncodingError):
        canonical_bytes({"x": 0.5})
    with pytest.raises(EventEncodingError):
        canonical_bytes({"x": MAX_SAFE_INTEGER})  # RFC 8785's own limit, refused before too
    with pytest.raises(EventEncodingError):
        canonical_bytes({"x": [-MAX_SAFE_INTEGER]})


def test_subclasses_and_other_containers_take_the_general_path():
    # given values whose exact type is not a built-in one: choices (str and int
    # subclasses), a read-only mapping, a tuple, a huge int subclass and a non-str key

    class Colour(models.TextChoices):
        RED = "red"

    class Level(models.IntegerChoices):
        HIGH = 3

    class Big(int):
        pass

    event = {"c": Colour.RED, "l": Level.HIGH, "m": MappingProxyType({"b": 1, "a": (2, 3)})}

    # then they encode as their plain values, and the limits still hold
    assert canonical_bytes(event) == b'{"c":"red","l":3,"m":{"a":[2,3],"b":1}}'
    with pytest.raises(EventEncodingError):
        canonical_bytes({"x": Big(MAX_SAFE_INTEGER)})
    with pytest.raises(EventEncodingError):
        canonical_bytes({"x": {1: "not a string key"}})
    with pytest.raises(EventEncodingError):
        canonical_bytes({"x": MappingProxyType({2: 0})})
