"""One error shape for the whole API: {"code", "detail", "extra"}."""

import sys
from typing import Any

from django import db
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from registry.errors import DatabaseUnavailable, DomainError

_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, detail: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "extra": extra or {}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail, exc.extra), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response

    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        detail = "The request is not valid; see extra.fields."
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        extra["fields"] = fields
        if choices := getattr(exc, "choices", None):
            extra["choices"] = choices
    else:
        detail = str(exc.detail)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after_seconds"] = round(exc.wait)
    response.data = error_body(code, detail, extra)
    return response


# Django's own 404/500 (no URL matched, an uncaught exception) in the same shape under /api/.
def api_page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No API endpoint at this address."), status=404)
    return defaults.page_not_found(request, exception)


def database_unreachable(exc: BaseException | None) -> bool:
    """A lost or refused database connection, as opposed to a bug in a query."""
    return isinstance(exc, db.OperationalError | db.InterfaceError)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 `database_unavailable` with Retry-After: JSON under /api/, a short page elsewhere."""
    retry_after = settings.DATABASE_UNAVAILABLE_RETRY_AFTER
    error = DatabaseUnavailable(retry_after_seconds=retry_after)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            error_body(error.code, error.detail, error.extra), status=error.status
        )
    else:
        response = HttpResponse(
            "<!doctype html><title>Service unavailable</title>"
            "<h1>Service unavailable</h1><p>The registry's database is not reachable. "
            "Please try again in a few seconds.</p>",
            status=error.status,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(retry_after)
    return response


# Django calls handler500 inside the `except` block of the uncaught exception, so
# sys.exc_info() names it here; the exception itself is logged by Django, not shown.
def api_server_error(request: HttpRequest) -> HttpResponse:
    if database_unreachable(sys.exc_info()[1]):
        return database_unavailable_response(request)
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    code = serializers.CharField(help_text="Machine-readable error code.")
    detail = serializers.CharField(help_text="Human-readable message.")
    extra = serializers.DictField(
        help_text=(
            "Details such as per-field or per-row errors (`fields`) and, for a bad choice,"
            " the valid values by field path (`choices`)."
        )
    )
