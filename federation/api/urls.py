from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from federation.api import views

router = SimpleRouter()
router.register("federation/peers", views.PeerViewSet, basename="federation-peer")
router.register("federation/evidence", views.EvidenceViewSet, basename="federation-evidence")

# A mirror is named by its log's origin, which may contain "/": the lazy match stops at
# the fixed suffix of each route.
_MIRROR = r"^federation/mirrors/(?P<origin>[^?#\s]+?)/"

urlpatterns = [
    path("federation/status/", views.FederationStatusView.as_view(), name="federation-status"),
    path(
        "federation/identity/", views.FederationIdentityView.as_view(), name="federation-identity"
    ),
    path(
        "federation/checkpoint/anchored",
        views.AnchoredCheckpointView.as_view(),
        name="federation-anchored-checkpoint",
    ),
    path("federation/notify/", views.PeerNotifyView.as_view(), name="federation-notify"),
    path("federation/transfers/", views.PeerTransferView.as_view(), name="federation-transfers"),
    path(
        "federation/log/entries/",
        views.LogEntryBundleView.as_view(),
        name="federation-log-entries",
    ),
    path("federation/mirrors/", views.MirrorListView.as_view(), name="federation-mirror-list"),
    re_path(
        _MIRROR + r"checkpoint$",
        views.MirrorCheckpointNoteView.as_view(),
        name="federation-mirror-checkpoint",
    ),
    re_path(
        _MIRROR + r"entries/$",
        views.MirrorEntryListView.as_view(),
        name="federation-mirror-entries",
    ),
    re_path(
        _MIRROR + r"entries/(?P<seq>[0-9]{1,19})/$",
        views.MirrorEntryDetailView.as_view(),
        name="federation-mirror-entry",
    ),
    re_path(
        _MIRROR + r"proofs/inclusion/$",
        views.MirrorInclusionProofView.as_view(),
        name="federation-mirror-inclusion",
    ),
    re_path(
        _MIRROR + r"proofs/consistency/$",
        views.MirrorConsistencyProofView.as_view(),
        name="federation-mirror-consistency",
    ),
    *router.urls,
]
