from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organisation
from notifications import selectors, services, webhooks
from notifications.api import serializers
from notifications.errors import WebhookEndpointNotFound
from notifications.models import Notification, WebhookEndpoint
from registry.api.query import query_flag
from registry.api.schema import error_responses, read_schema

UNREAD = OpenApiParameter(
    "unread", OpenApiTypes.BOOL, description="Only unread notifications (`true`)."
)


@extend_schema_view(list=extend_schema(parameters=[UNREAD]))
@read_schema(serializers.NotificationOutputSerializer, list_errors=(401,))
class NotificationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Your notifications, newest first: what waits for you and what you are told."""

    serializer_class = serializers.NotificationOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = r"[0-9]+"
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Notification]:
        unread = query_flag(self.request, "unread")
        return selectors.notification_list_for_user(user=self.request.user, unread_only=unread)

    @extend_schema(
        request=None,
        responses={200: serializers.NotificationOutputSerializer, **error_responses(401, 404)},
    )
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str) -> Response:
        """Mark the notification read."""
        notification = services.notification_mark_read(notification_id=int(pk), user=request.user)
        return Response(self.get_serializer(notification).data)

    @extend_schema(
        request=None,
        responses={
            200: serializers.NotificationsMarkedOutputSerializer,
            **error_responses(401),
        },
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark all your notifications read."""
        marked = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": marked})

    @extend_schema(
        responses={
            200: serializers.NotificationUnreadCountOutputSerializer,
            **error_responses(401),
        }
    )
    @action(detail=False, methods=["get"], url_path="unread-count", pagination_class=None)
    def unread_count(self, request: Request) -> Response:
        """How many of your notifications are unread."""
        return Response({"unread": selectors.notification_unread_count(user=request.user)})


class NotificationPreferenceView(APIView):
    """How you are told: e-mail on or off (notifications in the app are always kept)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: serializers.NotificationPreferenceSerializer, **error_responses(401)}
    )
    def get(self, request: Request) -> Response:
        preference = selectors.notification_preference_for(user=request.user)
        return Response({"email_enabled": preference.email_enabled})

    @extend_schema(
        request=serializers.NotificationPreferenceSerializer,
        responses={200: serializers.NotificationPreferenceSerializer, **error_responses(400, 401)},
    )
    def put(self, request: Request) -> Response:
        data = serializers.NotificationPreferenceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preference = services.notification_preference_set(user=request.user, **data.validated_data)
        return Response({"email_enabled": preference.email_enabled})


@read_schema(serializers.WebhookEndpointOutputSerializer, list_errors=(401,))
class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Your organisations' webhook endpoints: register (admins), list, delete, delivery log."""

    serializer_class = serializers.WebhookEndpointOutputSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = r"[0-9]+"
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return selectors.webhook_endpoint_list(user=self.request.user)

    @extend_schema(
        request=serializers.WebhookEndpointInputSerializer,
        responses={
            201: serializers.WebhookEndpointCreatedOutputSerializer,
            **error_responses(400, 401, 403, 404),
        },
    )
    def create(self, request: Request) -> Response:
        """Register an endpoint for one of your organisations; its secret is shown once."""
        data = serializers.WebhookEndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = Organisation.objects.filter(pk=data.validated_data["organisation"]).first()
        if organisation is None:
            raise WebhookEndpointNotFound(organisation_id=data.validated_data["organisation"])
        endpoint, secret = webhooks.webhook_endpoint_register(
            organisation=organisation,
            url=data.validated_data["url"],
            kinds=data.validated_data["kinds"],
            actor=request.user,
        )
        endpoint.secret = secret
        body = serializers.WebhookEndpointCreatedOutputSerializer(endpoint).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None, **error_responses(401, 403, 404)})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the endpoint (admins): nothing more is sent, the delivery log stays."""
        webhooks.webhook_endpoint_delete(endpoint_id=int(pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={
            200: serializers.WebhookDeliveryOutputSerializer(many=True),
            **error_responses(401, 404),
        }
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str) -> Response:
        """The endpoint's delivery log, newest first: status, attempts, next attempt, error."""
        endpoint = get_object_or_404(self.get_queryset(), pk=pk)
        page = self.paginate_queryset(endpoint.deliveries.order_by("-id"))
        rows = serializers.WebhookDeliveryOutputSerializer(page, many=True).data
        return self.get_paginated_response(rows)
