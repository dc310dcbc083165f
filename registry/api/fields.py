"""Serializer fields more than one app's API uses."""

import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.datetimes import DATE_TIME_HINT, DATE_TIME_RE


@extend_schema_field(OpenApiTypes.BYTE)
class Base64Field(serializers.Field):
    """Bytes as standard, padded base64 (RFC 4648 section 4)."""

    def __init__(self, **kwargs) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value) -> str:
        return base64.b64encode(bytes(value)).decode("ascii")


class BoundedDateTimeField(serializers.DateTimeField):
    """A date-time the API takes, exactly as the schema's pattern says
    (`registry.datetimes.DATE_TIME`).

    DRF's own field takes any ISO 8601 time, and one whose UTC instant falls outside
    Python's years 1-9999 (`0001-01-01T00:00:00+19:00`) is a 400 the schema could not
    foretell ("Datetime value out of range"). The schema says `pattern`, this field
    refuses what does not match it, and what matches always converts."""

    default_error_messages = {"rfc3339": DATE_TIME_HINT}

    def to_internal_value(self, value):
        if isinstance(value, str) and not DATE_TIME_RE.fullmatch(value):
            self.fail("rfc3339")
        return super().to_internal_value(value)
