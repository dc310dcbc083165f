from charging.api import views
from registry.api.routers import Router

router = Router()
router.register("charging/stations", views.ChargingStationViewSet, basename="charging-station")
router.register("charging/tariffs", views.ChargingTariffViewSet, basename="charging-tariff")
router.register("charging/tokens", views.ChargingTokenViewSet, basename="charging-token")
router.register("charging/sessions", views.ChargingSessionViewSet, basename="charging-session")
router.register("charging/bills", views.ChargingBillViewSet, basename="charging-bill")
router.register("charging/receipts", views.ChargingReceiptViewSet, basename="charging-receipt")

urlpatterns = router.urls
