"""GET /api/v1/: where to start — the main collections, the docs and the schema."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# Collections under /api/v1/, by name; the schema lists every endpoint.
COLLECTIONS = {
    "me": "me/",
    "organisations": "organisations/",
    "accounts": "accounts/",
    "grid_areas": "grid-areas/",
    "devices": "devices/",
    "meters": "meters/",
    "readings": "readings/",
    "reading_batches": "reading-batches/",
    "issuance_requests": "issuance-requests/",
    "bundles": "bundles/",
    "transfers": "transfers/",
    "retirements": "retirements/",
    "ledger_checkpoint": "ledger/checkpoint",
    "federation_status": "federation/status/",
}


class ApiRootView(APIView):
    """The API's front page: links to its collections, documentation and schema."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/api/v1/")
        return Response(
            {
                "name": "GridProof registry API",
                "version": "v1",
                "documentation": request.build_absolute_uri("/api/docs/"),
                "schema": request.build_absolute_uri("/api/schema/"),
                "collections": {name: base + path for name, path in COLLECTIONS.items()},
            }
        )
