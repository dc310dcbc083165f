"""`?ordering=` on lists: the accepted names in the schema, a 400 for any other.

DRF's OrderingFilter drops a name it does not know and documents the parameter as any
text, so `?ordering=colour` answered 200 in the default order and nobody could read the
names from the schema. Here each list's `ordering_fields` become the parameter's pattern
(names, each optionally after `-` for descending, separated by commas) and its
description, and a value the pattern refuses is a 400 naming the accepted ones.
"""

import re
from typing import Any

from rest_framework import filters, serializers

from registry.api.filters import detail_route


def _names(view: Any) -> list[str]:
    return [str(name) for name in getattr(view, "ordering_fields", None) or []]


def ordering_pattern(names: list[str]) -> str:
    """The ECMA-262 pattern of an ordering over `names` (empty: the default order)."""
    one = "-?(" + "|".join(re.escape(name) for name in names) + ")"
    return f"^({one}(,{one})*)?$"


class StrictOrderingFilter(filters.OrderingFilter):
    def get_ordering(self, request, queryset, view):
        names = _names(view)
        if not names:  # a view that names no orderings documents none and takes none
            return self.get_default_ordering(view)
        # A route naming one object documents no ordering and ignores it, as it ignores the
        # list's filters (registry.api.filters.RegistryFilterBackend).
        if not detail_route(view):
            given = request.query_params.get(self.ordering_param)
            if given is not None and not re.fullmatch(ordering_pattern(names), given):
                raise serializers.ValidationError(
                    {self.ordering_param: [self._accepted(names)]}, code="invalid"
                )
        return super().get_ordering(request, queryset, view)

    @staticmethod
    def _accepted(names: list[str]) -> str:
        listed = ", ".join(names)
        return f"Order by {listed}, each with a leading - to reverse it, separated by commas."

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        names = _names(view)
        if not names:
            return []
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": self._accepted(names) + " E.g. `-" + names[0] + "`.",
                "schema": {"type": "string", "pattern": ordering_pattern(names)},
            }
        ]
