from django.core.validators import RegexValidator
from rest_framework import serializers

from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from notifications.rules import RULES
from notifications.texts import notification_body, notification_title
from registry.api.serializers import InputSerializer


class NotificationOutputSerializer(serializers.ModelSerializer):
    """A notification with its text in the reader's language."""

    title = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()
    organisation_name = serializers.CharField(
        source="organisation.legal_name", default=None, read_only=True
    )
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id",
            "topic",
            "title",
            "body",
            "action_required",
            "organisation",
            "organisation_name",
            "subject",
            "params",
            "entry_seq",
            "created_at",
            "read_at",
            "is_read",
        ]

    def get_title(self, obj: Notification) -> str:
        return notification_title(obj.topic)

    def get_body(self, obj: Notification) -> str:
        return notification_body(obj.topic, obj.params)

    def get_is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class NotificationUnreadCountOutputSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class NotificationsMarkedOutputSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were marked read.")


class NotificationPreferenceSerializer(InputSerializer):
    email_enabled = serializers.BooleanField(help_text="Send notifications by e-mail too.")


class WebhookEndpointInputSerializer(InputSerializer):
    organisation = serializers.IntegerField(help_text="Your organisation's id.")
    url = serializers.URLField(
        max_length=500,
        # what the schema can say of it (Django's URL pattern is Python-only): http or https
        validators=[RegexValidator(r"^https?://[^\x00-\x20]+$", "Give an http or https URL.")],
    )
    kinds = serializers.ListField(
        child=serializers.CharField(max_length=64),
        allow_empty=False,
        help_text="Ledger event kinds to receive: " + ", ".join(sorted(RULES)),
    )


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "organisation", "url", "kinds", "created_at"]


class WebhookEndpointCreatedOutputSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        help_text="The HMAC secret: shown this once, store it now.", read_only=True
    )

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = [*WebhookEndpointOutputSerializer.Meta.fields, "secret"]


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "entry_seq",
            "kind",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        ]
