"""Admin for participants. Status changes go through the services, never row edits."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from accounts import services
from accounts.models import Account, ApiToken, Membership, Organisation, User
from registry.admin import ReadOnlyAdmin
from registry.errors import DomainError


@admin.register(User)
class RegistryUserAdmin(UserAdmin):
    list_display = ["username", "email", "is_staff", "is_active", "date_joined"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    readonly_fields = ["user", "role", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _run_service(modeladmin, request, queryset, service, verb: str, **kwargs) -> None:
    done = 0
    for obj in queryset:
        try:
            service(actor=request.user, organisation_id=obj.pk, **kwargs)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} organisation(s).", messages.SUCCESS)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["legal_name", "country", "registration_id", "roles", "status", "created_at"]
    list_filter = ["status", "country", "is_producer", "is_trader", "is_issuing_body", "is_auditor"]
    search_fields = ["legal_name", "registration_id"]
    readonly_fields = ["status", "status_reason", "approved_at", "created_at"]
    inlines = [MembershipInline]
    actions = ["approve", "suspend", "reinstate"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [f.name for f in self.model._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Approve selected organisations")
    def approve(self, request, queryset) -> None:
        _run_service(self, request, queryset, services.organisation_approve, "Approved")

    @admin.action(description="Suspend selected organisations")
    def suspend(self, request, queryset) -> None:
        _run_service(
            self,
            request,
            queryset,
            services.organisation_suspend,
            "Suspended",
            reason="Suspended by the issuing body from the admin.",
        )

    @admin.action(description="Reinstate selected organisations")
    def reinstate(self, request, queryset) -> None:
        _run_service(
            self,
            request,
            queryset,
            services.organisation_reinstate,
            "Reinstated",
            reason="Reinstated by the issuing body from the admin.",
        )


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organisation__legal_name"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["number", "name", "organisation", "kind", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["number", "name", "organisation__legal_name"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "name", "user__username"]
