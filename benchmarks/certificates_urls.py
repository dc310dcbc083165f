"""The registry's URLs plus two bare endpoints doing one read, the baselines:
`bench/read/` through DRF (the API's authentication and throttling) and
`bench/django-read/`, the same token check and read in a plain Django view, to show what
DRF's dispatch costs a request."""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from accounts.services import api_token_authenticate
from registry.urls import urlpatterns as registry_urlpatterns


def _read() -> dict:
    return {"account": Account.objects.filter(pk=1).values_list("pk", "number").first()}


class BareRead(APIView):
    """Same authentication and throttling as the API; one primary-key read; a small body."""

    permission_classes = [permissions.IsAuthenticated]

    def get(self, request):
        return Response(_read())


def django_read(request: HttpRequest) -> JsonResponse:
    """The same token check (no throttling) and read, without DRF: Django's view alone."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or api_token_authenticate(token.strip()) is None:
        return JsonResponse({"code": "not_authenticated"}, status=401)
    return JsonResponse(_read())


urlpatterns = [
    path("bench/read/", BareRead.as_view()),
    path("bench/django-read/", django_read),
    *registry_urlpatterns,
]
