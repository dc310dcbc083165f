"""The project's API router: a numeric primary key in the URL, or no match (404).

DRF's default lookup matches any segment, so `/sites/null/` reached views that turn the
id into an int (500) and, on PostgreSQL, ids beyond 64 bits reached the database. Viewsets
that look up by `pk`/`id` match 1-18 digits here; a viewset with its own
`lookup_value_regex` (serials, public ids) keeps it.
"""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

PK_REGEX = "[0-9]{1,18}"


class Router(SimpleRouter):
    """SimpleRouter whose default lookup for `pk`/`id` is a bounded run of digits."""

    def get_lookup_regex(self, viewset, lookup_prefix: str = "") -> str:
        lookup_field = getattr(viewset, "lookup_field", "pk")
        lookup_url_kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        default = PK_REGEX if lookup_field in ("pk", "id") else "[^/.]+"
        lookup_value = getattr(viewset, "lookup_value_regex", None) or default
        return f"(?P<{lookup_prefix}{lookup_url_kwarg}>{lookup_value})"
