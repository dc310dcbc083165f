"""The registry's URLs plus `bench/read/`: a bare DRF endpoint doing one read (the baseline)."""

from django.urls import path
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from registry.urls import urlpatterns as registry_urlpatterns


class BareRead(APIView):
    """Same authentication and throttling as the API; one primary-key read; a small body."""

    permission_classes = [permissions.IsAuthenticated]

    def get(self, request):
        row = Account.objects.filter(pk=1).values_list("pk", "number").first()
        return Response({"account": row})


urlpatterns = [path("bench/read/", BareRead.as_view()), *registry_urlpatterns]
