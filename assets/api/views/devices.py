"""Production devices: registration, co-owners, policy and status transitions."""

from django.db.models import Prefetch, Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from assets import selectors, services
from assets.api import serializers
from assets.models import Device, DeviceOwner
from registry.api.filters import IntegerFilter, RegistryFilterSet
from registry.api.schema import IDEMPOTENCY_KEY, error_responses
from registry.idempotency import idempotent


class DeviceFilter(RegistryFilterSet):
    grid_area_code = filters.CharFilter(field_name="grid_area__code")
    country = filters.CharFilter(field_name="grid_area__country")
    technology = filters.CharFilter(
        field_name="technology_code", lookup_expr="startswith", label="Technology code prefix"
    )
    owner = IntegerFilter(method="filter_owner", label="Registrant or co-owner organisation")

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
        request=serializers.DeviceOnboardInputSerializer,
        responses={200: serializers.OnboardingOutputSerializer, **error_responses(400, 401, 403)},
        description="Issuing body: register devices, one meter each, from a CSV file, as "
        "drafts of the producers the rows name. With dry_run (the default) every row is "
        "checked and nothing is written; the answer says per row what is wrong. Without it, "
        "all rows are registered in one transaction with their ledger events, or, if any row "
        "is refused, none: 400 `onboarding_rejected` lists the refused rows in extra.rows.",
    )
    @action(detail=False, methods=["post"])
    def onboard(self, request: Request) -> Response:
        data = serializers.DeviceOnboardInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = services.devices_onboard(
            actor=request.user,
            csv_text=data.validated_data["csv"],
            dry_run=data.validated_data["dry_run"],
        )
        return Response(serializers.OnboardingOutputSerializer(outcome).data)

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
        reasoned = services.DEVICE_TRANSITIONS[name].reason_required
        data = (
            serializers.DeviceReasonRequiredInputSerializer
            if reasoned
            else serializers.DeviceReasonInputSerializer
        )(data=request.data)
        data.is_valid(raise_exception=True)
        services.device_transition(
            actor=request.user, device_id=int(pk), action=name, reason=data.validated_data["reason"]
        )
        return Response(self._render(self._fresh(int(pk))))

    _transition_schema = extend_schema(
        request=serializers.DeviceReasonInputSerializer,
        responses={200: serializers.DeviceOutputSerializer, **_DEVICE_ERRORS},
    )
    _reasoned_transition_schema = extend_schema(
        request=serializers.DeviceReasonRequiredInputSerializer,
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

    @_reasoned_transition_schema
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """Issuing body: reject a submitted device (reason required)."""
        return self._transition(request, pk, "reject")

    @_transition_schema
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        """Producer or issuing body: put an approved device into operation."""
        return self._transition(request, pk, "activate")

    @_reasoned_transition_schema
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        """Issuing body: suspend an approved or active device (reason required)."""
        return self._transition(request, pk, "suspend")

    @_reasoned_transition_schema
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, pk: str) -> Response:
        """Issuing body: lift a suspension (reason required)."""
        return self._transition(request, pk, "reinstate")

    @_reasoned_transition_schema
    @action(detail=True, methods=["post"])
    def decommission(self, request: Request, pk: str) -> Response:
        """Producer or issuing body: take the device out of service for good (reason required)."""
        return self._transition(request, pk, "decommission")
