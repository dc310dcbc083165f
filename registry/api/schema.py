"""Shared OpenAPI pieces: every documented error uses ErrorSerializer."""

from drf_spectacular.utils import OpenApiResponse

from registry.api.exceptions import ErrorSerializer

_DESCRIPTIONS = {
    400: "Invalid input (code `invalid`, per-field errors in `extra.fields`).",
    401: "Not authenticated.",
    403: "Not allowed for this user or organisation.",
    404: "Not found or not visible to this user.",
    409: "Conflicts with the current state.",
    413: "Request body too large.",
    429: "Throttled; `extra.retry_after_seconds` says when to retry.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error responses for a view, all in the common error shape."""
    return {s: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[s]) for s in statuses}
