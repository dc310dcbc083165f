"""Admin for consumers: read-only rows; site confirmation calls the service."""

from django.contrib import admin, messages

from consumers import services
from consumers.models import (
    Community,
    CommunityMember,
    Consent,
    DataAccess,
    GatewayDeadLetter,
    Household,
    Site,
)
from registry.admin import ReadOnlyAdmin
from registry.errors import DomainError


@admin.register(Household)
class HouseholdAdmin(ReadOnlyAdmin):
    list_display = ["id", "organisation", "city", "country", "created_at"]


@admin.register(Site)
class SiteAdmin(ReadOnlyAdmin):
    list_display = ["id", "metering_point_id", "household", "grid_area", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["metering_point_id"]
    actions = ["confirm_sites"]

    @admin.action(description="Confirm the selected sites (issuing body)")
    def confirm_sites(self, request, queryset) -> None:
        for site in queryset:
            try:
                services.site_confirm(actor=request.user, site_id=site.pk, reason="admin")
            except DomainError as exc:
                self.message_user(request, f"{site}: {exc.detail}", messages.ERROR)


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["id", "site", "grantee", "purpose", "resolution", "valid_to", "revoked_at"]


@admin.register(DataAccess)
class DataAccessAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "reader_organisation", "site", "what", "outcome", "reason"]
    list_filter = ["outcome"]


@admin.register(Community)
class CommunityAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "organisation", "grid_area", "key_kind"]


@admin.register(CommunityMember)
class CommunityMemberAdmin(ReadOnlyAdmin):
    list_display = ["id", "community", "organisation", "joined_at", "left_at"]


@admin.register(GatewayDeadLetter)
class GatewayDeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "reason", "meter_serial", "topic"]
    list_filter = ["reason"]
