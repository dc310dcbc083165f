from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from registry import probes
from registry.api.root import ApiRootView
from registry.csp import csp_update
from registry.url_index import indexed_include

# Every route belongs to exactly one app's list (tests/registry/test_url_order.py). A
# request tries only the routes its first segment can reach (registry/url_index.py).
api_v1 = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("market.api.urls")),
    path("", include("accounts.api.urls")),
    path("", include("ledger.api.urls")),
    path("", include("federation.api.urls")),
    path("", include("assets.api.urls")),
    path("", include("certificates.api.urls")),
    path("", include("charging.api.urls")),
    path("", include("consumers.api.urls")),
    path("", include("contracts.api.urls")),
    path("", include("notifications.api.urls")),
]

handler404 = "registry.api.exceptions.api_page_not_found"
handler500 = "registry.api.exceptions.api_server_error"

urlpatterns = [
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    indexed_include("api/v1/", api_v1),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its start-up script as a separate response (`?script`), so the page
    # keeps the strict CSP; its stylesheet draws icons from data: URIs.
    path(
        "api/docs/",
        csp_update(img_src=["data:"])(
            SpectacularSwaggerSplitView.as_view(
                url_name="schema", template_name="registry/swagger_ui.html"
            )
        ),
        name="swagger-ui",
    ),
    path("", include("ledger.urls")),
    path("", include("federation.urls")),
    path("", include("certificates.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("web.urls")),
]
