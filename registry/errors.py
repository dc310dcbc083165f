"""Domain errors: every rule a service enforces fails with one of these.

Each carries a machine-readable `code`, an HTTP `status` and a human `detail`;
the API exception handler turns them into `{"code", "detail", "extra"}`.
"""

from typing import Any


class DomainError(Exception):
    """A business rule refused the operation; nothing was changed."""

    code = "domain_error"
    status = 400
    default_detail = "The operation was refused."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)


class InvalidInput(DomainError):
    code = "invalid"
    status = 400
    default_detail = "The input is not valid."


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    default_detail = "You do not have permission to do this."


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_detail = "Not found."


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_detail = "The operation conflicts with the current state."


class OrganisationNotApproved(PermissionDenied):
    code = "organisation_not_approved"
    default_detail = "The organisation is not approved (pending or suspended)."


class JsonTooDeep(DomainError):
    code = "json_too_deep"
    status = 400
    default_detail = "The JSON body is nested too deeply."


class RequestTooLarge(DomainError):
    code = "request_too_large"
    status = 413
    default_detail = "The request body is too large."


class InvalidCharacters(DomainError):
    code = "invalid_characters"
    status = 400
    default_detail = "The address or a query parameter contains a NUL byte."


class FormatBlank(DomainError):
    code = "format_blank"
    status = 400
    default_detail = (
        "`format` is empty: name a representation the operation lists, or leave it out."
    )


class ParameterTooLong(DomainError):
    code = "parameter_too_long"
    status = 400
    default_detail = "A path segment or query parameter is too long."


class DatabaseUnavailable(DomainError):
    code = "database_unavailable"
    status = 503
    default_detail = "The database is not reachable; retry shortly."
