"""Parsers for bulk readings: an upload becomes the raw rows `readings_submit` takes.

JSON and CSV bodies are read as streams, row by row (never the whole body in memory), by
the readers of `assets.readings_io`. A multipart upload is parsed by DRF's MultiPartParser
and its `file` field read by the JSON or CSV parser. `readings_upload_rows` is the one
step the readings view calls: it also covers what DRF does not hand to a parser.
"""

import io
from collections.abc import Iterator

from django.conf import settings
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request

from assets.errors import ReadingsMalformed, ReadingsUploadTooLarge
from assets.readings_io import RawRow, iter_csv_rows, iter_json_rows


class ReadingsJSONParser(BaseParser):
    """A JSON array of reading objects (or one object), decoded element by element.

    Not a subclass of DRF's JSONParser, which DRF feeds the whole body in memory.
    """

    media_type = "application/json"
    media_types = ("application/json",)

    def parse(self, stream, media_type=None, parser_context=None) -> Iterator[RawRow]:
        return iter_json_rows(stream, max_bytes=settings.READINGS_UPLOAD_MAX_BYTES)


class ReadingsCSVParser(BaseParser):
    """UTF-8 CSV with a header line, row by row."""

    media_type = "text/csv"
    media_types = ("text/csv", "application/csv", "text/plain")

    def parse(self, stream, media_type=None, parser_context=None) -> Iterator[RawRow]:
        return iter_csv_rows(stream, max_bytes=settings.READINGS_UPLOAD_MAX_BYTES)


def _content_type(request: Request) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


class ReadingsNegotiation(DefaultContentNegotiation):
    """Picks the parser listing the request's content type (lower-cased, without parameters)
    among its `media_types`; any other type, wildcards included, is refused with 415."""

    def select_parser(self, request: Request, parsers) -> BaseParser:
        content_type = _content_type(request)
        for parser in parsers:
            if content_type in getattr(parser, "media_types", (parser.media_type,)):
                return parser
        raise UnsupportedMediaType(content_type)


def readings_upload_rows(request: Request) -> Iterator[RawRow]:
    """The raw rows of a readings upload, by the view's parsers (use ReadingsNegotiation).

    Checked first, before anything is read: the declared Content-Length against
    READINGS_UPLOAD_MAX_BYTES (the readers also count the bytes they stream), then the
    content type (415). DRF gives an empty body to no parser; it goes to its parser here,
    so that it is refused in its format's words. A multipart upload must carry the
    readings as its `file` field: JSON when its name ends in .json or its type is
    application/json, CSV otherwise.
    """
    limit = settings.READINGS_UPLOAD_MAX_BYTES
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        raise ReadingsUploadTooLarge(limit_bytes=limit, content_length=length)
    parser = request.negotiator.select_parser(request, request.parsers)
    if isinstance(parser, MultiPartParser):
        return _file_rows(request, limit)
    rows = request.data
    return rows if isinstance(rows, Iterator) else parser.parse(io.BytesIO(b""))


def _file_rows(request: Request, limit: int) -> Iterator[RawRow]:
    upload = request.FILES.get("file")
    if upload is None:
        raise ReadingsMalformed("Upload the readings as the multipart field 'file'.")
    if upload.size > limit:
        raise ReadingsUploadTooLarge(limit_bytes=limit, content_length=upload.size)
    is_json = upload.name.lower().endswith(".json") or (
        (upload.content_type or "").startswith("application/json")
    )
    parser = ReadingsJSONParser() if is_json else ReadingsCSVParser()
    return parser.parse(upload)
