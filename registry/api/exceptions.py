"""One error shape for the whole API: {"code", "detail", "extra"}."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from registry.errors import DomainError

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


def api_server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    code = serializers.CharField(help_text="Machine-readable error code.")
    detail = serializers.CharField(help_text="Human-readable message.")
    extra = serializers.DictField(help_text="Details such as per-field or per-row errors.")
