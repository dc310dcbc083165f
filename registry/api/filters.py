"""The API's filter backend: django-filter, plus checks no database should have to make.

Every filter set derives from `RegistryFilterSet` (the backend builds `filterset_fields`
on it too), whose filters take exactly what the schema says: a foreign key or an integer
column is an integer (an id nobody has matches nothing, like any other value, instead of
django-filter's 400 "Select a valid choice"), and a boolean is `true` or `false` (not any
word, silently ignored).

A date-time is taken as the schema's pattern says (`registry.datetimes.DATE_TIME`: RFC
3339, years 1000-8999, offsets up to ±15:59, which PostgreSQL stores; django-filter would
take `2026-01-01 00:00`, or an offset of +23:59 that PostgreSQL refuses with a DataError),
and turned into UTC before it reaches a query. Numbers outside the signed 64-bit range are
a 400 on their parameter too.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django_filters import filters, utils
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.api.serializers import WHOLE_NUMBER
from registry.datetimes import DATE_TIME_HINT, DATE_TIME_RE

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def _check_value(value):
    """(value to use, problem or None)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC), None  # in range: `_date_time_errors` ran first
    number = isinstance(value, int | Decimal) and not isinstance(value, bool)
    if number and not BIGINT_MIN <= value <= BIGINT_MAX:
        return value, "Out of range."
    return value, None


class AsciiIntegerField(forms.IntegerField):
    """Django's IntegerField, in ASCII digits and a sign only: int() also reads other
    scripts' digits ("\u0661" is 1), and Django's field takes "5.0", neither of which the
    schema's integer is."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not WHOLE_NUMBER.fullmatch(value.strip()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(filters.NumberFilter):
    """An integer (an id, a count): `1.5` or `1e3` is a 400, a 64-bit value that matches
    nothing an empty page."""

    field_class = AsciiIntegerField


class StrictBooleanField(forms.Field):
    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError("Give true or false.", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


_INTEGER_COLUMNS = (
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
)


class RegistryFilterSet(FilterSet):
    """django-filter's rest-framework filter set with the API's integer and boolean filters."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        **{column: {"filter_class": IntegerFilter} for column in _INTEGER_COLUMNS},
        models.ForeignKey: {"filter_class": IntegerFilter},
        models.OneToOneField: {"filter_class": IntegerFilter},
        models.BooleanField: {"filter_class": BooleanFilter},
    }


def _takes_blank(flt: filters.Filter) -> bool:
    """Whether an empty value is one this filter's schema allows: free text only. A
    number, a time, a boolean or a choice given as `?name=` is a 400; django-filter
    would ignore it and answer the unfiltered list."""
    return isinstance(flt, filters.CharFilter) and not isinstance(flt, filters.ChoiceFilter)


def _blank_errors(filterset, params) -> dict[str, list[str]]:
    return {
        name: ["A value is required; leave the parameter out to not filter."]
        for name, flt in filterset.filters.items()
        if "" in params.getlist(name) and not _takes_blank(flt)
    }


def _date_time_errors(filterset, params) -> dict[str, list[str]]:
    return {
        name: [DATE_TIME_HINT]
        for name, flt in filterset.filters.items()
        if issubclass(flt.field_class, forms.DateTimeField)
        and any(value and not DATE_TIME_RE.fullmatch(value) for value in params.getlist(name))
    }


def detail_route(view) -> bool:
    """A route naming one object (`/bundles/{pk}/`, `/bundles/{pk}/history/`)."""
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    return bool(lookup) and lookup in getattr(view, "kwargs", {})


class RegistryFilterBackend(DjangoFilterBackend):
    filterset_base = RegistryFilterSet

    def filter_queryset(self, request, queryset, view):
        # The filters are a list's search parameters (the schema documents them on lists
        # only): a route naming one object by its key does not build the filter set, which
        # cost about a quarter of a one-bundle read.
        if detail_route(view):
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        refused = _date_time_errors(filterset, request.query_params)
        if refused:
            raise serializers.ValidationError(refused)
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        blank = _blank_errors(filterset, request.query_params)
        if blank:
            raise serializers.ValidationError(blank)
        form = filterset.form
        for name, value in list(form.cleaned_data.items()):
            form.cleaned_data[name], problem = _check_value(value)
            if problem:
                form.add_error(name, problem)
        if form.errors:
            raise utils.translate_validation(form.errors)
        return filterset.qs
