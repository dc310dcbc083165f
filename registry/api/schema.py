"""Shared OpenAPI pieces: every documented error uses ErrorSerializer."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from registry.api.exceptions import ErrorSerializer

_DESCRIPTIONS = {
    400: "Invalid input (code `invalid`, per-field errors in `extra.fields`).",
    401: "Not authenticated.",
    403: "Not allowed for this user or organisation.",
    404: "Not found or not visible to this user.",
    409: "Conflicts with the current state.",
    413: "Request body too large.",
    422: "The Idempotency-Key was already used for a different request "
    "(code `idempotency_key_reused`).",
    429: "Throttled; `extra.retry_after_seconds` says when to retry.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error responses for a view, all in the common error shape."""
    return {s: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[s]) for s in statuses}


# For views wrapped in registry.idempotency.idempotent; list it in their @extend_schema.
IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Optional, 1-255 visible ASCII characters, unique per request you mean (a UUID). "
        "A retry with the same key and the same request returns the first response with "
        "`Idempotent-Replayed: true` instead of acting again; the same key with a different "
        "request is refused with 422 `idempotency_key_reused`. Keys are kept "
        "IDEMPOTENCY_KEY_TTL_HOURS (default 24) hours."
    ),
)
