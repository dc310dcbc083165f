"""Request plumbing every view relies on: a request id, and limits on the address itself.

`RequestIdMiddleware` gives each request an id (the caller's `X-Request-ID` when it is a
sane token, else a fresh one), answers it in `X-Request-ID` and puts it on every log line
of the request (registry.logging.RequestIdFilter).

`InputLimitsMiddleware` refuses, before any view or query runs, addresses and query
parameters that no view can use: a NUL byte (PostgreSQL refuses NUL in text, which used to
surface as a 500; other control characters are stored as given), path segments or values
longer than API_PARAMETER_MAX_LENGTH, and under /api/ an empty `format` (DRF's format
override would ignore it and answer as if it were absent; the schema lists the formats).
The answer is 400 with a code, in the API's error shape under /api/ and as plain text
elsewhere.
"""

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from registry.errors import DomainError, FormatBlank, InvalidCharacters, ParameterTooLong
from registry.logging import request_id_var

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def error_response(request: HttpRequest, error: DomainError) -> HttpResponse:
    """A DomainError as a response outside DRF: the API's JSON shape under /api/, else text."""
    if request.path.startswith("/api/"):
        body = {"code": error.code, "detail": error.detail, "extra": error.extra}
        return JsonResponse(body, status=error.status)
    return HttpResponse(
        f"{error.detail}\n", status=error.status, content_type="text/plain; charset=utf-8"
    )


def input_problem(request: HttpRequest) -> DomainError | None:
    """What is wrong with the request's address, or None."""
    limit = settings.API_PARAMETER_MAX_LENGTH
    path = request.path
    if "\x00" in path:
        return InvalidCharacters(where="path")
    if any(len(segment) > limit for segment in path.split("/")):
        return ParameterTooLong(where="path", max_length=limit)
    for name, values in request.GET.lists():
        for text in (name, *values):
            if "\x00" in text:
                return InvalidCharacters(where="query", parameter=name[:64])
            if len(text) > limit:
                return ParameterTooLong(where="query", parameter=name[:64], max_length=limit)
    if path.startswith("/api/") and "" in request.GET.getlist("format"):
        return FormatBlank()
    return None


class InputLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = input_problem(request)
        if problem is not None:
            return error_response(request, problem)
        return self.get_response(request)
