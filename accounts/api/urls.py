from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import views

router = SimpleRouter()
router.register("auth/tokens", views.ApiTokenViewSet, basename="api-token")
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("accounts", views.AccountViewSet, basename="account")

urlpatterns = [
    path("auth/register/", views.UserRegisterView.as_view(), name="user-register"),
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
