from django.urls import path

from consumers.api import views
from registry.api.routers import Router

router = Router()
router.register("sites", views.SiteViewSet, basename="site")
router.register("consents", views.ConsentViewSet, basename="consent")
router.register("data-accesses", views.DataAccessViewSet, basename="data-access")
router.register("communities", views.CommunityViewSet, basename="community")

urlpatterns = [
    path("households/me/", views.HouseholdView.as_view(), name="household"),
    path("households/me/export/", views.HouseholdExportView.as_view(), name="household-export"),
    path(
        "households/me/export/csv/",
        views.HouseholdExportCsvView.as_view(),
        name="household-export-csv",
    ),
    path(
        "community-members/<int:pk>/leave/",
        views.CommunityMemberLeaveView.as_view(),
        name="community-member-leave",
    ),
    *router.urls,
]
