"""Grid areas (bidding zones) and the EECS codes devices may use."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assets import codes, selectors, services
from assets.api import serializers
from assets.models import GridArea
from registry.api.filters import RegistryFilterSet
from registry.api.schema import IDEMPOTENCY_KEY, error_responses
from registry.idempotency import idempotent


class GridAreaFilter(RegistryFilterSet):
    class Meta:
        model = GridArea
        fields = ["code", "country"]


class GridAreaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Grid areas (bidding zones): public; the issuing body creates and edits them."""

    serializer_class = serializers.GridAreaOutputSerializer
    filterset_class = GridAreaFilter
    ordering_fields = ["code", "id"]

    def get_queryset(self):
        return selectors.grid_area_list()

    @extend_schema(
        request=serializers.GridAreaCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: serializers.GridAreaOutputSerializer,
            **error_responses(400, 401, 403, 409, 422),
        },
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Issuing body: register a grid area."""
        data = serializers.GridAreaCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        area = services.grid_area_create(actor=request.user, **data.validated_data)
        return Response(
            serializers.GridAreaOutputSerializer(area).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=serializers.GridAreaUpdateInputSerializer,
        responses={
            200: serializers.GridAreaOutputSerializer,
            **error_responses(400, 401, 403, 404),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        """Issuing body: change a grid area's name, time zone, emission factor or expiry."""
        self.get_object()
        data = serializers.GridAreaUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        area = services.grid_area_update(
            actor=request.user, grid_area_id=int(pk), **data.validated_data
        )
        return Response(serializers.GridAreaOutputSerializer(area).data)


class EecsCodesView(APIView):
    """The EECS technology and energy-source codes devices may use."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: serializers.EecsCodesOutputSerializer})
    def get(self, request: Request) -> Response:
        body = {
            "technologies": [{"code": c, "label": x} for c, x in codes.technologies().items()],
            "energy_sources": [{"code": c, "label": x} for c, x in codes.energy_sources().items()],
        }
        return Response(body)
