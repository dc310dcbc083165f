"""Shared OpenAPI pieces: every documented error uses ErrorSerializer."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

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


def read_schema(
    serializer,
    *,
    list_errors: tuple[int, ...] = (400, 401),
    retrieve_errors: tuple[int, ...] | None = (401, 404),
    list_description: str | None = None,
    retrieve_description: str | None = None,
):
    """Class decorator: the list and retrieve schemas of a viewset of `serializer` rows.

    The defaults fit rows scoped to the user (login needed, filters can be invalid);
    `retrieve_errors=None` for a viewset without retrieve. Use it instead of overriding
    list/retrieve only to carry @extend_schema. Without a description, the operation is
    described by the viewset's docstring.
    """
    views = {
        "list": extend_schema(
            description=list_description,
            responses={200: serializer(many=True), **error_responses(*list_errors)},
        )
    }
    if retrieve_errors is not None:
        views["retrieve"] = extend_schema(
            description=retrieve_description,
            responses={200: serializer, **error_responses(*retrieve_errors)},
        )
    return extend_schema_view(**views)


# For views wrapped in registry.idempotency.idempotent; list it in their @extend_schema.
IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    # what registry.idempotency accepts (_KEY_FORMAT), so that a client generating keys from
    # the schema never sends one the server refuses
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
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
