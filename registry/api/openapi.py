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

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from registry.api.exceptions import ErrorSerializer
from registry.api.schema import error_responses
from registry.api.serializers import StrictInputSerializer

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1

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
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """What DRF checks and the plain mapping leaves out: a trimmed text that may not be
        blank needs a non-space character; an integer without bounds fits 64 bits (the
        database's, and what the API's filters and parsers accept); a list that may not be
        empty has an item; a text checked by a regular expression shows it."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or not isinstance(schema, dict):
            return schema
        if (
            isinstance(field, serializers.CharField)
            and not field.allow_blank
            and field.trim_whitespace
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "enum" not in schema
            and "format" not in schema
        ):
            schema["pattern"] = "\\S"
        if schema.get("type") == "integer":
            schema.setdefault("minimum", BIGINT_MIN)
            schema.setdefault("maximum", BIGINT_MAX)
        if schema.get("type") == "array" and getattr(field, "allow_empty", True) is False:
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        if schema.get("type") == "string" and "pattern" not in schema:
            for validator in getattr(field, "validators", []):
                if isinstance(validator, RegexValidator) and not validator.inverse_match:
                    schema["pattern"] = validator.regex.pattern
                    break
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self.default_error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    _error(status), str(status), ["application/json"], direction
                )
        return dict(sorted(responses.items()))


def bound_integer_parameters(result, generator, request, public):
    """Postprocessing hook: every integer path and query parameter without bounds is a
    64-bit integer (the API's filters refuse larger ones with 400 "Out of range.")."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.get("type") == "integer":
                    schema.setdefault("minimum", BIGINT_MIN)
                    schema.setdefault("maximum", BIGINT_MAX)
    return result
