"""The API's filter backend: django-filter, plus checks no database should have to make.

Aware datetimes are turned into UTC before they reach a query, and an offset PostgreSQL
cannot store (beyond ±15:59; Python accepts up to ±23:59) is a 400 on that parameter
instead of a DataError. Numbers outside the signed 64-bit range are refused the same way.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend

MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def _check_value(value):
    """(value to use, problem or None)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        offset = value.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            return value, "The time-zone offset must be between -15:59 and +15:59."
        return value.astimezone(UTC), None
    number = isinstance(value, int | Decimal) and not isinstance(value, bool)
    if number and not BIGINT_MIN <= value <= BIGINT_MAX:
        return value, "Out of range."
    return value, None


def _detail_route(view) -> bool:
    """A route naming one object (`/bundles/{pk}/`, `/bundles/{pk}/history/`)."""
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    return bool(lookup) and lookup in getattr(view, "kwargs", {})


class RegistryFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        # The filters are a list's search parameters (the schema documents them on lists
        # only): a route naming one object by its key does not build the filter set, which
        # cost about a quarter of a one-bundle read.
        if _detail_route(view):
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        form = filterset.form
        for name, value in list(form.cleaned_data.items()):
            form.cleaned_data[name], problem = _check_value(value)
            if problem:
                form.add_error(name, problem)
        if form.errors:
            raise utils.translate_validation(form.errors)
        return filterset.qs
