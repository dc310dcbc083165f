from django.urls import path
from rest_framework.routers import SimpleRouter

from certificates.api import views
from certificates.api.holdings import AccountHoldingsView

router = SimpleRouter()
router.register("bundles", views.BundleViewSet, basename="bundle")
router.register("transfers", views.TransferViewSet, basename="transfer")
router.register("retirements", views.RetirementViewSet, basename="retirement")
router.register("issuance-requests", views.IssuanceRequestViewSet, basename="issuance-request")
router.register("withdrawals", views.WithdrawalViewSet, basename="withdrawal")
router.register("exports", views.ExportViewSet, basename="export")
router.register("imports", views.ImportViewSet, basename="import")

urlpatterns = [
    path("accounts/<int:pk>/holdings/", AccountHoldingsView.as_view(), name="account-holdings"),
    path(
        "statements/<uuid:public_id>/",
        views.StatementView.as_view(),
        name="statement-detail",
    ),
    path(
        "units/<int:device_id>/<int:unit>/",
        views.UnitTraceView.as_view(),
        name="unit-trace",
    ),
    path(
        "transfer-policies/<int:organisation_id>/",
        views.TransferPolicyView.as_view(),
        name="transfer-policy",
    ),
    *router.urls,
]
