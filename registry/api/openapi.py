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

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from registry.api.exceptions import ErrorSerializer
from registry.api.schema import error_responses

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

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self.default_error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    _error(status), str(status), ["application/json"], direction
                )
        return dict(sorted(responses.items()))
