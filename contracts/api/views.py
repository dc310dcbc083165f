from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from contracts import errors, selectors, services
from contracts.api import serializers
from registry.api.query import id_parameter, query_id
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.api.viewsets import ScopedReadViewSet
from registry.idempotency import idempotent

WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)


def _contract(view, pk: str):
    found = selectors.contract_list(user=view.request.user).filter(pk=int(pk)).first()
    if found is None:
        raise errors.ContractNotFound(contract_id=int(pk))
    return found


@read_schema(serializers.ContractOutputSerializer)
class ContractViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Contracts your organisations are party to: draft, agree, amend, terminate, executions."""

    serializer_class = serializers.ContractOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["status", "kind"]
    ordering_fields = ["id", "created_at"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return selectors.contract_list(user=self.request.user)

    def _out(self, contract, code=status.HTTP_200_OK) -> Response:
        fresh = selectors.contract_list(user=self.request.user).filter(pk=contract.pk).first()
        return Response(serializers.ContractOutputSerializer(fresh or contract).data, status=code)

    @extend_schema(
        request=serializers.CONTRACT_CREATE_SCHEMA,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.ContractOutputSerializer, **WRITE_ERRORS},
        description="Draft a contract (a member of one party). It becomes active when "
        "every party agreed.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.ContractCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contract = services.contract_create(actor=request.user, **data.validated_data)
        return self._out(contract, status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ContractAgreeInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ContractOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def agree(self, request: Request, pk: str) -> Response:
        """Agree for your party to what is pending (the draft, an amendment, a termination),
        optionally signed with your organisation's key over GET …/document/."""
        data = serializers.ContractAgreeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contract = services.contract_agree(
            actor=request.user,
            contract_id=int(pk),
            organisation_id=data.validated_data.get("organisation"),
            key_id=data.validated_data.get("key"),
            signature=data.validated_data.get("signature", ""),
        )
        return self._out(contract)

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.BINARY, description="RFC 8785 bytes to sign."
            ),
            **error_responses(401, 404, 409),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def document(self, request: Request, pk: str) -> HttpResponse:
        """The canonical agreement document pending now (what a signature covers)."""
        contract = _contract(self, pk)
        body = services.contract_document(contract_id=contract.pk)
        return HttpResponse(body, content_type="application/json")

    @extend_schema(
        request=serializers.ContractAmendInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ContractOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def amend(self, request: Request, pk: str) -> Response:
        """Propose new terms for an active contract; they apply once every party agreed."""
        data = serializers.ContractAmendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contract = services.contract_amend(
            actor=request.user, contract_id=int(pk), **data.validated_data
        )
        return self._out(contract)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ContractOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def terminate(self, request: Request, pk: str) -> Response:
        """End a draft at once; propose ending an active contract (every party agrees)."""
        contract = services.contract_terminate(actor=request.user, contract_id=int(pk))
        return self._out(contract)

    @extend_schema(
        responses={200: serializers.ExecutionOutputSerializer(many=True), **error_responses(401)}
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def executions(self, request: Request, pk: str) -> Response:
        """The contract's executions, newest first (empty if the contract is not yours)."""
        rows = self.paginate_queryset(
            selectors.execution_list(user=request.user, contract_id=int(pk))
        )
        return self.get_paginated_response(
            serializers.ExecutionOutputSerializer(rows, many=True).data
        )

    @extend_schema(
        responses={200: serializers.ObligationOutputSerializer(many=True), **error_responses(401)}
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def obligations(self, request: Request, pk: str) -> Response:
        """Money the contract's executions say is owed, in minor units, and whether paid."""
        rows = self.paginate_queryset(
            selectors.obligation_list(user=request.user, contract_id=int(pk))
        )
        return self.get_paginated_response(
            serializers.ObligationOutputSerializer(rows, many=True).data
        )

    @extend_schema(
        parameters=[
            id_parameter("issuance", "An issuance id (share kinds)."),
            OpenApiParameter(
                "period",
                str,
                description=(
                    "A month, YYYY-MM; for storage balancing a day, YYYY-MM-DD (by default the"
                    " battery's next day to execute); for community sharing a day, YYYY-MM-DD,"
                    " or an hour, YYYY-MM-DDTHH:00, per the terms' granularity (by default the"
                    " contract's next period)."
                ),
            ),
        ],
        responses={200: serializers.DryRunOutputSerializer, **error_responses(400, 401, 404)},
    )
    @action(detail=True, methods=["get"], url_path="dry-run", filter_backends=[])
    def dry_run(self, request: Request, pk: str) -> Response:
        """What the contract would do for an issuance, a month, (storage balancing) a day or
        (community sharing) its period; writes nothing."""
        contract = _contract(self, pk)
        body = services.contract_dry_run(
            contract_id=contract.pk,
            issuance_id=query_id(request, "issuance"),
            period=request.query_params.get("period"),
        )
        return Response(serializers.DryRunOutputSerializer(body).data)


class ExecutionViewSet(viewsets.GenericViewSet):
    """Contract executions: retry a failed or parked one."""

    serializer_class = serializers.ExecutionOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = r"[0-9]+"

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ExecutionOutputSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def retry(self, request: Request, pk: str) -> Response:
        """A party's member runs a failed or parked execution again."""
        execution = services.contract_execution_retry(actor=request.user, execution_id=int(pk))
        return Response(serializers.ExecutionOutputSerializer(execution).data)


class ObligationViewSet(viewsets.GenericViewSet):
    """Settlement obligations: the payer pays one now instead of waiting for the tick."""

    serializer_class = serializers.ObligationOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = r"[0-9]+"

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: serializers.ObligationOutputSerializer, **WRITE_ERRORS},
        description="An admin or operator of the paying organisation pays an open "
        "obligation now, from its settlement account (docs/market.md). 409 "
        "`insufficient_funds` (nothing written) or `already_settled`.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def pay(self, request: Request, pk: str) -> Response:
        """Pay an open obligation now; 200 with its reference `journal_entry:<id>`."""
        obligation = services.obligation_pay(actor=request.user, obligation_id=int(pk))
        return Response(serializers.ObligationOutputSerializer(obligation).data)


@read_schema(serializers.OrganisationKeyOutputSerializer)
class OrganisationKeyViewSet(ScopedReadViewSet):
    """Ed25519 keys organisations registered to sign contract agreements."""

    serializer_class = serializers.OrganisationKeyOutputSerializer
    scope = staticmethod(selectors.organisation_key_list)

    @extend_schema(
        request=serializers.OrganisationKeyInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: serializers.OrganisationKeyOutputSerializer, **WRITE_ERRORS},
        description="An admin registers a public key of its organisation.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.OrganisationKeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.organisation_key_register(
            actor=request.user,
            organisation_id=data.validated_data["organisation"],
            name=data.validated_data["name"],
            public_key=data.validated_data["public_key"],
        )
        return Response(
            serializers.OrganisationKeyOutputSerializer(key).data, status=status.HTTP_201_CREATED
        )
