"""Public pages (no login): certificate lookup and timeline, retirement statements."""

from django.urls import path

from certificates import views

app_name = "certificates"

urlpatterns = [
    path("certificates/", views.certificate_lookup, name="lookup"),
    path("certificates/<int:bundle_id>/", views.certificate_page, name="certificate"),
    path("statements/<uuid:public_id>/", views.statement_page, name="statement"),
    path("statements/<uuid:public_id>.json", views.statement_json, name="statement-json"),
    path("statements/<uuid:public_id>.pdf", views.statement_pdf, name="statement-pdf"),
]
