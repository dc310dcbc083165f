"""The registry's public base URL: what peers, statements and e-mails link to."""

from django.conf import settings
from django.http import HttpRequest
from django.urls import get_script_prefix

DEVELOPMENT_BASE_URL = "http://127.0.0.1:8000"
"""`manage.py runserver`'s address: the last resort outside a request (commands, e-mails)."""


def registry_base_url(request: HttpRequest | None = None) -> str:
    """REGISTRY_BASE_URL when set; else the scheme, host and script prefix the request came
    to (the host is checked against ALLOWED_HOSTS by Django); else DEVELOPMENT_BASE_URL.

    No trailing slash."""
    if settings.REGISTRY_BASE_URL:
        return settings.REGISTRY_BASE_URL.rstrip("/")
    if request is not None:
        return request.build_absolute_uri(get_script_prefix()).rstrip("/")
    return DEVELOPMENT_BASE_URL
