"""The API's default JSON parser: bounded in size and nesting depth (registry.jsonlimits)."""

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings

from registry.errors import RequestTooLarge
from registry.jsonlimits import json_loads_limited


def _strict_constant(value: str):
    raise ValueError(f"{value} is not valid JSON")


class LimitedJSONParser(JSONParser):
    """JSONParser that reads at most API_JSON_MAX_BYTES and nests at most API_JSON_MAX_DEPTH.

    Bigger bodies answer 413 `request_too_large`, deeper ones 400 `json_too_deep`, instead
    of a RecursionError (500) from the standard decoder.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = settings.API_JSON_MAX_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(limit_bytes=limit)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        try:
            return json_loads_limited(
                text,
                max_depth=settings.API_JSON_MAX_DEPTH,
                parse_constant=_strict_constant if api_settings.STRICT_JSON else None,
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
