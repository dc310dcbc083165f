from django.urls import path

from notifications.api import views
from registry.api.routers import Router

router = Router()
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    path(
        "notifications/preferences/",
        views.NotificationPreferenceView.as_view(),
        name="notification-preferences",
    ),
    *router.urls,
]
