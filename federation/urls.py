"""Federation URLs outside /api/v1/ (included at the root).

- `POST /add-checkpoint`: the C2SP tlog-witness endpoint (this registry's submission
  prefix is its base URL);
- `/federation/status`: the status page;
- `/.well-known/gridproof/federation`: origin, URLs and keys for peering;
- `/mirrors/<origin>/api/v1/ledger/...`: each mirror at the ledger API's own paths, so
  `python -m ledger.verify ... --url <base>/mirrors/<origin>` verifies a mirror.
"""

from django.urls import path, re_path

from federation import views

_MIRROR = r"^mirrors/(?P<origin>[^?#\s]+?)/api/v1/ledger/"

urlpatterns = [
    path("add-checkpoint", views.add_checkpoint, name="federation-add-checkpoint"),
    path("federation/status", views.status_page, name="federation-status-page"),
    path("federation/status/", views.status_page),
    path(".well-known/gridproof/federation", views.identity, name="federation-identity-doc"),
    re_path(_MIRROR + r"checkpoint$", views.MirrorCheckpointAlias.as_view()),
    re_path(_MIRROR + r"entries/$", views.MirrorEntryListAlias.as_view()),
    re_path(_MIRROR + r"entries/(?P<seq>[0-9]{1,19})/$", views.MirrorEntryAlias.as_view()),
    re_path(_MIRROR + r"proofs/inclusion/$", views.MirrorInclusionAlias.as_view()),
    re_path(_MIRROR + r"proofs/consistency/$", views.MirrorConsistencyAlias.as_view()),
]
