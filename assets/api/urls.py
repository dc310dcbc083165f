from django.urls import path
from rest_framework.routers import SimpleRouter

from assets.api import views

router = SimpleRouter()
router.register("grid-areas", views.GridAreaViewSet, basename="grid-area")
router.register("devices", views.DeviceViewSet, basename="device")
router.register("meters", views.MeterViewSet, basename="meter")
router.register("readings", views.ReadingViewSet, basename="reading")
router.register("reading-batches", views.ReadingBatchViewSet, basename="reading-batch")

urlpatterns = [
    path("eecs-codes/", views.EecsCodesView.as_view(), name="eecs-codes"),
    *router.urls,
]
