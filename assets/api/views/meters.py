"""Meters, looked up by serial: registration, keys, counter resets, replacement."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from assets import selectors, services
from assets.api import serializers
from assets.models import Meter, MeterKey
from registry.api.filters import RegistryFilterSet
from registry.api.schema import IDEMPOTENCY_KEY, error_responses
from registry.idempotency import idempotent


class MeterFilter(RegistryFilterSet):
    class Meta:
        model = Meter
        fields = ["device", "kind", "status"]


_METER_ERRORS = error_responses(400, 401, 403, 404, 409)


class MeterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Meters, looked up by serial, with their key history."""

    serializer_class = serializers.MeterOutputSerializer
    filterset_class = MeterFilter
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "serial"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
    ordering_fields = ["id", "serial"]

    def get_queryset(self):
        keys = MeterKey.objects.order_by("valid_from")
        return (
            selectors.meter_list(user=self.request.user)
            .prefetch_related(Prefetch("keys", queryset=keys))
            .select_related("replaced_by")
        )

    def _fresh(self, meter_id: int) -> Response:
        return Response(
            serializers.MeterOutputSerializer(self.get_queryset().get(pk=meter_id)).data
        )

    @extend_schema(
        request=serializers.MeterRegisterInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.MeterOutputSerializer, **_METER_ERRORS, **error_responses(422)},
        description="Register a meter of a device you act for. A device that requires signed "
        "readings needs the meter's Ed25519 public key.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.MeterRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        meter = services.meter_register(
            actor=request.user, device_id=values.pop("device"), **values
        )
        response = self._fresh(meter.pk)
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(
        methods=["GET"],
        responses={200: serializers.MeterKeyOutputSerializer(many=True), **_METER_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        request=serializers.MeterKeyRotateInputSerializer,
        responses={201: serializers.MeterKeyOutputSerializer, **_METER_ERRORS},
        description="Rotate the key: the new key starts at valid_from, the old one ends there.",
    )
    # One meter's keys: the meter list's filters and ordering do not apply (and are not
    # documented here).
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def keys(self, request: Request, serial: str) -> Response:
        meter = self.get_object()
        if request.method == "GET":
            return Response(serializers.MeterKeyOutputSerializer(meter.keys.all(), many=True).data)
        data = serializers.MeterKeyRotateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.meter_key_rotate(
            actor=request.user, meter_id=meter.pk, **data.validated_data
        )
        return Response(
            serializers.MeterKeyOutputSerializer(key).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=serializers.MeterCounterResetInputSerializer,
        responses={200: serializers.MeterOutputSerializer, **_METER_ERRORS},
        description="Record a counter rollover, gap or repair: the counter restarts from "
        "counter_wh at time.",
    )
    @action(detail=True, methods=["post"], url_path="counter-resets")
    def counter_resets(self, request: Request, serial: str) -> Response:
        meter = self.get_object()
        data = serializers.MeterCounterResetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        services.meter_counter_reset(
            actor=request.user, meter_id=meter.pk, at=values.pop("time"), **values
        )
        return self._fresh(meter.pk)

    @extend_schema(
        request=serializers.MeterReplaceInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.MeterOutputSerializer, **_METER_ERRORS, **error_responses(422)},
        description="Replace the meter: it stops at time and a new meter starts there.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def replacements(self, request: Request, serial: str) -> Response:
        meter = self.get_object()
        data = serializers.MeterReplaceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        new = services.meter_replace(
            actor=request.user, meter_id=meter.pk, at=values.pop("time"), **values
        )
        response = self._fresh(new.pk)
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(
        request=serializers.MeterRemoveInputSerializer,
        responses={200: serializers.MeterOutputSerializer, **_METER_ERRORS},
        description="Take the meter out of service at time.",
    )
    @action(detail=True, methods=["post"])
    def remove(self, request: Request, serial: str) -> Response:
        meter = self.get_object()
        data = serializers.MeterRemoveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        services.meter_remove(
            actor=request.user, meter_id=meter.pk, at=values.pop("time"), **values
        )
        return self._fresh(meter.pk)
