"""Streaming readers for bulk readings: CSV and JSON arrays become raw rows one at a time.

A raw row is the tuple `(row, is_counter, meter, start_or_time, end, value, signature, error)`:
`row` counts data rows from 1 (a CSV header is not a row), `value` is wh or counter_wh as
given (str or int), `error` is None or `(field, code, message)` for a row that has the wrong
shape. Problems with the upload as a whole (empty, not UTF-8, malformed JSON, too large)
raise ReadingsMalformed or ReadingsUploadTooLarge before anything is stored.
"""

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from assets.errors import ReadingsMalformed, ReadingsUploadTooLarge
from registry.jsonlimits import json_raw_decode_limited

RawRow = tuple[int, bool, Any, Any, Any, Any, Any, tuple[str | None, str, str] | None]

INTERVAL_FIELDS = ("meter", "start", "end", "wh")
COUNTER_FIELDS = ("meter", "time", "counter_wh")
OPTIONAL_FIELDS = ("signature",)
CHUNK = 64 * 1024
MAX_JSON_ROW_CHARS = 64 * 1024
# A reading is a flat object; anything nested deeper is refused (400 json_too_deep) rather
# than left to the recursive decoder.
MAX_JSON_ROW_DEPTH = 4


class _LimitedReader(io.RawIOBase):
    """Reads a file-like object and refuses to go beyond `limit` bytes."""

    def __init__(self, source: BinaryIO, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        if not data:
            return 0
        self.consumed += len(data)
        if self.consumed > self._limit:
            raise ReadingsUploadTooLarge(limit_bytes=self._limit)
        buffer[: len(data)] = data
        return len(data)


def limited(source: BinaryIO, limit: int) -> io.BufferedReader:
    return io.BufferedReader(_LimitedReader(source, limit), buffer_size=CHUNK)


def _header_kind(header: list[str]) -> tuple[bool, dict[str, int]]:
    names = [name.strip().lower() for name in header]
    positions = {name: i for i, name in enumerate(names)}
    for is_counter, required in ((False, INTERVAL_FIELDS), (True, COUNTER_FIELDS)):
        allowed = set(required) | set(OPTIONAL_FIELDS)
        if set(required) <= set(names) and set(names) <= allowed and len(names) == len(positions):
            return is_counter, positions
    raise ReadingsMalformed(
        "The CSV header must be `meter,start,end,wh[,signature]` (interval readings) or "
        "`meter,time,counter_wh[,signature]` (cumulative counters).",
        header=header[:20],
    )


def _utf8_lines(source: BinaryIO) -> Iterator[str]:
    """Decoded lines (endings kept, as csv wants them); a bad byte names its line."""
    for number, line in enumerate(source, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ReadingsMalformed(
                f"The file is not UTF-8 text (undecodable bytes on line {number}).", line=number
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def iter_csv_rows(source: BinaryIO, *, max_bytes: int) -> Iterator[RawRow]:
    """Rows of a UTF-8 CSV file (a byte-order mark is allowed) with a header line."""
    reader = csv.reader(_utf8_lines(limited(source, max_bytes)), strict=True)
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise ReadingsMalformed("The file is empty: expected a CSV header line.") from None
        is_counter, pos = _header_kind(header)
        width = len(header)
        meter_i = pos["meter"]
        a_i = pos["time"] if is_counter else pos["start"]
        b_i = None if is_counter else pos["end"]
        value_i = pos["counter_wh"] if is_counter else pos["wh"]
        sig_i = pos.get("signature")
        row = 0
        for values in reader:
            if not values:
                continue  # a blank line
            row += 1
            if len(values) != width:
                message = f"Expected {width} fields, found {len(values)}."
                yield (
                    row,
                    is_counter,
                    None,
                    None,
                    None,
                    None,
                    None,
                    (None, "field_count", message),
                )
                continue
            signature = values[sig_i] if sig_i is not None else None
            yield (
                row,
                is_counter,
                values[meter_i],
                values[a_i],
                values[b_i] if b_i is not None else None,
                values[value_i],
                signature or None,
                None,
            )
    except csv.Error as exc:
        raise ReadingsMalformed(
            f"Malformed CSV near line {reader.line_num}: {exc}.", line=reader.line_num
        ) from None


def row_from_mapping(row: int, item: Any) -> RawRow:
    """A raw row from one JSON object."""
    if not isinstance(item, Mapping):
        return (row, False, None, None, None, None, None, (None, "not_an_object", "Not an object."))
    is_counter = "counter_wh" in item or "time" in item
    required = COUNTER_FIELDS if is_counter else INTERVAL_FIELDS
    unknown = sorted(str(key) for key in item if key not in required and key not in OPTIONAL_FIELDS)
    if unknown:
        message = f"Unknown field {unknown[0]!r}."
        return (
            row,
            is_counter,
            None,
            None,
            None,
            None,
            None,
            (unknown[0], "unknown_field", message),
        )
    for name in required:
        if item.get(name) is None:
            return (row, is_counter, None, None, None, None, None, (name, "required", "Required."))
    if is_counter:
        a, b, value = item["time"], None, item["counter_wh"]
    else:
        a, b, value = item["start"], item["end"], item["wh"]
    return (row, is_counter, item["meter"], a, b, value, item.get("signature") or None, None)


def iter_mapping_rows(items: Iterable[Any]) -> Iterator[RawRow]:
    """Rows of already-parsed objects (a service caller's list of dicts)."""
    for row, item in enumerate(items, 1):
        yield row_from_mapping(row, item)


class _JsonStream:
    """An incremental UTF-8 text buffer over a byte stream."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        data = self._source.read(CHUNK)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise ReadingsMalformed("The body is not UTF-8 text.") from None
        if not data:
            self.eof = True
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(data) or bool(text)

    def skip_space(self) -> str:
        """The next non-blank character (consumed only by the caller), or '' at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""


def iter_json_rows(source: BinaryIO, *, max_bytes: int) -> Iterator[RawRow]:
    """Rows of a JSON array of reading objects (or one object), decoded element by element."""
    stream = _JsonStream(limited(source, max_bytes))
    decoder = json.JSONDecoder()
    first = stream.skip_space()
    if first == "":
        raise ReadingsMalformed("The body is empty: expected a JSON array of readings.")
    if first not in "[{":
        raise ReadingsMalformed("Expected a JSON array of readings (or one reading object).")
    single = first == "{"
    if not single:
        stream.pos += 1
    row = 0
    while True:
        char = stream.skip_space()
        if not single and char == "]" and row == 0:
            stream.pos += 1
            break
        if char == "":
            raise ReadingsMalformed(f"The JSON array ends early (after row {row}).")
        while True:
            try:
                item, end = json_raw_decode_limited(
                    decoder, stream.buf, stream.pos, max_depth=MAX_JSON_ROW_DEPTH
                )
                break
            except json.JSONDecodeError as exc:
                if len(stream.buf) - stream.pos > MAX_JSON_ROW_CHARS or not stream.more():
                    raise ReadingsMalformed(
                        f"Malformed JSON in row {row + 1}: {exc.msg}.", row=row + 1
                    ) from None
            except ValueError as exc:  # a number of over 4,300 digits (Python's int limit)
                raise ReadingsMalformed(
                    f"Malformed JSON in row {row + 1}: {exc}.", row=row + 1
                ) from None
        stream.pos = end
        row += 1
        yield row_from_mapping(row, item)
        if single:
            break
        char = stream.skip_space()
        stream.pos += 1
        if char == "]":
            break
        if char != ",":
            raise ReadingsMalformed(f"Malformed JSON after row {row}: expected ',' or ']'.")
    if stream.skip_space() != "":
        raise ReadingsMalformed("Unexpected data after the JSON value.")
