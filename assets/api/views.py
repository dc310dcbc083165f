from django.db.models import Prefetch, Q
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assets import codes, selectors, services
from assets.api import serializers
from assets.api.parsers import (
    ReadingsCSVParser,
    ReadingsJSONParser,
    ReadingsNegotiation,
    readings_upload_rows,
)
from assets.errors import ReadingsMalformed
from assets.models import Device, DeviceOwner, GridArea, Meter, MeterKey, Reading, ReadingBatch
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.idempotency import idempotent

# -- grid areas ----------------------------------------------------------------------------


class GridAreaFilter(filters.FilterSet):
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


# -- devices -------------------------------------------------------------------------------


class DeviceFilter(filters.FilterSet):
    grid_area_code = filters.CharFilter(field_name="grid_area__code")
    country = filters.CharFilter(field_name="grid_area__country")
    technology = filters.CharFilter(
        field_name="technology_code", lookup_expr="startswith", label="Technology code prefix"
    )
    owner = filters.NumberFilter(method="filter_owner", label="Registrant or co-owner organisation")

    class Meta:
        model = Device
        fields = [
            "grid_area",
            "technology_code",
            "energy_source_code",
            "status",
            "organisation",
            "is_storage",
        ]

    def filter_owner(self, queryset, name, value):
        owned = DeviceOwner.objects.filter(organisation_id=value).values("device_id")
        return queryset.filter(Q(organisation_id=value) | Q(pk__in=owned))


def _full_access(user, devices) -> set[int] | None:
    full = selectors.device_ids_with_full_access(user)
    if full is None:
        return None
    ids = [device.pk for device in devices]
    return set(Device.objects.filter(pk__in=ids).filter(pk__in=full).values_list("pk", flat=True))


_DEVICE_ERRORS = error_responses(400, 401, 403, 404, 409)


class DeviceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Production devices. Public: approved and active devices (location rounded, owners
    hidden). Producers register and run their own; the issuing body approves."""

    serializer_class = serializers.DeviceOutputSerializer
    filterset_class = DeviceFilter
    ordering_fields = ["id", "name", "capacity_w", "commissioning_date", "created_at"]

    def get_queryset(self):
        owners = DeviceOwner.objects.select_related("organisation", "account").order_by("id")
        return selectors.device_list(user=self.request.user).prefetch_related(
            Prefetch("owners", queryset=owners)
        )

    def _render(self, devices, *, many: bool = False):
        items = devices if many else [devices]
        context = {"full_access": _full_access(self.request.user, items)}
        return serializers.DeviceOutputSerializer(devices, many=many, context=context).data

    def _fresh(self, device_id: int) -> Device:
        return self.get_queryset().get(pk=device_id)

    @extend_schema(responses={200: serializers.DeviceOutputSerializer(many=True)})
    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._render(page, many=True))

    @extend_schema(responses={200: serializers.DeviceOutputSerializer, **error_responses(404)})
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return Response(self._render(self.get_object()))

    @extend_schema(
        request=serializers.DeviceRegisterInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: serializers.DeviceOutputSerializer,
            **_DEVICE_ERRORS,
            **error_responses(422),
        },
        description="Register a device (draft) for an organisation you act for, with its "
        "co-owners; their shares must sum to exactly 1. The name and the location rounded to "
        "0.01 degrees are public and go into the ledger: do not put people's names in it.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.DeviceRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        owners = values.pop("owners")
        device = services.device_register(
            actor=request.user,
            organisation_id=values.pop("organisation"),
            grid_area_id=values.pop("grid_area"),
            owners=[
                {
                    "organisation_id": o["organisation"],
                    "account_id": o["account"],
                    "share": o["share"],
                }
                for o in owners
            ],
            **values,
        )
        return Response(self._render(self._fresh(device.pk)), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.DeviceUpdateInputSerializer,
        responses={200: serializers.DeviceOutputSerializer, **_DEVICE_ERRORS},
        description="Edit a draft or rejected device.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = serializers.DeviceUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "grid_area" in changes:
            changes["grid_area_id"] = changes.pop("grid_area")
        services.device_update(actor=request.user, device_id=int(pk), **changes)
        return Response(self._render(self._fresh(int(pk))))

    @extend_schema(
        request=serializers.DeviceOwnersInputSerializer,
        responses={200: serializers.DeviceOutputSerializer, **_DEVICE_ERRORS},
        description="Replace the co-owners (shares must sum to exactly 1).",
    )
    @action(detail=True, methods=["put"])
    def owners(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = serializers.DeviceOwnersInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.device_owners_set(
            actor=request.user,
            device_id=int(pk),
            owners=[
                {
                    "organisation_id": o["organisation"],
                    "account_id": o["account"],
                    "share": o["share"],
                }
                for o in data.validated_data["owners"]
            ],
        )
        return Response(self._render(self._fresh(int(pk))))

    @extend_schema(
        request=serializers.DevicePolicyInputSerializer,
        responses={200: serializers.DeviceOutputSerializer, **_DEVICE_ERRORS},
        description="Issuing body: change the reading and issuance policy.",
    )
    @action(detail=True, methods=["post"])
    def policy(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = serializers.DevicePolicyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.device_policy_set(actor=request.user, device_id=int(pk), **data.validated_data)
        return Response(self._render(self._fresh(int(pk))))

    def _transition(self, request: Request, pk: str, name: str) -> Response:
        self.get_object()
        data = serializers.DeviceReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.device_transition(
            actor=request.user, device_id=int(pk), action=name, reason=data.validated_data["reason"]
        )
        return Response(self._render(self._fresh(int(pk))))

    _transition_schema = extend_schema(
        request=serializers.DeviceReasonInputSerializer,
        responses={200: serializers.DeviceOutputSerializer, **_DEVICE_ERRORS},
    )

    @_transition_schema
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Producer: submit a draft or rejected device for approval."""
        return self._transition(request, pk, "submit")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Issuing body: approve a submitted device."""
        return self._transition(request, pk, "approve")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """Issuing body: reject a submitted device (reason required)."""
        return self._transition(request, pk, "reject")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        """Producer or issuing body: put an approved device into operation."""
        return self._transition(request, pk, "activate")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        """Issuing body: suspend an approved or active device (reason required)."""
        return self._transition(request, pk, "suspend")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, pk: str) -> Response:
        """Issuing body: lift a suspension (reason required)."""
        return self._transition(request, pk, "reinstate")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def decommission(self, request: Request, pk: str) -> Response:
        """Producer or issuing body: take the device out of service for good (reason required)."""
        return self._transition(request, pk, "decommission")


# -- meters --------------------------------------------------------------------------------


class MeterFilter(filters.FilterSet):
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
    @action(detail=True, methods=["get", "post"])
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


# -- readings ------------------------------------------------------------------------------


class ReadingFilter(filters.FilterSet):
    meter = filters.CharFilter(field_name="meter__serial", label="Meter serial")
    period_start = filters.IsoDateTimeFilter(
        field_name="start", lookup_expr="gte", label="Readings starting at or after"
    )
    period_end = filters.IsoDateTimeFilter(
        field_name="end", lookup_expr="lte", label="Readings ending at or before"
    )
    issued = filters.BooleanFilter(field_name="issued_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Reading
        fields = ["device", "batch"]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


_SUBMISSION_STATUS = {"accepted": 201, "held": 202, "unchanged": 200}


@read_schema(serializers.ReadingOutputSerializer, list_errors=(401,))
class ReadingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Accepted meter readings: submit in bulk, list by device and period, prove inclusion."""

    serializer_class = serializers.ReadingOutputSerializer
    filterset_class = ReadingFilter
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [ReadingsJSONParser, ReadingsCSVParser, MultiPartParser]
    content_negotiation_class = ReadingsNegotiation
    ordering_fields = ["start", "id"]

    def get_queryset(self):
        return selectors.reading_list(user=self.request.user)

    @extend_schema(
        request={
            "application/json": serializers.ReadingInputSerializer(many=True),
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": serializers.ReadingUploadInputSerializer,
        },
        parameters=[
            OpenApiParameter(
                "accept_valid",
                OpenApiTypes.BOOL,
                description="Store the valid rows and report the others, instead of rejecting "
                "the whole batch.",
            ),
            OpenApiParameter(
                "device", OpenApiTypes.INT, description="Every row's meter must be of this device."
            ),
        ],
        responses={
            201: OpenApiResponse(
                serializers.ReadingSubmissionOutputSerializer, description="Accepted."
            ),
            202: OpenApiResponse(
                serializers.ReadingSubmissionOutputSerializer,
                description="Held for issuing-body review (over capacity or backdated).",
            ),
            200: OpenApiResponse(
                serializers.ReadingSubmissionOutputSerializer,
                description="Nothing new: every row was recorded already.",
            ),
            **error_responses(400, 401, 403, 409, 413),
        },
        description=(
            "Submit readings: a JSON array (or one object) of interval readings "
            "`{meter, start, end, wh, signature?}` or counter readings "
            "`{meter, time, counter_wh, signature?}`; or CSV with the header "
            "`meter,start,end,wh[,signature]` or `meter,time,counter_wh[,signature]`, as the "
            "body (text/csv) or as the `file` of a multipart upload. The batch is accepted or "
            "rejected whole (400 with per-row errors in `extra.errors`, or 409 when rows "
            "contradict recorded readings) unless `accept_valid=true`. Re-sending the same "
            "readings is harmless (they are skipped), so no Idempotency-Key is needed."
        ),
    )
    def create(self, request: Request) -> Response:
        rows = readings_upload_rows(request)
        device = request.query_params.get("device")
        if device is not None and not device.isdigit():
            raise ReadingsMalformed("`device` must be a device id.")
        result = services.readings_submit(
            actor=request.user,
            rows=rows,
            accept_valid=_truthy(request.query_params.get("accept_valid")),
            device_id=int(device) if device else None,
        )
        body = {
            "status": result.status,
            "rows": result.rows,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "baselines": result.baselines,
            "error_count": result.error_count,
            "errors": result.errors,
            "batch": serializers.ReadingBatchOutputSerializer(result.batch).data
            if result.batch
            else None,
        }
        return Response(body, status=_SUBMISSION_STATUS[result.status])

    @extend_schema(
        responses={200: serializers.ReadingProofOutputSerializer, **error_responses(401, 404)},
        description="The reading's canonical bytes and its RFC 9162 inclusion proof in its "
        "batch's Merkle root, which the ledger event of subject `reading_batch:<id>` records.",
    )
    @action(detail=True, methods=["get"])
    def proof(self, request: Request, pk: str) -> Response:
        reading = self.get_object()
        return Response(selectors.reading_proof(reading=reading))


class ReadingBatchFilter(filters.FilterSet):
    class Meta:
        model = ReadingBatch
        fields = ["status", "device", "meter", "organisation"]


class ReadingBatchViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Reading batches; the issuing body reviews the held ones."""

    serializer_class = serializers.ReadingBatchOutputSerializer
    filterset_class = ReadingBatchFilter
    permission_classes = [permissions.IsAuthenticated]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return selectors.reading_batch_list(user=self.request.user).select_related("meter")

    @extend_schema(
        request=serializers.BatchReviewInputSerializer,
        responses={
            200: serializers.ReadingBatchOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        """Issuing body: accept a held batch; its readings become accepted readings."""
        self.get_object()
        data = serializers.BatchReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = services.reading_batch_accept(
            actor=request.user, batch_id=int(pk), reason=data.validated_data["reason"]
        )
        return Response(serializers.ReadingBatchOutputSerializer(batch).data)

    @extend_schema(
        request=serializers.BatchReviewInputSerializer,
        responses={
            200: serializers.ReadingBatchOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """Issuing body: reject a held batch (reason required); its readings are discarded."""
        self.get_object()
        data = serializers.BatchReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = services.reading_batch_reject(
            actor=request.user, batch_id=int(pk), reason=data.validated_data["reason"]
        )
        return Response(serializers.ReadingBatchOutputSerializer(batch).data)
