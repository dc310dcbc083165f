"""The schema class of the whole API: every operation documents the errors it can answer.

Views list their own error responses (registry.api.schema.error_responses); on top of them
every operation gets the ones that the common plumbing can answer anywhere, so the schema
never misses a status the server sends:

- 400: input limits (NUL, over-long parameters, JSON depth), bad filters and page numbers;
- 401: a wrong, revoked or expired token (where the view authenticates);
- 403: permissions and CSRF (where the view authenticates);
- 404: a missing object, a page past the last, or an unknown `?format=` (DRF answers 404
  for that on any operation);
- 413 and 415: a body too large or of an unsupported type (operations that take a body);
- 429: throttling; 503: the database is unreachable (`database_unavailable`).
"""

from django.conf import settings
from django.core.validators import RegexValidator, URLValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from registry.api.exceptions import ErrorSerializer
from registry.api.fields import BoundedDateTimeField
from registry.api.schema import error_responses
from registry.api.serializers import StrictInputSerializer
from registry.datetimes import DATE_TIME
from registry.text_patterns import SPACE

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# DRF's CharField refuses NUL anywhere (ProhibitNullCharactersValidator) and, trimming
# spaces, refuses a blank text unless allow_blank.
TEXT = "^[^\\x00]*$"
NON_BLANK_TEXT = f"^[^\\x00]*[^{SPACE}\\x00][^\\x00]*$"
# Every JSON type but null (OpenAPI 3.0 has no way to say "anything but null" otherwise).
JSON_TYPES = ("object", "array", "string", "number", "boolean")


def _decimal_pattern(field: serializers.DecimalField) -> str:
    """A decimal string DRF accepts: a sign, up to the whole and fraction digits the field
    allows, and at least one digit (drf-spectacular's own pattern also matches "" and ".")."""
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    places = field.decimal_places
    whole = None if field.max_digits is None else field.max_digits - (places or 0)
    w = "[0-9]+" if whole is None else f"[0-9]{{1,{whole}}}"
    f = "[0-9]*" if places is None else f"[0-9]{{0,{places}}}"
    f1 = "[0-9]+" if places is None else f"[0-9]{{1,{places}}}"
    if places == 0:
        return f"^{sign}{w}$"
    if whole == 0:
        return f"^{sign}0?\\.{f1}$"
    return f"^{sign}(?:{w}(?:\\.{f})?|\\.{f1})$"


_EXTRA_DESCRIPTIONS = {
    415: "Unsupported media type.",
    503: "The database is unreachable (code `database_unavailable`); see `Retry-After`.",
}


def _error(status: int) -> OpenApiResponse:
    if status in _EXTRA_DESCRIPTIONS:
        return OpenApiResponse(ErrorSerializer, description=_EXTRA_DESCRIPTIONS[status])
    return error_responses(status)[status]


class RegistryAutoSchema(AutoSchema):
    def default_error_statuses(self) -> list[int]:
        statuses = [400, 404, 429, 503]
        if getattr(self.view, "authentication_classes", None):
            statuses += [401, 403]
        if self.method in {"POST", "PUT", "PATCH"}:
            statuses += [413, 415]
        return statuses

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        """A strict input serializer refuses fields it does not declare: say so."""
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictInputSerializer):
            schema["additionalProperties"] = False
        if direction == "request" and getattr(serializer, "min_properties", None):
            schema["minProperties"] = serializer.min_properties
        return schema

    def _insert_field_validators(self, field, schema):
        """A text that may be blank and has a pattern or format is written as `oneOf` the
        text and the empty text; the text's alternative must not take "" too, or a blank
        text matches both and `oneOf` (exactly one) calls it invalid."""
        super()._insert_field_validators(field, schema)
        alternatives = schema.get("oneOf")
        if (
            isinstance(alternatives, list)
            and len(alternatives) == 2
            and alternatives[1] == {"type": "string", "maxLength": 0}
            and alternatives[0].get("type") == "string"
        ):
            alternatives[0]["minLength"] = max(alternatives[0].get("minLength", 0), 1)

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """What DRF checks and the plain mapping leaves out: a text checked by a regular
        expression shows it; a text never holds NUL (DRF refuses it), and a trimmed one
        that may not be blank needs another character than a space; a decimal given as a
        string has a digit; a date-time is RFC 3339 in years 1000-8999 (`DATE_TIME`,
        which BoundedDateTimeField enforces); an integer without bounds fits 64 bits (the
        database's, and what the API's filters and parsers accept); a list that may not be
        empty, or has a
        minimum or maximum length, says so; a JSON value that may not be null says which
        types it can be."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or not isinstance(schema, dict):
            return schema
        if schema.get("type") == "string" and "pattern" not in schema:
            for validator in getattr(field, "validators", []):
                if (
                    isinstance(validator, RegexValidator)
                    and not isinstance(validator, URLValidator)  # Python-only syntax (\Z)
                    and not validator.inverse_match
                ):
                    schema["pattern"] = validator.regex.pattern
                    break
        if (
            isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "enum" not in schema
            and schema.get("format") in (None, "uri", "email")
        ):
            if not field.allow_blank and field.trim_whitespace:
                schema["pattern"] = NON_BLANK_TEXT
            else:
                schema["pattern"] = TEXT
        if isinstance(field, BoundedDateTimeField):
            schema["pattern"] = DATE_TIME
        if isinstance(field, serializers.DecimalField) and schema.get("type") == "string":
            schema["pattern"] = getattr(field, "schema_pattern", None) or _decimal_pattern(field)
        if schema.get("type") == "integer":
            schema.setdefault("minimum", BIGINT_MIN)
            schema.setdefault("maximum", BIGINT_MAX)
        if schema.get("type") == "array":
            if getattr(field, "allow_empty", True) is False:
                schema["minItems"] = max(schema.get("minItems", 0), 1)
            if getattr(field, "min_length", None) is not None:
                schema["minItems"] = max(schema.get("minItems", 0), field.min_length)
            if getattr(field, "max_length", None) is not None:
                schema.setdefault("maxItems", field.max_length)
        if (
            isinstance(field, serializers.JSONField)
            and not field.allow_null
            and not any(k in schema for k in ("type", "$ref", "oneOf", "anyOf", "allOf"))
        ):
            schema["anyOf"] = [{"type": t} for t in JSON_TYPES]
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        """A list body that may not be empty has an item; a body that must name at least
        one field (`min_properties`) is required even though each field is optional."""
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if (
            isinstance(serializer, serializers.ListSerializer)
            and isinstance(schema, dict)
            and (serializer.allow_empty is False or serializer.min_length)
        ):
            schema["minItems"] = max(1, serializer.min_length or 0)
        if getattr(serializer, "min_properties", None):
            required = True
        if isinstance(serializer, PolymorphicProxySerializer):
            required = True  # one of several bodies, each with required fields
        if isinstance(serializer, dict) and (
            serializer.get("required") or serializer.get("minLength")
        ):
            required = True  # a raw schema that an empty body does not satisfy
        return schema, required

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self.default_error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    _error(status), str(status), ["application/json"], direction
                )
        return dict(sorted(responses.items()))


def bound_parameters(result, generator, request, public):
    """Postprocessing hook: what the input-limits middleware (registry/middleware.py)
    refuses with a 400 before any view, the schema says of every path and query parameter:
    an integer without bounds is a 64-bit integer (the API's filters refuse larger ones
    with "Out of range."); a text is at most API_PARAMETER_MAX_LENGTH characters and holds
    no NUL; a date-time matches `DATE_TIME`, as the filters check."""
    limit = settings.API_PARAMETER_MAX_LENGTH
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") not in {"path", "query"}:
                    continue
                schema = parameter.get("schema", {})
                if schema.get("type") == "array":
                    schema = schema.get("items", {})
                if schema.get("type") == "integer":
                    # a path's integer is digits (the routes' [0-9]+): never negative
                    schema.setdefault("minimum", 0 if parameter["in"] == "path" else BIGINT_MIN)
                    schema.setdefault("maximum", BIGINT_MAX)
                if schema.get("type") == "string" and not {"enum", "format"} & set(schema):
                    schema["maxLength"] = min(schema.get("maxLength", limit), limit)
                    schema.setdefault("pattern", TEXT)
                if schema.get("format") == "date-time":
                    schema.setdefault("pattern", DATE_TIME)
    return result
