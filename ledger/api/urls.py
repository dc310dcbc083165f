from django.urls import path

from ledger.api import views

urlpatterns = [
    path("ledger/checkpoint", views.CheckpointNoteView.as_view(), name="ledger-checkpoint-note"),
    path("ledger/checkpoints/", views.CheckpointListView.as_view(), name="ledger-checkpoint-list"),
    path(
        "ledger/checkpoints/latest/",
        views.CheckpointLatestView.as_view(),
        name="ledger-checkpoint-latest",
    ),
    path(
        "ledger/checkpoints/<int:size>/",
        views.CheckpointDetailView.as_view(),
        name="ledger-checkpoint-detail",
    ),
    path("ledger/entries/", views.EntryListView.as_view(), name="ledger-entry-list"),
    path("ledger/entries/<int:seq>/", views.EntryDetailView.as_view(), name="ledger-entry-detail"),
    path(
        "ledger/proofs/inclusion/",
        views.InclusionProofView.as_view(),
        name="ledger-inclusion-proof",
    ),
    path(
        "ledger/proofs/consistency/",
        views.ConsistencyProofView.as_view(),
        name="ledger-consistency-proof",
    ),
    path(
        "ledger/subjects/<str:subject_type>/<str:subject_id>/",
        views.SubjectHistoryView.as_view(),
        name="ledger-subject-history",
    ),
    path("ledger/keys/", views.LogKeyHistoryView.as_view(), name="ledger-key-history"),
    path("ledger/verifier-key/", views.VerifierKeyView.as_view(), name="ledger-verifier-key"),
]
