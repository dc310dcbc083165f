"""Meter readings (bulk upload, list, proof) and reading batches (review)."""

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from assets import selectors, services
from assets.api import reading_serializers
from assets.api.parsers import (
    ReadingsCSVParser,
    ReadingsJSONParser,
    ReadingsNegotiation,
    readings_upload_rows,
)
from assets.models import Reading, ReadingBatch
from registry.api.filters import BooleanFilter, RegistryFilterSet
from registry.api.query import id_parameter, query_flag, query_id
from registry.api.schema import error_responses, read_schema


class ReadingFilter(RegistryFilterSet):
    meter = filters.CharFilter(field_name="meter__serial", label="Meter serial")
    period_start = filters.IsoDateTimeFilter(
        field_name="start", lookup_expr="gte", label="Readings starting at or after"
    )
    period_end = filters.IsoDateTimeFilter(
        field_name="end", lookup_expr="lte", label="Readings ending at or before"
    )
    issued = BooleanFilter(field_name="issued_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Reading
        fields = ["device", "batch"]


_SUBMISSION_STATUS = {"accepted": 201, "held": 202, "unchanged": 200}


@read_schema(reading_serializers.ReadingOutputSerializer, list_errors=(401,))
class ReadingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Accepted meter readings: submit in bulk, list by device and period, prove inclusion."""

    serializer_class = reading_serializers.ReadingOutputSerializer
    filterset_class = ReadingFilter
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [ReadingsJSONParser, ReadingsCSVParser, MultiPartParser]
    content_negotiation_class = ReadingsNegotiation
    ordering_fields = ["start", "id"]

    def get_queryset(self):
        return selectors.reading_list(user=self.request.user)

    @extend_schema(
        request={
            "application/json": reading_serializers.ReadingInputSerializer,
            "text/csv": reading_serializers.READINGS_CSV_SCHEMA,
            "multipart/form-data": reading_serializers.ReadingUploadInputSerializer,
        },
        parameters=[
            OpenApiParameter(
                "accept_valid",
                OpenApiTypes.BOOL,
                description="Store the valid rows and report the others, instead of rejecting "
                "the whole batch.",
            ),
            id_parameter("device", "Every row's meter must be of this device."),
        ],
        responses={
            201: OpenApiResponse(
                reading_serializers.ReadingSubmissionOutputSerializer, description="Accepted."
            ),
            202: OpenApiResponse(
                reading_serializers.ReadingSubmissionOutputSerializer,
                description="Held for issuing-body review (over capacity or backdated).",
            ),
            200: OpenApiResponse(
                reading_serializers.ReadingSubmissionOutputSerializer,
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
        result = services.readings_submit(
            actor=request.user,
            rows=rows,
            accept_valid=query_flag(request, "accept_valid"),
            device_id=query_id(request, "device"),
        )
        body = {
            "status": result.status,
            "rows": result.rows,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "baselines": result.baselines,
            "error_count": result.error_count,
            "errors": result.errors,
            "batch": reading_serializers.ReadingBatchOutputSerializer(result.batch).data
            if result.batch
            else None,
        }
        return Response(body, status=_SUBMISSION_STATUS[result.status])

    @extend_schema(
        responses={
            200: reading_serializers.ReadingProofOutputSerializer,
            **error_responses(401, 404),
        },
        description="The reading's canonical bytes and its RFC 9162 inclusion proof in its "
        "batch's Merkle root, which the ledger event of subject `reading_batch:<id>` records.",
    )
    @action(detail=True, methods=["get"])
    def proof(self, request: Request, pk: str) -> Response:
        reading = self.get_object()
        return Response(selectors.reading_proof(reading=reading))


class ReadingBatchFilter(RegistryFilterSet):
    class Meta:
        model = ReadingBatch
        fields = ["status", "device", "meter", "organisation"]


class ReadingBatchViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Reading batches; the issuing body reviews the held ones."""

    serializer_class = reading_serializers.ReadingBatchOutputSerializer
    filterset_class = ReadingBatchFilter
    permission_classes = [permissions.IsAuthenticated]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return selectors.reading_batch_list(user=self.request.user).select_related("meter")

    @extend_schema(
        request=reading_serializers.BatchReviewInputSerializer,
        responses={
            200: reading_serializers.ReadingBatchOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        """Issuing body: accept a held batch; its readings become accepted readings."""
        self.get_object()
        data = reading_serializers.BatchReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = services.reading_batch_accept(
            actor=request.user, batch_id=int(pk), reason=data.validated_data["reason"]
        )
        return Response(reading_serializers.ReadingBatchOutputSerializer(batch).data)

    @extend_schema(
        request=reading_serializers.BatchRejectInputSerializer,
        responses={
            200: reading_serializers.ReadingBatchOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """Issuing body: reject a held batch (reason required); its readings are discarded."""
        self.get_object()
        data = reading_serializers.BatchRejectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = services.reading_batch_reject(
            actor=request.user, batch_id=int(pk), reason=data.validated_data["reason"]
        )
        return Response(reading_serializers.ReadingBatchOutputSerializer(batch).data)
