from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api import serializers
from accounts.errors import InvalidCredentials, TokenNotFound
from accounts.models import Account, ApiToken, Organisation
from accounts.permissions import user_is_auditor, user_is_issuing_body
from registry.api.filters import RegistryFilterSet
from registry.api.schema import IDEMPOTENCY_KEY, error_responses, read_schema
from registry.api.throttling import ScopedRateThrottle
from registry.idempotency import idempotent


class UserRegisterView(APIView):
    """Create a login (anyone). It acts for no organisation until it registers or joins one."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=serializers.UserRegisterInputSerializer,
        responses={201: serializers.UserOutputSerializer, **error_responses(400, 409, 429)},
    )
    def post(self, request: Request) -> Response:
        data = serializers.UserRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(serializers.UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    """The logged-in user, their memberships and registry-wide roles."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.MeOutputSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        user = request.user
        body = {
            "user": user,
            "memberships": user.memberships.select_related("organisation", "user"),
            "is_issuing_body": user_is_issuing_body(user),
            "is_auditor": user_is_auditor(user),
        }
        return Response(serializers.MeOutputSerializer(body).data)


@read_schema(serializers.ApiTokenOutputSerializer, list_errors=(401,), retrieve_errors=None)
class ApiTokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Per-user API tokens: create (shown once), list, revoke."""

    serializer_class = serializers.ApiTokenOutputSerializer
    ordering_fields = ["id", "created_at", "last_used_at", "expires_at"]
    permission_classes = [permissions.AllowAny]
    throttle_scope = "login"

    def get_queryset(self):
        if not self.request.user.is_authenticated:
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    def get_permissions(self):
        if self.action == "create":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_throttles(self):
        if self.action == "create":
            return [ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=serializers.ApiTokenCreateInputSerializer,
        responses={
            201: serializers.ApiTokenCreatedOutputSerializer,
            **error_responses(400, 401, 429),
        },
        description="Create a token for the logged-in user, or for `username`/`password`.",
    )
    def create(self, request: Request) -> Response:
        data = serializers.ApiTokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        if not user.is_authenticated:
            user = authenticate(
                request,
                username=data.validated_data.get("username", ""),
                password=data.validated_data.get("password", ""),
            )
            if user is None:
                raise InvalidCredentials()
        token, plaintext = services.api_token_create(
            user=user,
            name=data.validated_data["name"],
            expires_in_days=data.validated_data.get("expires_in_days"),
        )
        body = serializers.ApiTokenOutputSerializer(token).data | {"token": plaintext}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None, **error_responses(401, 404)})
    def destroy(self, request: Request, pk: str) -> Response:
        if not (pk.isascii() and pk.isdigit()):
            raise TokenNotFound(token_id=pk)
        services.api_token_revoke(user=request.user, token_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganisationFilter(RegistryFilterSet):
    class Meta:
        model = Organisation
        fields = ["status", "country", "is_producer", "is_trader", "is_issuing_body", "is_auditor"]


class OrganisationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Participants. Approved ones are public; the issuing body approves and suspends."""

    serializer_class = serializers.OrganisationOutputSerializer
    filterset_class = OrganisationFilter
    ordering_fields = ["id", "legal_name", "created_at"]

    def get_queryset(self):
        user = self.request.user if self.request.user.is_authenticated else None
        return selectors.organisation_list(user=user)

    @extend_schema(
        request=serializers.OrganisationRegisterInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: serializers.OrganisationOutputSerializer,
            **error_responses(400, 401, 403, 409, 422),
        },
        description="Register an organisation (pending until the issuing body approves it). "
        "You become its administrator.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.OrganisationRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = services.organisation_register(actor=request.user, **data.validated_data)
        return Response(
            serializers.OrganisationOutputSerializer(organisation).data,
            status=status.HTTP_201_CREATED,
        )

    def _status_change(self, request: Request, pk: str, service, serializer=None) -> Response:
        self.get_object()
        data = (serializer or serializers.ReasonInputSerializer)(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = service(actor=request.user, organisation_id=int(pk), **data.validated_data)
        return Response(serializers.OrganisationOutputSerializer(organisation).data)

    @extend_schema(
        request=serializers.ReasonInputSerializer,
        responses={
            200: serializers.OrganisationOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Issuing body: approve a pending organisation."""
        return self._status_change(request, pk, services.organisation_approve)

    @extend_schema(
        request=serializers.SuspendInputSerializer,
        responses={
            200: serializers.OrganisationOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        """Issuing body: suspend an organisation (a reason is required)."""
        return self._status_change(
            request, pk, services.organisation_suspend, serializers.SuspendInputSerializer
        )

    @extend_schema(
        request=serializers.ReasonInputSerializer,
        responses={
            200: serializers.OrganisationOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, pk: str) -> Response:
        """Issuing body: lift a suspension."""
        return self._status_change(request, pk, services.organisation_reinstate)

    @extend_schema(
        request=serializers.MembershipAddInputSerializer,
        responses={
            201: serializers.MembershipOutputSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"])
    def members(self, request: Request, pk: str) -> Response:
        """Organisation administrator: add a user with a role."""
        self.get_object()
        data = serializers.MembershipAddInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_add(
            actor=request.user,
            organisation_id=int(pk),
            user_id=data.validated_data["user"],
            role=data.validated_data["role"],
        )
        return Response(serializers.MembershipOutputSerializer(membership).data, status=201)


class AccountFilter(RegistryFilterSet):
    class Meta:
        model = Account
        fields = ["organisation", "kind", "status", "number"]


class AccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Certificate-holding accounts. You see your organisations' accounts only."""

    serializer_class = serializers.AccountOutputSerializer
    filterset_class = AccountFilter
    permission_classes = [permissions.IsAuthenticated]
    ordering_fields = ["id", "number", "created_at"]

    def get_queryset(self):
        return selectors.account_list(user=self.request.user)

    @extend_schema(
        request=serializers.AccountOpenInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: serializers.AccountOutputSerializer,
            **error_responses(400, 401, 403, 404, 409, 422),
        },
        description="Open an account for your (approved) organisation; needs the admin role.",
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = serializers.AccountOpenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.account_open(
            actor=request.user,
            organisation_id=data.validated_data["organisation"],
            kind=data.validated_data["kind"],
            name=data.validated_data["name"],
        )
        return Response(
            serializers.AccountOutputSerializer(account).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=None,
        responses={200: serializers.AccountOutputSerializer, **error_responses(401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        """Close an account that holds nothing."""
        self.get_object()
        account = services.account_close(actor=request.user, account_id=int(pk))
        return Response(serializers.AccountOutputSerializer(account).data)
