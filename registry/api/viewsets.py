"""Viewset bases more than one API resource uses."""

from collections.abc import Callable

from django.db.models import QuerySet
from rest_framework import mixins, permissions, viewsets


class ScopedReadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rows of the user's organisations (all of them for the issuing body and auditors),
    as `scope(user=...)` selects them. Pair it with `registry.api.schema.read_schema`."""

    permission_classes = [permissions.IsAuthenticated]
    ordering_fields = ["id", "created_at"]
    lookup_value_regex = r"[0-9]+"
    scope: Callable[..., QuerySet]  # a selector taking user=, as a staticmethod

    def get_queryset(self):
        return self.scope(user=self.request.user)
