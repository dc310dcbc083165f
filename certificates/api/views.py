from django.http import Http404, HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from certificates import crossregistry, errors, selectors, services
from certificates.api import serializers
from certificates.models import Bundle
from certificates.views import statement_pdf_response
from registry.api.filters import IntegerFilter, RegistryFilterSet
from registry.api.renderers import JSONErrorsMixin, PDFRenderer
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.api.viewsets import ScopedReadViewSet
from registry.idempotency import idempotent

WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)


def _items(rows: list[dict]) -> list[tuple[int, int | None]]:
    return [(row["bundle"], row["volume_wh"]) for row in rows]


def _user(request: Request):
    return request.user if request.user.is_authenticated else None


class BundleFilter(RegistryFilterSet):
    technology = filters.CharFilter(field_name="issuance__technology_code")
    energy_source = filters.CharFilter(field_name="issuance__energy_source_code")
    grid_area = filters.CharFilter(field_name="issuance__grid_area_code")
    country = filters.CharFilter(field_name="issuance__country")
    device = IntegerFilter(field_name="device_id")
    account = IntegerFilter(field_name="account_id")
    account_number = filters.CharFilter(field_name="account__number")
    organisation = IntegerFilter(field_name="account__organisation_id")
    issuance = IntegerFilter(field_name="issuance_id")
    status = filters.MultipleChoiceFilter(
        choices=[(name, name) for name in serializers.STATUS_NAMES], method="filter_status"
    )
    period_after = filters.IsoDateTimeFilter(
        field_name="period_start", lookup_expr="gte", help_text="Production starts at or after."
    )
    period_before = filters.IsoDateTimeFilter(
        field_name="period_end", lookup_expr="lte", help_text="Production ends at or before."
    )
    expires_before = filters.DateFilter(field_name="expires_on", lookup_expr="lte")

    class Meta:
        model = Bundle
        fields: list[str] = []

    def filter_status(self, queryset, name, value: list[str]):
        if not value:
            return queryset
        by_name = {label: number for number, label in Bundle.Status.choices}
        return queryset.filter(status__in=[by_name[v] for v in value])


@read_schema(
    serializers.BundleOutputSerializer,
    retrieve_errors=(404,),
    list_description="Search your bundles by technology, grid area, period, device, account, "
    "status.",
    retrieve_description="Any bundle, with its certificate attributes (public).",
)
class BundleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Certificate bundles: your organisations' holdings; any bundle by id (public ledger)."""

    serializer_class = serializers.BundleOutputSerializer
    filterset_class = BundleFilter
    ordering_fields = ["id", "period_start", "unit_start"]
    lookup_value_regex = r"[0-9]+"

    def get_permissions(self):
        if self.action in ("retrieve", "history"):
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self):
        if self.action == "retrieve":  # the schema's view of retrieve; it reads bundle_detail
            return selectors.bundle_detail_queryset()
        if self.action == "history":
            return Bundle.objects.only("id")
        return selectors.bundle_list(user=_user(self.request))

    def retrieve(self, request: Request, pk: str) -> Response:
        # One hand-written statement instead of get_object()'s ORM query (measured:
        # benchmarks/README.md, "One-bundle read"); anyone may read any bundle.
        bundle = selectors.bundle_detail(bundle_id=int(pk))
        if bundle is None:
            raise Http404
        self.check_object_permissions(request, bundle)
        return Response(self.get_serializer(bundle).data)

    @extend_schema(responses={200: serializers.HistoryOutputSerializer, **error_responses(404)})
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """The ownership chain from issuance to now, each step a ledger entry with its proof."""
        bundle = self.get_object()
        return Response(
            serializers.HistoryOutputSerializer(selectors.bundle_history(bundle_id=bundle.pk)).data
        )

    @extend_schema(
        request=serializers.TransferCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.TransferOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def transfers(self, request: Request, pk: str) -> Response:
        """Transfer the bundle, or a volume of it (split), to any open account."""
        data = serializers.TransferCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = services.certificate_transfer(
            actor=request.user,
            bundle_id=int(pk),
            to_account_number=data.validated_data["to_account"],
            volume_wh=data.validated_data["volume_wh"],
            require_acceptance=data.validated_data["require_acceptance"],
        )
        return Response(
            serializers.TransferOutputSerializer(transfer).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=serializers.RetireBundleInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.RetirementOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def retirements(self, request: Request, pk: str) -> Response:
        """Retire the bundle, or a volume of it, for a beneficiary: final, with a statement."""
        data = serializers.RetireBundleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claim = dict(data.validated_data)
        volume = claim.pop("volume_wh")
        retirement = services.certificate_retire(
            actor=request.user, items=[(int(pk), volume)], **claim
        )
        body = serializers.RetirementOutputSerializer(retirement, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ExportCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ExportOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def exports(self, request: Request, pk: str) -> Response:
        """Export the bundle, or a volume of it, to an account at a partner registry.

        The units are marked exported at once and never move here again; the export is
        delivered with its ledger proof once an anchored checkpoint covers it, and settled
        by the destination's signed receipt (imported, or refused and returned).
        """
        data = serializers.ExportCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        export = crossregistry.certificate_export(
            actor=request.user, bundle_id=int(pk), **data.validated_data
        )
        return Response(
            serializers.ExportOutputSerializer(export).data, status=status.HTTP_201_CREATED
        )


@read_schema(serializers.ExportOutputSerializer)
class ExportViewSet(ScopedReadViewSet):
    """Exports to partner registries from your organisations' accounts, and their receipts."""

    serializer_class = serializers.ExportOutputSerializer
    filterset_fields = ["status", "from_account", "bundle"]
    scope = staticmethod(selectors.export_list)


@read_schema(serializers.ImportOutputSerializer)
class ImportViewSet(ScopedReadViewSet):
    """Certificates received from partner registries into your organisations' accounts."""

    serializer_class = serializers.ImportOutputSerializer
    filterset_fields = ["status", "origin", "account"]
    scope = staticmethod(selectors.import_list)


@read_schema(serializers.TransferOutputSerializer)
class TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Transfers out of and into your organisations' accounts."""

    serializer_class = serializers.TransferOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "from_account", "to_account", "bundle"]
    ordering_fields = ["id", "created_at"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return selectors.transfer_list(user=self.request.user)

    @extend_schema(
        request=serializers.TransferBatchInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.TransferOutputSerializer(many=True), **WRITE_ERRORS},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def batch(self, request: Request) -> Response:
        """Transfer many bundles (whole or part) to one account in one atomic request."""
        data = serializers.TransferBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfers = services.certificate_transfer_batch(
            actor=request.user,
            to_account_number=data.validated_data["to_account"],
            items=_items(data.validated_data["items"]),
            require_acceptance=data.validated_data["require_acceptance"],
        )
        body = serializers.TransferOutputSerializer(transfers, many=True).data
        return Response(body, status=status.HTTP_201_CREATED)

    def _decide(self, request: Request, pk: str, service) -> Response:
        transfer = service(actor=request.user, transfer_id=int(pk))
        return Response(serializers.TransferOutputSerializer(transfer).data)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializers.TransferOutputSerializer,
            **error_responses(401, 403, 404, 409, 422),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def accept(self, request: Request, pk: str) -> Response:
        """Receiver: accept a pending transfer."""
        return self._decide(request, pk, services.certificate_transfer_accept)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializers.TransferOutputSerializer,
            **error_responses(401, 403, 404, 409, 422),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request: Request, pk: str) -> Response:
        """Receiver: reject a pending transfer; the units are free again at the sender."""
        return self._decide(request, pk, services.certificate_transfer_reject)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializers.TransferOutputSerializer,
            **error_responses(401, 403, 404, 409, 422),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def withdraw(self, request: Request, pk: str) -> Response:
        """Sender: take back a pending transfer."""
        return self._decide(request, pk, services.certificate_transfer_withdraw)


@read_schema(serializers.RetirementOutputSerializer)
class RetirementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your organisations' retirements. Their statements are public under /statements/."""

    serializer_class = serializers.RetirementOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "public_id"
    lookup_value_regex = r"[0-9a-fA-F-]{36}"
    filterset_fields = ["account", "purpose", "beneficiary_country"]
    ordering_fields = ["id", "retired_at"]

    def get_queryset(self):
        return selectors.retirement_list(user=self.request.user).prefetch_related("items")

    @extend_schema(
        request=serializers.RetireBatchInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.RetirementOutputSerializer, **WRITE_ERRORS},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Retire several bundles of one account for one beneficiary (one statement)."""
        data = serializers.RetireBatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claim = dict(data.validated_data)
        items = _items(claim.pop("items"))
        retirement = services.certificate_retire(actor=request.user, items=items, **claim)
        body = serializers.RetirementOutputSerializer(retirement, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class StatementView(JSONErrorsMixin, APIView):
    """A retirement statement (public, at an unguessable id): the retired certificates, the
    claim, and the ledger entries with inclusion proofs in the signed checkpoint. The JSON
    is also a history bundle for `python -m ledger.verify history --file`. With
    `Accept: application/pdf` (or `?format=pdf`) the statement page as a PDF file, in the
    language of `Accept-Language`."""

    permission_classes = [permissions.AllowAny]
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, PDFRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "pdf"], required=False)
        ],
        responses={
            (200, "application/json"): serializers.StatementOutputSerializer,
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The statement page as a PDF file."
            ),
            # Errors are JSON whatever was asked for (JSONErrorsMixin).
            **{(code, "application/json"): r for code, r in error_responses(404).items()},
        },
    )
    def get(self, request: Request, public_id) -> Response | HttpResponse:
        retirement = selectors.retirement_by_public_id(public_id=public_id)
        if retirement is None:
            raise errors.RetirementNotFound(public_id=str(public_id))
        statement = selectors.retirement_statement(retirement=retirement)
        if request.accepted_renderer.format == "pdf":
            return statement_pdf_response(request._request, retirement, statement)
        return Response(
            serializers.StatementOutputSerializer(statement, context={"request": request}).data
        )


class UnitTraceView(APIView):
    """Which bundle holds unit `unit` (Wh number) of a device, and its whole history (public)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: serializers.UnitTraceOutputSerializer, **error_responses(404)})
    def get(self, request: Request, device_id: int, unit: int) -> Response:
        bundle = selectors.bundle_for_unit(device_id=device_id, unit=unit)
        if bundle is None:
            raise errors.BundleNotFound(
                "No certificate holds this unit of this device.", device_id=device_id, unit=unit
            )
        body = {
            "device": device_id,
            "unit": unit,
            "bundle": bundle,
            "history": selectors.bundle_history(bundle_id=bundle.pk),
        }
        return Response(serializers.UnitTraceOutputSerializer(body).data)


@read_schema(serializers.IssuanceRequestOutputSerializer)
class IssuanceRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Issuance requests: producers ask, the issuing body approves (issuing) or rejects."""

    serializer_class = serializers.IssuanceRequestOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "device", "organisation", "granularity"]
    ordering_fields = ["id", "created_at"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return selectors.issuance_request_list(user=self.request.user)

    @extend_schema(
        request=serializers.IssuanceRequestInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.IssuanceRequestOutputSerializer, **WRITE_ERRORS},
        description="Ask for certificates for a device and period. Devices whose policy "
        "needs no approval are issued at once (status `approved`).",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.IssuanceRequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.issuance_request_create(
            actor=request.user,
            device_id=data.validated_data["device"],
            period_start=data.validated_data["period_start"],
            period_end=data.validated_data["period_end"],
            granularity=data.validated_data["granularity"],
        )
        body = serializers.IssuanceRequestOutputSerializer(req).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializers.IssuanceRequestOutputSerializer,
            **error_responses(401, 403, 404, 409, 422),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request: Request, pk: str) -> Response:
        """Issuing body: approve a pending request; its certificates are issued now."""
        req = services.issuance_request_approve(actor=request.user, request_id=int(pk))
        return Response(serializers.IssuanceRequestOutputSerializer(req).data)

    @extend_schema(
        request=serializers.RejectInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.IssuanceRequestOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request: Request, pk: str) -> Response:
        """Issuing body: reject a pending request (a reason is required)."""
        data = serializers.RejectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.issuance_request_reject(
            actor=request.user, request_id=int(pk), reason=data.validated_data["reason"]
        )
        return Response(serializers.IssuanceRequestOutputSerializer(req).data)


@read_schema(serializers.WithdrawalOutputSerializer, list_errors=(400,), retrieve_errors=(404,))
class WithdrawalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Withdrawals of certificates issued in error (public: they correct the public record)."""

    serializer_class = serializers.WithdrawalOutputSerializer
    ordering_fields = ["id", "withdrawn_at"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return selectors.withdrawal_list(user=_user(self.request)).prefetch_related("items")

    @extend_schema(
        request=serializers.WithdrawalInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.WithdrawalOutputSerializer, **WRITE_ERRORS},
        description="Issuing body: withdraw bundles (and what was split from them), or a "
        "device's certificates for a period, wherever they are held. A reason is required.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.WithdrawalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["device"] is not None and not v["bundles"]:
            # the same rules as by-device/ (no period cutting a bundle; 409 when nothing)
            if v["period_start"] is None or v["period_end"] is None:
                raise errors.InvalidPeriod("Give the period to withdraw (start before end).")
            withdrawal = services.certificate_withdraw_for_device(
                actor=request.user,
                device_id=v["device"],
                period_start=v["period_start"],
                period_end=v["period_end"],
                reason=v["reason"],
            ).withdrawal
        else:
            withdrawal = services.certificate_withdraw(
                actor=request.user,
                reason=v["reason"],
                bundle_ids=v["bundles"],
                device_id=v["device"],
                period_start=v["period_start"],
                period_end=v["period_end"],
            )
        return Response(serializers.WithdrawalOutputSerializer(withdrawal).data, status=201)

    @extend_schema(
        request=serializers.DeviceWithdrawalInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: serializers.DeviceWithdrawalOutputSerializer,
            201: serializers.DeviceWithdrawalOutputSerializer,
            **WRITE_ERRORS,
        },
        description="Issuing body: withdraw every certificate a device produced in "
        "[period_start, period_end), wherever it is held: active, reserved and expired ones "
        "become withdrawn, retired and exported ones keep their status and are flagged, "
        "withdrawn ones are skipped. `dry_run` answers 200 with the same lists and writes "
        "nothing; otherwise 201. A period that starts or ends inside a bundle's production "
        "period is refused (400 `period_cuts_bundle`, with the period that covers it); "
        "nothing left to withdraw is 409 `nothing_to_withdraw`.",
    )
    @action(detail=False, methods=["post"], url_path="by-device")
    @idempotent
    def by_device(self, request: Request) -> Response:
        data = serializers.DeviceWithdrawalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = services.certificate_withdraw_for_device(
            actor=request.user,
            device_id=v["device"],
            period_start=v["period_start"],
            period_end=v["period_end"],
            reason=v["reason"],
            dry_run=v["dry_run"],
        )
        return Response(
            serializers.DeviceWithdrawalOutputSerializer(result).data,
            status=200 if v["dry_run"] else 201,
        )


class TransferPolicyView(APIView):
    """Whether an organisation's incoming transfers from other organisations need acceptance."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: serializers.TransferPolicyOutputSerializer, **error_responses(401, 404)},
        parameters=[OpenApiParameter("organisation_id", int, OpenApiParameter.PATH)],
    )
    def get(self, request: Request, organisation_id: int) -> Response:
        from accounts.selectors import organisation_list

        if not organisation_list(user=request.user).filter(pk=organisation_id).exists():
            raise Http404
        policy = selectors.transfer_policy_for(organisation_id=organisation_id)
        return Response(serializers.TransferPolicyOutputSerializer(policy).data)

    @extend_schema(
        request=serializers.TransferPolicyInputSerializer,
        responses={
            200: serializers.TransferPolicyOutputSerializer,
            **error_responses(400, 401, 403),
        },
        parameters=[OpenApiParameter("organisation_id", int, OpenApiParameter.PATH)],
    )
    def put(self, request: Request, organisation_id: int) -> Response:
        """Organisation administrator: require (or stop requiring) acceptance."""
        data = serializers.TransferPolicyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = services.transfer_policy_set(
            actor=request.user,
            organisation_id=organisation_id,
            require_acceptance=data.validated_data["require_acceptance"],
        )
        return Response(serializers.TransferPolicyOutputSerializer(policy).data)
